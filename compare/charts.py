"""Matplotlib figures from a `Results`.

Every public function takes a `Results` and returns a `matplotlib.figure.Figure`. Figures are built
with the object API (`Figure(...)`, never `pyplot`) so they work under any backend (Agg in tests and
on servers), never leak into pyplot's global figure list, and show inline in Jupyter as images.

Axis labels are the metric definitions of `compare.records.METRICS`, so a chart says what it
measures. Latency charts read only `Results.timing_frame()` rows (status ok, not cached) and drop
any `cached` row again: a record replayed from a checkpoint was not timed in this run.
Empty or all-error data never raises: the axes say "no timing rows" instead.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import Colormap, ListedColormap, LogNorm
from matplotlib.figure import Figure, SubFigure
from matplotlib.ticker import FuncFormatter

from compare.records import METRICS, STATUSES

__all__ = [
    "STATUS_COLORS",
    "ChartFigure",
    "dashboard",
    "deployment_colors",
    "latency_distribution",
    "latency_heatmap",
    "status_breakdown",
    "tokens_and_cost",
    "ttft_vs_decode",
]


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
_PLAIN = FuncFormatter(lambda value, _pos: f"{value:g}")  # 0.1, 1, 10 rather than 10⁻¹
_PCT_MARKERS = {50: ("|", 14), 90: ("D", 6), 99: ("^", 7)}

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


def _deployments(frame: pd.DataFrame) -> list[str]:
    """Deployments in order of first appearance (the order the user listed them)."""
    if frame.empty or "deployment" not in frame:
        return []
    return [str(d) for d in pd.unique(frame["deployment"].astype(str))]


def _names(results: ResultsLike) -> list[str]:
    """Deployments in run order (`Results.deployments`), else in order of first appearance."""
    names = getattr(results, "deployments", None)
    return [str(n) for n in names] if names is not None else _names(results)


def _timing(results: ResultsLike) -> pd.DataFrame:
    frame = results.timing_frame()
    if "cached" in frame and len(frame):
        frame = frame[~frame["cached"].fillna(False).astype(bool)]
    return frame


def _numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce")


def _log_scale(values: np.ndarray) -> bool:
    v = values[np.isfinite(values) & (values > 0)]
    return len(v) > 1 and float(v.max()) / float(v.min()) > WIDE_RANGE


def _message(ax: Axes, text: str) -> None:
    """Say why an axes is empty instead of drawing nothing or raising."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=11,
            color="#555555")
    ax.set_xticks([])
    ax.set_yticks([])


def _fmt_s(value: float) -> str:
    if not math.isfinite(value):
        return "–"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 0.1:
        return f"{value:.2f}"
    return f"{value * 1000:.0f}ms"


def _legend_outside(ax: Axes, **kwargs: object) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
                  frameon=False, borderaxespad=0.0, **kwargs)


def _short(label: str, width: int = 28) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


# ------------------------------------------------------------------------ latency distribution


