"""The explorer: an ipywidgets front end over runner, results and charts.

Thin by design: this module lays widgets out and reacts to events; requests go through
`compare.runner.arun`, tables and statistics come from `compare.results.Results`, figures from
`compare.charts`. A run is an asyncio task in the kernel's own event loop, so the notebook stays
responsive while it runs, and Stop cancels that task (finished records are kept).

Notebooks and tests drive it without a browser::

    explorer = Explorer(endpoint=ep)
    explorer.select(["sim-fast", "smollm2-precise"])
    explorer.run_clicked()
    results = await explorer.wait()
"""

from __future__ import annotations

import asyncio
import html
import io
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd

from compare import charts
from compare.deployments import Deployment
from compare.deployments_file import load_deployments, local_deployments
from compare.errors import CompareError, ConfigError
from compare.prompts import PromptSet, demo_prompts, load_prompts
from compare.records import METRICS, Record
from compare.results import Results

__all__ = ["Explorer", "side_by_side_html"]

FOLD_AT = 280  # characters: longer outputs are folded into <details>
FRAME_COLUMNS = (
    "prompt_id", "deployment", "repeat", "status", "latency_s", "ttft_s", "decode_tps",
    "prompt_tokens", "completion_tokens", "cost", "attempts", "finish_reason", "error_type",
    "output",
)
CHARTS = (
    ("latency", charts.latency_distribution),
    ("TTFT vs decode", charts.ttft_vs_decode),
    ("status", charts.status_breakdown),
    ("per-prompt latency", charts.latency_heatmap),
    ("tokens and cost", charts.tokens_and_cost),
)
_LIVE_EVERY_S = 0.2  # at most five counter repaints a second, however fast records arrive


# ------------------------------------------------------------------------------ side by side


def _status_color(status: str) -> str:
    return charts.STATUS_COLORS.get(status, charts.STATUS_COLORS["other"])


def _fold(text: str) -> str:
    body = html.escape(text)
    if len(text) <= FOLD_AT:
        return f'<div class="cmp-text">{body}</div>'
    head = html.escape(text[:FOLD_AT].rstrip())
    return (f'<details class="cmp-fold"><summary class="cmp-text">{head} … '
            f'<i>({len(text)} characters, click to unfold)</i></summary>'
            f'<div class="cmp-text">{body}</div></details>')


def _cell(rows: pd.DataFrame) -> str:
    """One prompt × deployment: the first repeat's output (or error), then status and latency."""
    if rows.empty:
        return '<td class="cmp-cell"><span class="cmp-meta">not run</span></td>'
    first = rows.sort_values("repeat").iloc[0]
    status = str(first["status"])
    if status == "ok" or (isinstance(first["output"], str) and first["output"]):
        content = _fold(str(first["output"] or ""))
    else:
        message = f"{first['error_type'] or status}: {first['error_message'] or ''}".strip(": ")
        content = f'<div class="cmp-text cmp-error">{html.escape(message)}</div>'
    latency = first["latency_s"]
    meta = [f'<b style="color:{_status_color(status)}">{html.escape(status)}</b>']
    if isinstance(latency, float) and math.isfinite(latency):
        meta.append(f"latency {latency:.2f} s")
    if len(rows) > 1:
        ok = rows[rows["status"] == "ok"]["latency_s"].dropna()
        p50 = f", p50 {np.median(ok):.2f} s" if len(ok) else ""
        meta.append(f"{len(rows)} repeats{p50}")
    if bool(first.get("cached", False)):
        meta.append("cached")
    return (f'<td class="cmp-cell">{content}'
            f'<div class="cmp-meta">{" · ".join(meta)}</div></td>')


_STYLE = """<style>
table.cmp-side-by-side {border-collapse: collapse; font-size: 12px; width: 100%;}
table.cmp-side-by-side th, table.cmp-side-by-side td {border: 1px solid #ddd; padding: 4px 6px;
  vertical-align: top; text-align: left;}
table.cmp-side-by-side th {background: #f3f3f3; position: sticky; top: 0;}
.cmp-text {white-space: pre-wrap; word-break: break-word; font-family: monospace;}
.cmp-error {color: #b00;}
.cmp-meta {color: #555; font-size: 11px; margin-top: 3px;}
.cmp-prompt {max-width: 22em;}
</style>"""


