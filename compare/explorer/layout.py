"""The explorer's widgets and how they are arranged: deployment list and parameters (scorers
too), prompt inputs, Run/Stop, status line, live counters, and the tabs (side by side, charts,
compare, rate, frame, export, open run). The compare and rate tabs are components of their own
(`compare.explorer.compare_tab`, `compare.explorer.rate_tab`).

`ExplorerView` only builds and paints; `compare.explorer.widget.Explorer` adds what the buttons do.
"""

from __future__ import annotations

import asyncio
import html
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import ipywidgets as w

from compare import charts
from compare.errors import ConfigError
from compare.explorer.compare_tab import CompareTab
from compare.explorer.html import frame_html, message_html, side_by_side_html
from compare.explorer.rate_tab import RateTab
from compare.prompts import PromptSet, demo_prompts, load_prompts

TAB_TITLES: Final = ("side by side", "charts", "compare", "rate", "frame", "export", "open run")
_WIDE: Final = {"description_width": "110px"}


def figure_png(fig: Any) -> bytes:
    """A matplotlib figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def chart_pngs(results: Any) -> list[tuple[str, bytes]]:
    """(title, PNG) of every chart in `compare.charts.CHARTS`."""
    return [(title, figure_png(draw(results))) for title, draw in charts.CHARTS]


class ExplorerView:
    """The explorer's widgets. `ui` is the whole layout."""

    fixed_scorers: list[Any]  # Scorer objects given in code (typed specs are in scorers_text)

    def _build(self, names: Sequence[str], prompts: Any, params: dict[str, Any],
               selected: Sequence[str] | None, export_dir: str) -> None:
        self._build_inputs(names, params, selected)
        self._build_prompt_inputs(prompts)
        self._build_run_controls()
        self._build_tabs(export_dir)
        parameters = w.VBox([self.temperature, self.max_tokens, self.repeats, self.concurrency,
                             self.scorers_text])
        self.ui = w.VBox([
            w.HBox([self.deployment_select, parameters]),
            self.prompt_box,
            w.HBox([self.run_button, self.stop_button, self.progress]),
            self.status,
            self.counters,
            self.tabs,
        ], layout=w.Layout(width="100%"))

    def _build_inputs(self, names: Sequence[str], params: dict[str, Any],
                      selected: Sequence[str] | None) -> None:
        self.deployment_select = w.SelectMultiple(
            options=list(names), value=tuple(selected or names[:2]),
            rows=min(8, max(3, len(names))), description="deployments", style=_WIDE,
            layout=w.Layout(width="340px"))
        self.temperature = w.BoundedFloatText(value=params["temperature"], min=0.0, max=2.0,
                                              step=0.1, description="temperature", style=_WIDE)
        self.max_tokens = w.BoundedIntText(value=params["max_tokens"], min=1, max=32768,
                                           description="max tokens", style=_WIDE)
        self.repeats = w.BoundedIntText(value=params["repeats"], min=1, max=1000,
                                        description="repeats", style=_WIDE)
        self.concurrency = w.BoundedIntText(value=params["concurrency"], min=1, max=1024,
                                            description="concurrency", style=_WIDE)
        self.scorers_text = w.Text(value=", ".join(params["scorers"]), description="scorers",
                                   style=_WIDE, layout=w.Layout(width="420px"),
                                   placeholder="e.g. exact, f1, judge:DEPLOYMENT (empty: none)")

    def _build_prompt_inputs(self, prompts: Any) -> None:
        self.prompt_source = w.ToggleButtons(options=["file", "typed"], description="prompts",
                                             style=_WIDE)
        self.prompt_file = w.Text(description="prompt file", style=_WIDE,
                                  placeholder="path to .jsonl or .csv (empty: bundled demo set)",
                                  layout=w.Layout(width="520px"))
        self.prompt_text = w.Textarea(description="one per line", style=_WIDE,
                                      layout=w.Layout(width="520px", height="110px"))
        self._set_prompts(prompts)
        self.prompt_source.observe(self._show_prompt_input, names="value")
        self.prompt_box = w.VBox([self.prompt_source, self.prompt_file])
        self._show_prompt_input()

    def _build_run_controls(self) -> None:
        self.run_button = w.Button(description="Run", button_style="primary", icon="play")
        self.stop_button = w.Button(description="Stop", button_style="warning", icon="stop",
                                    disabled=True)
        self.status = w.HTML("<i>Pick deployments and prompts, then press Run.</i>")
        self.progress = w.IntProgress(value=0, min=0, max=1, description="done",
                                      layout=w.Layout(width="340px"))
        self.counters = w.HTML()

    def _build_tabs(self, export_dir: str) -> None:
        self.outputs = w.HTML("<i>Outputs appear here after a run.</i>")
        self.charts = w.VBox([w.HTML("<i>Charts appear here after a run.</i>")])
        self.frame_view = w.HTML("<i>The records frame appears here after a run.</i>")
        self.export_dir = w.Text(value=export_dir, description="directory", style=_WIDE,
                                 layout=w.Layout(width="520px"))
        self.parquet_button = w.Button(description="Save parquet", icon="save")
        self.csv_button = w.Button(description="Save CSV", icon="file")
        self.export_status = w.HTML()
        export = w.VBox([self.export_dir, w.HBox([self.parquet_button, self.csv_button]),
                         self.export_status])
        self.open_dir = w.Text(description="run directory", style=_WIDE,
                               placeholder="runs/NAME (holds results.parquet or records.jsonl)",
                               layout=w.Layout(width="520px"))
        self.open_button = w.Button(description="Open", icon="folder-open")
        self.open_status = w.HTML("<i>Shows a saved run in these tabs; nothing is sent.</i>")
        opener = w.VBox([w.HBox([self.open_dir, self.open_button]), self.open_status])
        self.compare_tab = CompareTab()
        self.rate_tab = RateTab(on_vote=self.compare_tab.refresh_votes)
        self.tabs = w.Tab(children=[self.outputs, self.charts, self.compare_tab.ui,
                                    self.rate_tab.ui, self.frame_view, export, opener])
        for i, title in enumerate(TAB_TITLES):
            self.tabs.set_title(i, title)

    # -- prompts -----------------------------------------------------------------------------

    def _set_prompts(self, prompts: Any) -> None:
        if prompts is None:
            self.prompt_source.value = "file"
        elif isinstance(prompts, str | os.PathLike):
            self.prompt_source.value = "file"
            self.prompt_file.value = str(prompts)
        elif isinstance(prompts, PromptSet):
            self.prompt_source.value = "typed"
            self.prompt_text.value = "\n".join(p.text.replace("\n", " ") for p in prompts)
        else:
            self.prompt_source.value = "typed"
            self.prompt_text.value = "\n".join(str(p).replace("\n", " ") for p in prompts)

    def _show_prompt_input(self, _change: Any = None) -> None:
        chosen = self.prompt_file if self.prompt_source.value == "file" else self.prompt_text
        self.prompt_box.children = (self.prompt_source, chosen)

    def prompt_set(self) -> PromptSet:
        """The prompts the inputs currently describe."""
        if self.prompt_source.value == "typed":
            lines = [ln.strip() for ln in self.prompt_text.value.splitlines() if ln.strip()]
            if not lines:
                raise ConfigError("type at least one prompt (one per line)", field="prompts")
            return load_prompts(lines, source="typed prompts")
        path = self.prompt_file.value.strip()
        return load_prompts(path) if path else demo_prompts()

    def scorer_list(self) -> list[Any]:
        """The next run's scorers: those given in code, then the specs typed (comma-separated;
        a wrong spec raises ConfigError naming it)."""
        from compare.scorers import as_scorers

        typed = [spec.strip() for spec in self.scorers_text.value.split(",") if spec.strip()]
        return [*self.fixed_scorers, *as_scorers(typed)]

    def _overrides(self) -> dict[str, Any]:
        return {"temperature": float(self.temperature.value),
                "max_tokens": int(self.max_tokens.value)}

    # -- painting ----------------------------------------------------------------------------

    def _busy(self, busy: bool) -> None:
        self.run_button.disabled = busy
        self.stop_button.disabled = not busy

    def _say(self, text: str, error: bool = False) -> None:
        self.status.value = message_html(text, error=error)

    def _export_said(self, text: str, path: Path | None = None) -> None:
        if path is None:
            self.export_status.value = message_html(text, error=True)
        else:
            self.export_status.value = f"{text} <code>{html.escape(str(path))}</code>"

    def _render_tables(self, results: Any, prompts: PromptSet | None) -> None:
        self.outputs.value = side_by_side_html(results, prompts)
        self.frame_view.value = frame_html(results)
        self.rate_tab.show(results, prompts)

    def _show_charts(self, pngs: Sequence[tuple[str, bytes]]) -> None:
        # flex-start: images keep their natural size (a stretched PNG looks blurred).
        self.charts.children = [
            w.VBox([w.HTML(f"<b>{html.escape(title)}</b>"),
                    w.Image(value=png, format="png",
                            layout=w.Layout(max_width="100%", height="auto"))],
                   layout=w.Layout(align_items="flex-start"))
            for title, png in pngs
        ]

    async def _render(self, results: Any, prompts: PromptSet | None) -> None:
        """Fill the tabs from `results`."""
        self._render_tables(results, prompts)
        # Drawing PNGs takes a second or two: do it off the event loop so the kernel stays live.
        self._show_charts(await asyncio.to_thread(chart_pngs, results))
        await self.compare_tab.render(results)

    def _render_now(self, results: Any, prompts: PromptSet | None) -> None:
        """Fill the tabs from `results` without an event loop (a script, a plain console)."""
        self._render_tables(results, prompts)
        self._show_charts(chart_pngs(results))
        self.compare_tab.render_now(results)