def _draw_latency(canvas: Canvas, results: ResultsLike, metric: str) -> None:
    ax = canvas.add_subplot()
    ax.set_title(f"{METRICS[metric].split(':')[0]} per deployment (p50 | p90 ◆ p99 ▲)", fontsize=11)
    timing = _timing(results)
    names = _names(results)
    values = {n: _numeric(timing[timing["deployment"].astype(str) == n], metric).dropna().to_numpy()
              for n in names} if len(timing) else {}
    if not any(len(v) for v in values.values()):
        _message(ax, NO_TIMING)
        ax.set_xlabel(METRICS[metric])
        return
    colors = deployment_colors(names)
    # Top to bottom in the user's order.
    positions = {n: len(names) - i for i, n in enumerate(names)}
    every = np.concatenate([v for v in values.values() if len(v)])
    x_max = float(every.max())
    log = _log_scale(every)
    for name in names:
        data, y = values[name], positions[name]
        if not len(data):
            ax.annotate("  no timing rows", xy=(0.0, y), xycoords=("axes fraction", "data"),
                        va="center", fontsize=8, color="#555555")
            continue
        box = ax.boxplot(data, positions=[y], orientation="horizontal", widths=0.55,
                         patch_artist=True, showfliers=True, whis=(5, 95),
                         flierprops={"markersize": 3, "markeredgecolor": colors[name]},
                         medianprops={"color": "black"})
        for patch in box["boxes"]:
            patch.set_facecolor((*colors[name][:3], 0.35))
            patch.set_edgecolor(colors[name])
        pct = np.percentile(data, PERCENTILES)
        for p, v in zip(PERCENTILES, pct, strict=True):
            marker, size = _PCT_MARKERS[p]
            ax.plot([v], [y], marker=marker, markersize=size, color="black", linestyle="none",
                    label=f"p{p}" if name == names[0] else None)
        # In the right margin (axes x > 1) so the numbers never cover a box or marker.
        text = f"p50 {_fmt_s(pct[0])}  p90 {_fmt_s(pct[1])}  p99 {_fmt_s(pct[2])}  n={len(data)}"
        ax.annotate(text, xy=(1.01, y), xycoords=("axes fraction", "data"), va="center", fontsize=8)
    ax.set_yticks([positions[n] for n in names], [_short(n) for n in names])
    ax.set_ylim(0.4, len(names) + 0.6)
    if log:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(_PLAIN)
        ax.set_xlim(float(every[every > 0].min()) * 0.7, x_max * 1.4)
    else:
        ax.set_xlim(0, x_max * 1.05)
    scale = ", log scale" if log else ""
    ax.set_xlabel(METRICS[metric] + f"  (box: p25-p75, whiskers: p5-p95{scale})")
    ax.grid(axis="x", alpha=0.3)


def latency_distribution(results: ResultsLike, metric: str = "latency_s") -> Figure:
    """Box plot per deployment of `latency_s` (or `ttft_s`, `wall_s`) with p50/p90/p99 marked."""
    n = max(1, len(_names(results)))
    fig = ChartFigure(figsize=(9, 1.6 + 0.45 * n), layout="constrained")
    _draw_latency(fig, results, metric)
    return fig


# ------------------------------------------------------------------------ TTFT vs decode tok/s


def _draw_scatter(canvas: Canvas, results: ResultsLike) -> None:
    ax = canvas.add_subplot()
    ax.set_title("TTFT vs decode tokens/s (one point per timed request)", fontsize=11)
    ax.set_xlabel(METRICS["ttft_s"])
    ax.set_ylabel(METRICS["decode_tps"])
    timing = _timing(results)
    names = _names(results)
    colors = deployment_colors(names)
    drawn = 0
    ttfts = []
    for name in names:
        rows = timing[timing["deployment"].astype(str) == name] if len(timing) else timing
        x, y = _numeric(rows, "ttft_s"), _numeric(rows, "decode_tps")
        keep = x.notna() & y.notna()
        if not keep.any():
            continue
        ax.scatter(x[keep], y[keep], s=22, alpha=0.75, color=colors[name], label=_short(name),
                   edgecolors="none")
        drawn += int(keep.sum())
        ttfts.append(x[keep].to_numpy(dtype=float))
    if not drawn:
        _message(ax, NO_TIMING + "\nwith both TTFT and decode tokens/s")
        return
    if _log_scale(np.concatenate(ttfts)):
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(_PLAIN)
        ax.set_xlabel(METRICS["ttft_s"] + " (log scale)")
    else:
        ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.text(0.99, 0.99, "better: up and left", ha="right", va="top", transform=ax.transAxes,
            fontsize=8, color="#555555")
    _legend_outside(ax, title="deployment")


def ttft_vs_decode(results: ResultsLike) -> Figure:
    """Scatter of TTFT (x) against decode tokens/s (y), coloured by deployment."""
    n = len(_names(results))
    fig = ChartFigure(figsize=(8.5, 5 + 0.1 * max(0, n - 10)), layout="constrained")
    _draw_scatter(fig, results)
    return fig


# ---------------------------------------------------------------------------- status breakdown