def side_by_side_html(results: Results, prompts: PromptSet | None = None) -> str:
    """HTML table: one row per prompt, one column per deployment, status + latency under outputs."""
    frame = results.frame
    if frame.empty:
        return "<p><i>No records yet.</i></p>"
    texts: dict[str, str] = {}
    if prompts is not None:
        texts = {p.id: p.text for p in prompts}
    elif results.prompts is not None and "prompt" in results.prompts:
        texts = dict(zip(results.prompts["id"], results.prompts["prompt"], strict=False))
    names = results.deployments
    prompt_ids = list(dict.fromkeys([*(p.id for p in prompts or ()), *frame["prompt_id"]]))
    groups = {key: rows for key, rows in frame.groupby(["prompt_id", "deployment"], sort=False)}
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = []
    for pid in prompt_ids:
        if not any((pid, n) in groups for n in names):
            continue
        prompt_cell = f"<b>{html.escape(pid)}</b>"
        if pid in texts:
            prompt_cell += f"<br>{_fold(texts[pid])}"
        cells = "".join(_cell(groups.get((pid, n), frame.iloc[0:0])) for n in names)
        body.append(f'<tr><td class="cmp-prompt">{prompt_cell}</td>{cells}</tr>')
    return (f'{_STYLE}<table class="cmp-side-by-side"><thead><tr><th>prompt</th>{head}</tr>'
            f'</thead><tbody>{"".join(body)}</tbody></table>')


# ---------------------------------------------------------------------------------- counters


def _counters_html(records: Sequence[Record], names: Sequence[str], total: int) -> str:
    """Live per-deployment table: done / total, errors, p50 latency of timed records."""
    rows = []
    for name in names:
        mine = [r for r in records if r.deployment == name]
        errors = sum(r.status != "ok" for r in mine)
        lat = [r.latency_s for r in mine
               if r.status == "ok" and not r.cached and math.isfinite(r.latency_s)]
        p50 = f"{np.median(lat):.2f}" if lat else "–"
        color = "#b00" if errors else "inherit"
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{len(mine)} / {total}</td>"
                    f'<td style="color:{color}">{errors}</td><td>{p50}</td></tr>')
    return ('<table class="cmp-counters" style="font-size:12px;border-collapse:collapse">'
            '<thead><tr><th style="text-align:left">deployment</th><th>done</th><th>errors</th>'
            '<th>p50 latency (s)</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>'
            '<style>table.cmp-counters td, table.cmp-counters th {padding: 2px 10px;}</style>')


# --------------------------------------------------------------------------------- explorer


def _resolve_deployments(deployments: Any, endpoint: Any) -> list[Deployment]:
    if deployments is None:
        if endpoint is None:
            raise ConfigError("Explorer needs deployments= (a file or a list of Deployment) or "
                              "endpoint= (a running compare.local_endpoint(...))",
                              field="deployments")
        return local_deployments(endpoint)
    if isinstance(deployments, str | os.PathLike):
        return load_deployments(deployments)
    found = list(deployments)
    if not all(isinstance(d, Deployment) for d in found):
        raise ConfigError("deployments= must be a path or a list of compare.Deployment",
                          field="deployments")
    return found


def _figure_png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


