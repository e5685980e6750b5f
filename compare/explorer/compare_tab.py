"""The explorer's "compare" tab: which deployment is better on a metric, by how much, how sure.

A metric picker (score columns first, then latency_s, ttft_s and cost where they have data) and
a baseline picker drive `Results.leaderboard(metric)`, `Results.compare(baseline=...)` drawn by
`compare.stats.plots.forest_plot` and, for a score, `compare.charts.quality_chart` (the score
beside latency and cost). When the run has human votes from the rate tab, the deployments ranked
by them (`Results.bradley_terry(source="human")`) come last.

Statistics and PNGs take a second or two, so they are computed off the event loop, one at a
time (warning filters are process-wide: two fits at once would undo each other's), and a newer
request (another metric) cancels the painting of an older one. Votes arriving while the ranking
is being computed are folded into one more computation.
"""

from __future__ import annotations

import asyncio
import html
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import ipywidgets as w
import pandas as pd

from compare.errors import CompareError
from compare.explorer.html import message_html
from compare.explorer.kernel import BackgroundTask

TIMING_METRICS: Final = ("latency_s", "ttft_s", "cost")
BOARD_COLUMNS: Final = ("rank", "mean", "ci_low", "ci_high", "n_prompts", "n_obs",
                        "latency_s_p50", "cost_per_1k_prompts", "note")
COMPARE_COLUMNS: Final = ("b", "a", "test", "n_pairs", "mean_a", "mean_b", "diff", "ci_low",
                          "ci_high", "ratio", "ratio_ci_low", "ratio_ci_high", "p_adj",
                          "significant", "wins", "losses", "ties", "note")
HUMAN_COLUMNS: Final = ("rating", "rating_ci_low", "rating_ci_high", "comparisons", "wins",
                        "losses", "ties", "win_rate")
TABLE_STYLE: Final = ('<style>table.cmp-stats {border-collapse: collapse; font-size: 12px;} '
                      "table.cmp-stats td, table.cmp-stats th {border: 1px solid #ddd; "
                      "padding: 2px 8px; text-align: right;} table.cmp-stats th "
                      "{background: #f3f3f3;}</style>")


def metric_options(frame: pd.DataFrame) -> list[str]:
    """The metrics the picker offers: score columns with a value, then timing and cost."""
    scores = [str(c) for c in frame.columns
              if str(c).startswith("score_") and frame[c].notna().any()]
    timing = [c for c in TIMING_METRICS
              if c in frame and pd.to_numeric(frame[c], errors="coerce").notna().any()]
    return scores + timing


def table_html(table: pd.DataFrame, columns: tuple[str, ...], caption: str = "") -> str:
    """A statistics table as a small HTML table under `caption`: four significant digits, the
    index (deployment) as the first column, columns with nothing in them left out."""
    shown = table[[c for c in columns if c in table.columns]]
    if shown.index.name is not None:
        shown = shown.reset_index()
    blank = [c for c in shown.columns
             if shown[c].isna().all() or shown[c].astype(str).eq("").all()]
    body = shown.drop(columns=blank).to_html(classes="cmp-stats", border=0, na_rep="",
                                             index=False, float_format=lambda v: f"{v:.4g}")
    head = f'<h4 style="margin:10px 0 4px">{html.escape(caption)}</h4>' if caption else ""
    return TABLE_STYLE + head + body


def set_image(image: w.Image, png: bytes) -> None:
    """Show `png`, or hide the image when there is none (an empty image draws a broken icon)."""
    image.value = png
    image.layout.display = "" if png else "none"


def _png(fig: Any) -> bytes:
    from compare.explorer.layout import figure_png

    return figure_png(fig)


@dataclass
class ComparePage:
    """What the tab shows for one metric and baseline."""

    board: str = ""
    comparison: str = ""
    forest: bytes = b""
    quality: bytes = b""
    notes: list[str] = field(default_factory=list)


def build_page(results: Any, metric: str, baseline: str | None) -> ComparePage:
    """Leaderboard, paired comparisons vs `baseline` with their forest plot, and (a score) the
    quality chart. Runs off the event loop."""
    from compare.charts import quality_chart
    from compare.stats.plots import forest_plot

    page = ComparePage()
    board = results.leaderboard(metric)
    direction = "higher" if board.attrs.get("higher_is_better", True) else "lower"
    page.board = table_html(board, BOARD_COLUMNS, (
        f"Leaderboard: {metric}, mean over prompts with its {board.attrs['level']:.0%} interval "
        f"({direction} is better; rank 1 is best)"))
    if metric.startswith("score_"):
        page.quality = _png(quality_chart(results, metric))
    if len(results.deployments) < 2:
        page.notes.append("comparisons need at least two deployments")
        return page
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = results.compare(baseline=baseline, metrics=[metric])
    page.notes += [str(c.message) for c in caught]
    page.comparison = table_html(table, COMPARE_COLUMNS, (
        f"Is the difference real? Each deployment (b) vs {baseline} (a), paired by prompt; "
        "p_adj is Holm-adjusted"))
    page.forest = _png(forest_plot(table))
    return page


def human_html(results: Any) -> str:
    """The deployments ranked by the rate tab's votes (Bradley–Terry), or why not yet."""
    ratings = results.ratings
    if ratings.empty:
        return ""
    caption = (f"Ranked by your votes ({len(ratings)} in ratings.jsonl): Bradley–Terry "
               "ratings on the Elo scale, bootstrap intervals over prompts")
    try:
        ranking = results.bradley_terry(source="human")
    except CompareError as exc:
        return f"<h4>{html.escape(caption)}</h4>" + message_html(f"not yet: {exc}")
    prior = ranking.attrs.get("prior") or ""
    note = f'<p style="font-size:11px;color:#555">{html.escape(prior)}</p>' if prior else ""
    return table_html(ranking, HUMAN_COLUMNS, caption) + note