def _status_counts(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    status = frame["status"].astype(str).where(frame["status"].astype(str).isin(STATUSES), "other")
    counts = pd.crosstab(frame["deployment"].astype(str), status)
    order = [s for s in (*STATUSES, "other") if s in counts.columns]
    return counts.reindex(index=names, columns=order, fill_value=0)


def _draw_status(canvas: Canvas, results: ResultsLike) -> None:
    ax = canvas.add_subplot()
    ax.set_title("status of each final record per deployment", fontsize=11)
    frame = results.frame
    if frame.empty:
        _message(ax, NO_RECORDS)
        return
    counts = _status_counts(frame, _names(results))
    y = np.arange(len(counts))[::-1]
    left = np.zeros(len(counts))
    for status in counts.columns:
        vals = counts[status].to_numpy(dtype=float)
        ax.barh(y, vals, left=left, color=STATUS_COLORS[status], label=status, height=0.6)
        for yi, li, v in zip(y, left, vals, strict=True):
            if v > 0:
                ax.text(li + v / 2, yi, str(int(v)), ha="center", va="center", fontsize=7,
                        color="white" if status != "rate_limited" else "black")
        left += vals
    ax.set_yticks(y, [_short(n) for n in counts.index])
    ax.set_xlabel("records (prompt × repeat), by status")
    ax.grid(axis="x", alpha=0.3)
    _legend_outside(ax, title="status")


def status_breakdown(results: ResultsLike) -> Figure:
    """Stacked bars of record counts per status per deployment."""
    n = max(1, len(_names(results)))
    fig = ChartFigure(figsize=(9, 1.6 + 0.4 * n), layout="constrained")
    _draw_status(fig, results)
    return fig


# ----------------------------------------------------------------------------- tokens and cost


def _draw_tokens_cost(canvas: Canvas, results: ResultsLike) -> None:
    ax_tok, ax_cost = canvas.subplots(1, 2, sharey=True)
    ax_tok.set_title("mean tokens per request (from usage)", fontsize=11)
    ax_cost.set_title("total cost per deployment", fontsize=11)
    frame = results.frame
    if frame.empty:
        _message(ax_tok, NO_RECORDS)
        _message(ax_cost, NO_RECORDS)
        return
    names = _names(results)
    dep = frame["deployment"].astype(str)
    y = np.arange(len(names))[::-1]
    h = 0.38
    tokens = pd.DataFrame({
        "prompt_tokens": _numeric(frame, "prompt_tokens").groupby(dep).mean(),
        "completion_tokens": _numeric(frame, "completion_tokens").groupby(dep).mean(),
    }).reindex(names)
    if tokens.isna().all().all():
        _message(ax_tok, "no token counts\n(the service reported no usage)")
    else:
        ax_tok.barh(y + h / 2, tokens["prompt_tokens"].fillna(0), height=h, color="#4c72b0",
                    label=METRICS["prompt_tokens"])
        ax_tok.barh(y - h / 2, tokens["completion_tokens"].fillna(0), height=h, color="#dd8452",
                    label=METRICS["completion_tokens"])
        ax_tok.set_xlabel("tokens per request (mean over records with usage)")
        ax_tok.legend(loc="best", fontsize=8, framealpha=0.85)
        ax_tok.grid(axis="x", alpha=0.3)
    ax_tok.set_yticks(y, [_short(n) for n in names])
    cost = _numeric(frame, "cost")
    if cost.isna().all():
        _message(ax_cost, "no cost\n(no per-1k-token prices configured)")
        ax_cost.set_yticks(y, [_short(n) for n in names])
        return
    totals = cost.groupby(dep).sum(min_count=1).reindex(names)
    colors = deployment_colors(names)
    ax_cost.barh(y, totals.fillna(0), height=0.6, color=[colors[n] for n in names])
    for yi, v in zip(y, totals, strict=True):
        ax_cost.text(0 if not math.isfinite(v) else v, yi,
                     "  no price" if not math.isfinite(v) else f" {v:.4g}",
                     va="center", fontsize=8)
    ax_cost.set_xlabel(METRICS["cost"] + ", summed over records")
    ax_cost.grid(axis="x", alpha=0.3)
    ax_cost.set_xlim(0, max(float(totals.max(skipna=True) or 0), 1e-12) * 1.3)


def tokens_and_cost(results: ResultsLike) -> Figure:
    """Mean prompt / completion tokens and total cost per deployment, side by side."""
    n = max(1, len(_names(results)))
    fig = ChartFigure(figsize=(11, 2.4 + 0.4 * n), layout="constrained")
    _draw_tokens_cost(fig, results)
    return fig


# ----------------------------------------------------------------------------- latency heatmap


def _prompt_order(frame: pd.DataFrame) -> list[str]:
    return [str(p) for p in pd.unique(frame["prompt_id"].astype(str))] if len(frame) else []


def _draw_heatmap(canvas: Canvas, results: ResultsLike, metric: str, max_prompts: int) -> None:
    ax = canvas.add_subplot()
    label = METRICS[metric].split(":")[0]
    timing = _timing(results)
    names = _names(results)
    prompts = _prompt_order(results.frame)
    shown = prompts[:max_prompts]
    more = f" (first {len(shown)} of {len(prompts)} prompts)" if len(prompts) > len(shown) else ""
    ax.set_title(f"median {label} per prompt × deployment{more}", fontsize=11)
    if not len(timing) or _numeric(timing, metric).isna().all():
        _message(ax, NO_TIMING)
        return
    grid = (
        timing.assign(_v=_numeric(timing, metric), deployment=timing["deployment"].astype(str),
                      prompt_id=timing["prompt_id"].astype(str))
        .pivot_table(index="prompt_id", columns="deployment", values="_v", aggfunc="median")
        .reindex(index=shown, columns=names)
    )
    data = np.ma.masked_invalid(grid.to_numpy(dtype=float))
    import matplotlib

    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#dddddd")
    values = data.compressed()
    log = _log_scale(values)
    norm = LogNorm(float(values[values > 0].min()), float(values.max())) if log else None
    image = ax.imshow(data, aspect="auto", cmap=cmap, interpolation="nearest", norm=norm)
    cbar = canvas.colorbar(image, ax=ax, shrink=0.9)
    cbar.set_label(METRICS[metric] + (", log colour scale" if log else ""), fontsize=8)
    if log:
        cbar.ax.yaxis.set_major_formatter(_PLAIN)
    ax.set_xticks(range(len(names)), [_short(n, 18) for n in names], rotation=35, ha="right",
                  fontsize=8)
    ax.set_yticks(range(len(shown)), [_short(p, 24) for p in shown], fontsize=8)
    ax.set_xlabel("deployment (grey: no timed record)")
    ax.set_ylabel("prompt")
    if data.size <= 240:
        for (i, j), v in np.ndenumerate(grid.to_numpy(dtype=float)):
            if math.isfinite(v):
                # Dark text on the light (yellow) end of viridis, light text elsewhere.
                light = float(image.norm(v)) > 0.6
                ax.text(j, i, _fmt_s(v), ha="center", va="center", fontsize=7,
                        color="black" if light else "white")


def latency_heatmap(results: ResultsLike, metric: str = "latency_s",
                    max_prompts: int = 40) -> Figure:
    """Median latency per prompt (rows) and deployment (columns); grey where nothing was timed."""
    frame = results.frame
    n_dep = max(1, len(_names(results)))
    n_prompts = max(1, min(max_prompts, len(_prompt_order(frame))))
    fig = ChartFigure(figsize=(3.5 + 0.75 * n_dep, 2.2 + 0.28 * n_prompts), layout="constrained")
    _draw_heatmap(fig, results, metric, max_prompts)
    return fig


# ----------------------------------------------------------------------------------- dashboard


def dashboard(results: ResultsLike, max_prompts: int = 30) -> Figure:
    """All charts on one figure (the demo's charts.png)."""
    frame = results.frame
    n_dep = max(1, len(_names(results)))
    n_prompts = max(1, min(max_prompts, len(_prompt_order(frame))))
    row0 = max(4.5, 1.6 + 0.45 * n_dep)
    row1 = max(4.0, 2.2 + 0.28 * n_prompts, 1.6 + 0.4 * n_dep)
    row2 = 2.4 + 0.4 * n_dep
    fig = ChartFigure(figsize=(18, row0 + row1 + row2 + 0.6), layout="constrained")
    fig.suptitle(f"compare: {n_dep} deployments, {len(frame)} records", fontsize=14)
    grid = fig.add_gridspec(3, 2, height_ratios=[row0, row1, row2])
    _draw_latency(fig.add_subfigure(grid[0, 0]), results, "latency_s")
    _draw_scatter(fig.add_subfigure(grid[0, 1]), results)
    _draw_status(fig.add_subfigure(grid[1, 0]), results)
    _draw_heatmap(fig.add_subfigure(grid[1, 1]), results, "latency_s", max_prompts)
    _draw_tokens_cost(fig.add_subfigure(grid[2, :]), results)
    return fig