class Explorer:
    """Pick deployments and prompts, press Run, watch counters, read outputs side by side.

    `deployments`: a deployments YAML path or a list of `Deployment`; or leave it out and pass
    `endpoint` (a `compare.local_endpoint(...)`) to use every deployment it serves.
    `prompts`: a prompt file path (.jsonl/.csv), a list of strings, a PromptSet, or None for the
    bundled demo set. `out_dir`: where runs checkpoint (`<out_dir>/<run_id>/records.jsonl`) and
    where Export writes by default.
    """

    def __init__(
        self,
        deployments: str | os.PathLike[str] | Iterable[Deployment] | None = None,
        endpoint: Any = None,
        prompts: Any = None,
        *,
        out_dir: str | os.PathLike[str] | None = None,
        temperature: float = 0.0,
        max_tokens: int = 64,
        repeats: int = 1,
        concurrency: int = 8,
        selected: Sequence[str] | None = None,
    ) -> None:
        self.deployments = _resolve_deployments(deployments, endpoint)
        if not self.deployments:
            raise ConfigError("no deployments to explore", field="deployments")
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.records: list[Record] = []
        self.results: Results | None = None
        self.prompts: PromptSet | None = None
        self.error: BaseException | None = None
        self.stopped = False
        self.run_count = 0
        self._pending = False
        try:  # the kernel's loop: runs live here whichever thread a click arrives on
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._task: asyncio.Task[Results | None] | None = None
        self._names: list[str] = []
        self._total = 0
        self._last_paint = 0.0
        self._build(prompts, temperature, max_tokens, repeats, concurrency, selected)

    # -- layout ----------------------------------------------------------------------------

    def _build(self, prompts: Any, temperature: float, max_tokens: int, repeats: int,
               concurrency: int, selected: Sequence[str] | None) -> None:
        names = [d.name for d in self.deployments]
        wide = {"description_width": "110px"}
        self.deployment_select = w.SelectMultiple(
            options=names, value=tuple(selected or names[:2]), rows=min(8, max(3, len(names))),
            description="deployments", style=wide, layout=w.Layout(width="340px"))
        self.prompt_source = w.ToggleButtons(options=["file", "typed"], description="prompts",
                                             style=wide)
        self.prompt_file = w.Text(description="prompt file", style=wide,
                                  placeholder="path to .jsonl or .csv (empty: bundled demo set)",
                                  layout=w.Layout(width="520px"))
        self.prompt_text = w.Textarea(description="one per line", style=wide,
                                      layout=w.Layout(width="520px", height="110px"))
        self._set_prompts(prompts)
        self.prompt_source.observe(self._show_prompt_input, names="value")
        self.temperature = w.BoundedFloatText(value=temperature, min=0.0, max=2.0, step=0.1,
                                              description="temperature", style=wide)
        self.max_tokens = w.BoundedIntText(value=max_tokens, min=1, max=32768,
                                           description="max tokens", style=wide)
        self.repeats = w.BoundedIntText(value=repeats, min=1, max=1000, description="repeats",
                                        style=wide)
        self.concurrency = w.BoundedIntText(value=concurrency, min=1, max=1024,
                                            description="concurrency", style=wide)
        self.run_button = w.Button(description="Run", button_style="primary", icon="play")
        self.stop_button = w.Button(description="Stop", button_style="warning", icon="stop",
                                    disabled=True)
        self.run_button.on_click(self._guard(self.run_clicked))
        self.stop_button.on_click(self._guard(self.stop_clicked))
        self.status = w.HTML("<i>Pick deployments and prompts, then press Run.</i>")
        self.progress = w.IntProgress(value=0, min=0, max=1, description="done",
                                      layout=w.Layout(width="340px"))
        self.counters = w.HTML()
        self.outputs = w.HTML("<i>Outputs appear here after a run.</i>")
        self.charts = w.VBox([w.HTML("<i>Charts appear here after a run.</i>")])
        self.frame_view = w.HTML("<i>The records frame appears here after a run.</i>")
        self.export_dir = w.Text(value=str(self.out_dir or Path("runs") / "explorer"),
                                 description="directory", style=wide,
                                 layout=w.Layout(width="520px"))
        self.parquet_button = w.Button(description="Save parquet", icon="save")
        self.csv_button = w.Button(description="Save CSV", icon="file")
        self.parquet_button.on_click(self._guard(self.export_parquet))
        self.csv_button.on_click(self._guard(self.export_csv))
        self.export_status = w.HTML()
        self.tabs = w.Tab(children=[
            self.outputs, self.charts, self.frame_view,
            w.VBox([self.export_dir, w.HBox([self.parquet_button, self.csv_button]),
                    self.export_status]),
        ])
        for i, title in enumerate(("side by side", "charts", "frame", "export")):
            self.tabs.set_title(i, title)
        params = w.VBox([self.temperature, self.max_tokens, self.repeats, self.concurrency])
        self.prompt_box = w.VBox([self.prompt_source, self.prompt_file])
        self._show_prompt_input()
        self.ui = w.VBox([
            w.HBox([self.deployment_select, params]),
            self.prompt_box,
            w.HBox([self.run_button, self.stop_button, self.progress]),
            self.status,
            self.counters,
            self.tabs,
        ], layout=w.Layout(width="100%"))

    def _guard(self, handler: Callable[[Any], Any]) -> Callable[[Any], None]:
        """A button handler whose unexpected errors show in the status line: the front end
        would otherwise only log them where a user never looks."""

        def run(button: Any) -> None:
            try:
                handler(button)
            except Exception as exc:
                self.error = exc
                self._say(f"{type(exc).__name__}: {exc}", error=True)

        return run

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

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        # The widget view for the front end; a short stable text for plain-text consumers (nbval).
        bundle = dict(self.ui._repr_mimebundle_(**kwargs))
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        names = ", ".join(d.name for d in self.deployments)
        return f"Explorer({len(self.deployments)} deployments: {names})"

    # -- programmatic control (what the buttons call) --------------------------------------

    def select(self, names: Sequence[str]) -> None:
        """Select deployments by name, as a user would in the list."""
        unknown = [n for n in names if n not in self.deployment_select.options]
        if unknown:
            raise ConfigError(f"no deployment {unknown[0]!r}; choose from "
                              f"{', '.join(self.deployment_select.options)}", field="names")
        self.deployment_select.value = tuple(names)

    def prompt_set(self) -> PromptSet:
        """The prompts the inputs currently describe."""
        if self.prompt_source.value == "typed":
            lines = [ln.strip() for ln in self.prompt_text.value.splitlines() if ln.strip()]
            if not lines:
                raise ConfigError("type at least one prompt (one per line)", field="prompts")
            return load_prompts(lines, source="typed prompts")
        path = self.prompt_file.value.strip()
        return load_prompts(path) if path else demo_prompts()

    @property
    def running(self) -> bool:
        return self._pending or (self._task is not None and not self._task.done())

    def _on_kernel_loop(self) -> bool:
        """True on the thread of the loop the Explorer was made on, or when none is known."""
        if self._loop is None or self._loop.is_closed() or not self._loop.is_running():
            return True
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _call_on_kernel_loop(self, fn: Callable[..., None], *args: Any) -> None:
        # JupyterLab >= 4.6 delivers widget messages to an ipykernel *subshell*, a separate thread
        # with its own loop. The run must live on the kernel's main loop, where cells (and
        # `await explorer.wait()`) run, so a click on a subshell hands the work over.
        if self._on_kernel_loop():
            fn(*args)
        else:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(fn, *args)

    def run_clicked(self, _button: Any = None) -> asyncio.Task[Results | None] | None:
        """Start a run in the background (the Run button). Returns the task (None when the
        inputs are wrong, the status line then says why, or when the click arrived on another
        thread and the task is being created on the kernel's loop)."""
        if self.running:
            return self._task
        self.error = None
        try:
            chosen = set(self.deployment_select.value)
            if not chosen:
                raise ConfigError("select at least one deployment", field="deployments")
            deployments = [d for d in self.deployments if d.name in chosen]
            self.prompts = self.prompt_set()
        except CompareError as exc:
            self.error = exc
            self._say(f"cannot run: {exc}", error=True)
            return None
        self._start(deployments, self.prompts)
        self._pending = True
        self._call_on_kernel_loop(self._launch, deployments, self.prompts)
        return self._task if not self._pending else None

    def _launch(self, deployments: list[Deployment], prompts: PromptSet) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = self._loop or asyncio.get_event_loop()
        self._task = loop.create_task(self._run(deployments, prompts))
        self._pending = False

    def stop_clicked(self, _button: Any = None) -> None:
        """Cancel the running task (the Stop button); finished records are kept."""
        if self.running:
            self.stopped = True
            self._say("stopping…")
            self._call_on_kernel_loop(self._cancel)

    def _cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def wait(self) -> Results | None:
        """Wait for the current run to finish; its Results (None if it never started)."""
        while self._pending:  # a click on another thread: the task is about to be created
            await asyncio.sleep(0.01)
        if self._task is None:
            if self.error is not None:
                raise self.error
            return self.results
        try:
            # shield: cancelling the waiter (e.g. a notebook interrupt) must not stop the run.
            await asyncio.shield(self._task)
        except asyncio.CancelledError:
            if not self._task.cancelled():  # the waiter itself was cancelled
                raise
        if self.error is not None:
            raise self.error
        return self.results

    # -- the run ---------------------------------------------------------------------------

    def _overrides(self) -> dict[str, Any]:
        return {"temperature": float(self.temperature.value),
                "max_tokens": int(self.max_tokens.value)}

    def _start(self, deployments: list[Deployment], prompts: PromptSet) -> None:
        """Reset counters and disable Run at once, before the task gets its first turn."""
        self.records = []
        self.stopped = False
        self.run_count += 1
        self._names = [d.name for d in deployments]
        self._total = len(prompts) * int(self.repeats.value)
        self.progress.max = max(1, self._total * len(deployments))
        self.progress.value = 0
        self._busy(True)
        self._say(f"run #{self.run_count}: {len(prompts)} prompts × {len(deployments)} "
                  f"deployments × {self.repeats.value} repeats…")
        self._paint_counters(force=True)

    async def _run(self, deployments: list[Deployment], prompts: PromptSet) -> Results | None:
        from compare.runner import arun  # imported late: the widget module loads fast

        started = time.perf_counter()
        results: Results | None = None
        try:
            results = await arun(
                prompts, deployments, repeats=int(self.repeats.value),
                out=self._run_dir(), concurrency=int(self.concurrency.value), progress=False,
                on_record=self._on_record, **self._overrides())
        except asyncio.CancelledError:
            self.stopped = True
        except Exception as exc:  # shown in the status line; wait() re-raises it
            self.error = exc
        try:
            if results is None or len(results) < len(self.records):
                # Stopped or failed: everything that finished is still shown and exportable.
                results = Results.from_records(self.records)
            self.results = results
            self._paint_counters(force=True)
            elapsed = time.perf_counter() - started
            await self._render(results)
        finally:
            self._busy(False)  # Run comes back only once the tabs show this run
        # Said last, once every tab shows this run: "run #N done" means everything is in place.
        if self.error is not None:
            self._say(f"run #{self.run_count} failed after {elapsed:.1f} s: "
                      f"{type(self.error).__name__}: {self.error}", error=True)
        else:
            word = "stopped" if self.stopped else "done"
            self._say(f"run #{self.run_count} {word}: {len(results)} records in {elapsed:.1f} s")
        return results

    def _run_dir(self) -> Path | None:
        # The run number keeps two runs in one second apart (a shared dir would replay as cached).
        stamp = time.strftime("explorer-%Y%m%d-%H%M%S")
        return self.out_dir / f"{stamp}-{self.run_count}" if self.out_dir else None

    def _on_record(self, record: Record) -> None:
        self.records.append(record)
        self.progress.value = len(self.records)
        self._paint_counters()

    def _paint_counters(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_paint < _LIVE_EVERY_S:
            return
        self._last_paint = now
        self.counters.value = _counters_html(self.records, self._names, self._total)

    async def _render(self, results: Results) -> None:
        self.outputs.value = side_by_side_html(results, self.prompts)
        self.frame_view.value = self._frame_html(results)
        # Drawing PNGs takes a second or two: do it off the event loop so the kernel stays live.
        pngs = await asyncio.to_thread(
            lambda: [(title, _figure_png(fn(results))) for title, fn in CHARTS])
        # flex-start: images keep their natural size (a stretched PNG looks blurred).
        self.charts.children = [
            w.VBox([w.HTML(f"<b>{html.escape(title)}</b>"),
                    w.Image(value=png, format="png",
                            layout=w.Layout(max_width="100%", height="auto"))],
                   layout=w.Layout(align_items="flex-start"))
            for title, png in pngs
        ]

    @staticmethod
    def _frame_html(results: Results) -> str:
        cols = [c for c in FRAME_COLUMNS if c in results.frame.columns]
        view = results.frame[cols].copy()
        if "output" in view:
            view["output"] = view["output"].fillna("").str.slice(0, 120)
        table = view.to_html(index=False, max_rows=500, na_rep="",
                             float_format=lambda v: f"{v:.3f}")
        legend = "".join(f"<li><b>{k}</b>: {html.escape(v)}</li>" for k, v in METRICS.items()
                         if k in cols)
        return (f'<div style="max-height:420px;overflow:auto">{table}</div>'
                f'<ul style="font-size:11px;color:#555">{legend}</ul>')

    def _busy(self, busy: bool) -> None:
        self.run_button.disabled = busy
        self.stop_button.disabled = not busy

    def _say(self, text: str, error: bool = False) -> None:
        color = "#b00" if error else "#333"
        self.status.value = f'<span style="color:{color}">{html.escape(text)}</span>'

    # -- export ----------------------------------------------------------------------------

    def _export_target(self) -> Path:
        if self.results is None or not len(self.results):
            raise ConfigError("nothing to export yet: run first", field="results")
        return Path(self.export_dir.value.strip() or ".").expanduser()

    def export_parquet(self, _button: Any = None) -> Path | None:
        """Save results.parquet + manifest.json into the export directory (Results.save)."""
        try:
            directory = self.results.save(self._export_target())  # type: ignore[union-attr]
        except (CompareError, OSError) as exc:
            self.export_status.value = f'<span style="color:#b00">{html.escape(str(exc))}</span>'
            return None
        path = directory / "results.parquet"
        self.export_status.value = f"wrote <code>{html.escape(str(path))}</code>"
        return path

    def export_csv(self, _button: Any = None) -> Path | None:
        """Save the records frame as results.csv into the export directory."""
        try:
            target = self._export_target()
            target.mkdir(parents=True, exist_ok=True)
            path = target / "results.csv"
            self.results.frame.to_csv(path, index=False)  # type: ignore[union-attr]
        except (CompareError, OSError) as exc:
            self.export_status.value = f'<span style="color:#b00">{html.escape(str(exc))}</span>'
            return None
        self.export_status.value = f"wrote <code>{html.escape(str(path))}</code>"
        return path