class CompareTab:
    """The compare tab's widgets (`ui`): pickers, tables, the forest plot, the quality chart and
    the ranking by human votes. `show(results)` loads a run; changing a picker redraws."""

    def __init__(self) -> None:
        self.results: Any = None
        self.background = BackgroundTask()
        self.votes_background = BackgroundTask()
        self._votes_stale = False
        self._computing = threading.Lock()
        self.metric = w.Dropdown(description="metric", options=[],
                                 style={"description_width": "60px"})
        self.baseline = w.Dropdown(description="baseline", options=[],
                                   style={"description_width": "60px"})
        self.status = w.HTML("<i>Run (or open a saved run) to compare deployments.</i>")
        self.board = w.HTML()
        self.comparison = w.HTML()
        self.forest = w.Image(format="png", layout=w.Layout(max_width="100%", height="auto"))
        self.quality = w.Image(format="png", layout=w.Layout(max_width="100%", height="auto"))
        self.human = w.HTML()
        set_image(self.forest, b"")
        set_image(self.quality, b"")
        self.ui = w.VBox([w.HBox([self.metric, self.baseline]), self.status, self.board,
                          self.quality, self.comparison, self.forest, self.human],
                         layout=w.Layout(align_items="flex-start"))
        self._quiet = False
        self.metric.observe(self._picked, names="value")
        self.baseline.observe(self._picked, names="value")

    def _set_pickers(self, results: Any) -> bool:
        """Fill the pickers from `results`; False when there is nothing to pick."""
        options = metric_options(results.frame)
        self._quiet = True  # one redraw for the new run, not one per changed option
        try:
            keep = self.metric.value if self.metric.value in options else None
            self.metric.options = options
            self.metric.value = keep or (options[0] if options else None)
            names = list(results.deployments)
            base = self.baseline.value if self.baseline.value in names else None
            self.baseline.options = names
            self.baseline.value = base or (names[0] if names else None)
        finally:
            self._quiet = False
        return bool(options)

    async def render(self, results: Any) -> None:
        """Show `results` (awaited by the explorer's run, so "done" means this tab is filled)."""
        self.results = results
        if self._set_pickers(results):
            await self._draw(results, self.metric.value, self.baseline.value)
        else:
            self._empty(results)

    def render_now(self, results: Any) -> None:
        """Show `results` without an event loop (a script)."""
        self.results = results
        if self._set_pickers(results):
            self._paint(*self._compute(results, self.metric.value, self.baseline.value))
        else:
            self._empty(results)

    def _empty(self, results: Any) -> None:
        self.status.value = message_html("no metric with values in this run yet")
        self.board.value = self.comparison.value = ""
        set_image(self.forest, b"")
        set_image(self.quality, b"")
        self.human.value = human_html(results)

    def _picked(self, _change: Any) -> None:
        if self._quiet or self.results is None or self.metric.value is None:
            return
        self.refresh()

    def refresh(self) -> None:
        """Redraw for the current pickers (in the background when a kernel loop is known)."""
        results, metric, baseline = self.results, self.metric.value, self.baseline.value
        if results is None or metric is None:
            return
        self.status.value = message_html(f"computing {metric}…")
        if self.background.loop is None:
            self._paint(*self._compute(results, metric, baseline))
            return
        self.background.cancel()  # a newer choice wins over one still computing
        self.background.start(lambda: self._draw(results, metric, baseline))

    def refresh_votes(self) -> None:
        """Recompute the ranking by human votes (after a vote in the rate tab)."""
        if self.results is None:
            return
        if self.votes_background.loop is None:
            self.human.value = self._one_at_a_time(human_html, self.results)
            return
        self._votes_stale = True
        if not self.votes_background.running:
            self.votes_background.start(self._redraw_votes)

    async def _redraw_votes(self) -> None:
        while self._votes_stale:
            self._votes_stale = False
            html_text = await asyncio.to_thread(self._one_at_a_time, human_html, self.results)
            self.human.value = html_text

    async def wait(self) -> None:
        """Wait until the latest redraw (and ranking by votes) is painted."""
        await self.background.settle()
        await self.votes_background.settle()

    def _one_at_a_time(self, compute: Callable[..., Any], *args: Any) -> Any:
        with self._computing:
            return compute(*args)

    async def _draw(self, results: Any, metric: str, baseline: str | None) -> None:
        self._paint(*await asyncio.to_thread(
            self._one_at_a_time, self._compute, results, metric, baseline))

    @staticmethod
    def _compute(results: Any, metric: str, baseline: str | None
                 ) -> tuple[str, ComparePage | None, str, str]:
        try:
            page: ComparePage | None = build_page(results, metric, baseline)
            error = ""
        except CompareError as exc:
            page, error = None, f"{metric}: {exc}"
        return metric, page, error, human_html(results)

    def _paint(self, metric: str, page: ComparePage | None, error: str, human: str) -> None:
        self.human.value = human
        if page is None:
            self.status.value = message_html(error, error=True)
            self.board.value = self.comparison.value = ""
            set_image(self.forest, b"")
            set_image(self.quality, b"")
            return
        said = (f"<b>{html.escape(metric)}</b> (baseline "
                f"{html.escape(str(self.baseline.value))})")
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in page.notes)
        self.status.value = said + (f'<ul style="font-size:11px;color:#555">{notes}</ul>'
                                    if notes else "")
        self.board.value = page.board
        self.comparison.value = page.comparison
        set_image(self.forest, page.forest)
        set_image(self.quality, page.quality)
