"""What every chart shares: the figure class, status and deployment colours, the rows a latency
chart may use (timed: status ok, not replayed from a checkpoint), number formats and the message an
empty axes shows instead of raising.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import Colormap, ListedColormap
from matplotlib.figure import Figure, SubFigure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter


class ResultsLike(Protocol):
    """What charts need from `compare.results.Results`."""

    @property
    def frame(self) -> pd.DataFrame: ...

    @property
    def deployments(self) -> list[str]: ...

    def timing_frame(self) -> pd.DataFrame: ...


class ChartFigure(Figure):
    """A Figure that shows itself as a PNG in Jupyter whatever the backend: figures made without
    pyplot get no image from IPython's inline formatter, which only knows pyplot's."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=90)
        return buf.getvalue()


Canvas = Figure | SubFigure

NO_TIMING = ("no timing rows\n(no record with status ok was timed in this run;\n"
             "records replayed from a checkpoint never count)")
NO_RECORDS = "no records"

# Fixed colours per status so the same status reads the same in every chart and run.
STATUS_COLORS: dict[str, str] = {
    "ok": "#2ca02c",
    "error": "#d62728",
    "content_filtered": "#9467bd",
    "incomplete": "#ff7f0e",
    "timeout": "#8c564b",
    "rate_limited": "#bcbd22",
    "other": "#7f7f7f",
}

PERCENTILES = (50, 90, 99)
# Above this max/min ratio a linear axis squeezes the fast deployments into one pixel column
# (e.g. 0.2 s simulated next to 15 s CPU models): such axes switch to a log scale.
WIDE_RANGE = 20.0
PLAIN = FuncFormatter(lambda value, _pos: f"{value:g}")  # 0.1, 1, 10 rather than 10⁻¹
PCT_MARKERS = {50: ("|", 14), 90: ("D", 6), 99: ("^", 7)}

# tab20 reordered: the 10 saturated colours first, then their light partners, so 2-10 deployments
# get clearly distinct colours and up to 20 still get distinct ones.
_TAB20_ORDER = [*range(0, 20, 2), *range(1, 20, 2)]


def deployment_colors(names: Sequence[str]) -> dict[str, tuple[float, float, float, float]]:
    """One distinct colour per deployment, stable for a given order of names."""
    import matplotlib

    names = list(dict.fromkeys(names))
    if len(names) <= 10:
        cmap: Colormap = matplotlib.colormaps["tab10"]
        return {name: cmap(i) for i, name in enumerate(names)}
    if len(names) <= 20:
        tab20 = matplotlib.colormaps["tab20"]
        cmap = ListedColormap([tab20(i) for i in _TAB20_ORDER])
        return {name: cmap(i) for i, name in enumerate(names)}
    # Beyond 20, sample a perceptually ordered map; neighbours stay distinguishable by position.
    cmap = matplotlib.colormaps["turbo"]
    return {name: cmap(i / (len(names) - 1)) for i, name in enumerate(names)}


# ---------------------------------------------------------------------------------------- frames


def frame_deployments(frame: pd.DataFrame) -> list[str]:
    """Deployments in order of first appearance (the order the user listed them)."""
    if frame.empty or "deployment" not in frame:
        return []
    return [str(d) for d in pd.unique(frame["deployment"].astype(str))]


def deployment_names(results: ResultsLike) -> list[str]:
    """Deployments in run order (`Results.deployments`), else in order of first appearance."""
    names = getattr(results, "deployments", None)
    return [str(n) for n in names] if names is not None else frame_deployments(results.frame)


def timed_rows(results: ResultsLike) -> pd.DataFrame:
    frame = results.timing_frame()
    if "cached" in frame and len(frame):
        frame = frame[~frame["cached"].fillna(False).astype(bool)]
    return frame


def numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce")


def wide_range(values: np.ndarray) -> bool:
    v = values[np.isfinite(values) & (values > 0)]
    return len(v) > 1 and float(v.max()) / float(v.min()) > WIDE_RANGE


def say(ax: Axes, text: str) -> None:
    """Say why an axes is empty instead of drawing nothing or raising."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=11,
            color="#555555")
    ax.set_xticks([])
    ax.set_yticks([])


def format_seconds(value: float) -> str:
    """Seconds to three significant digits, always in seconds (0.089, 0.19, 2.56, 15.3), so
    numbers side by side share one unit."""
    if not math.isfinite(value):
        return "–"
    if value >= 1000:
        return f"{value:.0f}"
    return f"{value:.3g}"


def log_axis(axis: Any, low: float, high: float) -> None:
    """A log-scaled axis labelled in plain numbers at 1-2-5 steps (1 per decade beyond three
    decades) and no labels on minor ticks: matplotlib's defaults label minor ticks in scientific
    notation when a range spans about one decade, and the labels run into each other."""
    decades = math.log10(max(high, low * 1.0001) / low) if low > 0 else 1.0
    subs = (1.0, 2.0, 5.0) if decades <= 3 else (1.0,)
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(PLAIN)
    axis.set_minor_locator(LogLocator(base=10, subs=tuple(range(1, 10))))
    axis.set_minor_formatter(NullFormatter())


def untimed(results: ResultsLike, metric: str) -> list[str]:
    """Deployments with rows but no timed value of `metric` (e.g. batch deployments, whose
    latency is NaN): latency panels leave them out and say so with `untimed_note`."""
    timing = timed_rows(results)
    values = numeric(timing, metric)
    timed = set(timing.loc[values.notna(), "deployment"].astype(str)) if len(timing) else set()
    return [n for n in deployment_names(results) if n not in timed]


def untimed_note(results: ResultsLike, names: Sequence[str]) -> str:
    """'not shown (no timed rows): a, b' — with where batch turnaround is, when the frame has it."""
    if not names:
        return ""
    note = f"not shown (no timed rows): {', '.join(shorten(n, 20) for n in names)}"
    frame = results.frame
    if "batch_turnaround_s" in frame and numeric(frame, "batch_turnaround_s").notna().any():
        note += "; batch deployments: see batch_turnaround_s"
    return note


def legend_outside(ax: Axes, **kwargs: object) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
                  frameon=False, borderaxespad=0.0, **kwargs)


def shorten(label: str, width: int = 28) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"
