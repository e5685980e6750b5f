"""Pictures of the statistics: a forest plot of paired differences, quality against cost/latency.

Figures are built with the object API (no pyplot), so they work under Agg and show inline in
Jupyter (`compare.charts.ChartFigure`). Intervals are the ones the tables report: a forest plot
draws `compare()` / `diff()` rows, the scatter draws `leaderboard()` means and intervals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from compare.charts import ChartFigure, deployment_colors
from compare.errors import ConfigError
from compare.stats.metrics import metric_info
from compare.stats.ranking import leaderboard

ROW_INCHES: Final = 0.42
SIGNIFICANT_COLOR: Final = "#1f77b4"
PLAIN_COLOR: Final = "#7f7f7f"
FRONT_COLOR: Final = "black"  # not a deployment colour, so the front reads on any point
# Ratio ticks people read at a glance ("0.5×", "2×") instead of powers of ten, most wanted first.
RATIO_TICKS: Final = (1.0, 0.5, 2.0, 0.1, 10.0, 0.25, 4.0, 0.2, 5.0, 0.8, 1.25, 0.67, 1.5, 0.01,
                      100.0, 0.02, 50.0, 0.05, 20.0, 0.9, 1.1)


def _row_label(row: pd.Series, group_col: str | None, same_a: bool) -> str:
    if "deployment" in row.index and row.get("a") == "old":
        label = str(row["deployment"])
    else:
        label = str(row["b"]) if same_a else f"{row['b']} vs {row['a']}"
    if group_col is not None:
        label += f"  [{row[group_col]}]"
    return label


def _group_column(table: pd.DataFrame) -> str | None:
    by = table.attrs.get("by")
    if by == "_run_deployment":
        return None
    return ("tag" if by == "tag" else by) if by and (by in table.columns or by == "tag") else None


def _forest_panel(ax: Axes, rows: pd.DataFrame, metric: str, group_col: str | None) -> None:
    ratio = "ratio" in rows.columns and rows["ratio"].notna().any()
    centre = rows["ratio"] if ratio else rows["diff"]
    low = rows["ratio_ci_low"] if ratio else rows["ci_low"]
    high = rows["ratio_ci_high"] if ratio else rows["ci_high"]
    same_a = rows["a"].nunique() == 1
    y = np.arange(len(rows))[::-1]
    for yi, (_, row), c, lo, hi in zip(y, rows.iterrows(), centre, low, high, strict=True):
        sig = bool(row["significant"])
        color = SIGNIFICANT_COLOR if sig else PLAIN_COLOR
        ax.plot([lo, hi], [yi, yi], color=color, linewidth=2, solid_capstyle="butt")
        ax.plot([c], [yi], "o", color=color, markerfacecolor=color if sig else "white",
                markersize=7, zorder=3)
    ax.axvline(1.0 if ratio else 0.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_yticks(y, [_row_label(r, group_col, same_a) for _, r in rows.iterrows()])
    ax.set_ylim(-0.7, len(rows) - 0.3)
    if ratio:
        _ratio_axis(ax)
    higher = bool(rows["higher_is_better"].iloc[0])
    run_diff = same_a and rows["a"].iloc[0] == "old"
    a_name, b_name = ("old", "new") if run_diff else ("a", "b")
    scale = (f"ratio {b_name} / {a_name} (log scale)" if ratio
             else f"difference {b_name} − {a_name}")
    base = ": new run vs old run" if run_diff else (
        f" vs {rows['a'].iloc[0]}" if same_a else "")
    ax.set_title(f"{metric}{base}", loc="left", fontsize=11)
    ax.set_xlabel(f"{scale}; {'higher' if higher else 'lower'} is better", fontsize=9)
    ax.grid(axis="x", alpha=0.3)


def _ratio_axis(ax: Axes) -> None:
    ax.set_xscale("log")
    low, high = ax.get_xlim()
    gap = math.log10(high / low) / 7  # at most ~7 labels, never crowded
    ticks: list[float] = []
    for tick in RATIO_TICKS:
        if low <= tick <= high and all(abs(math.log10(tick / t)) >= gap for t in ticks):
            ticks.append(tick)
    ax.xaxis.set_major_locator(FixedLocator(sorted(ticks) or [1.0]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def forest_plot(table: pd.DataFrame, metric: str | None = None) -> ChartFigure:
    """One panel per metric, one line per comparison row: the estimate and its interval.

    Latency-like rows (with a ratio) are drawn as ratios b/a on a log axis around 1, others as
    differences b − a around 0. Filled markers are significant after Holm, hollow ones are not.
    """
    if table.empty or "metric" not in table.columns:
        raise ConfigError("forest_plot needs the table returned by compare() or diff()")
    metrics = list(dict.fromkeys(table["metric"])) if metric is None else [metric]
    missing = [m for m in metrics if m not in set(table["metric"])]
    if missing:
        raise ConfigError(f"metric {missing[0]!r} is not in this table "
                          f"(it has {', '.join(dict.fromkeys(table['metric']))})", field="metric")
    group_col = _group_column(table)
    sizes = [int((table["metric"] == m).sum()) for m in metrics]
    height = sum(max(n, 2) * ROW_INCHES + 1.1 for n in sizes)
    fig = ChartFigure(figsize=(7.5, height), layout="constrained")
    axes = fig.subplots(len(metrics), 1, squeeze=False,
                        gridspec_kw={"height_ratios": [max(n, 2) for n in sizes]})[:, 0]
    for ax, m in zip(axes, metrics, strict=True):
        _forest_panel(ax, table[table["metric"] == m], m, group_col)
    level = 1 - float(table.attrs.get("alpha", 0.05))
    fig.suptitle(f"Paired differences with {level:.0%} intervals (unadjusted); "
                 "filled = significant after Holm", fontsize=10)
    return fig


def pareto_front(x: np.ndarray, y: np.ndarray, x_lower: bool, y_higher: bool) -> np.ndarray:
    """Boolean mask of points no other point beats on both axes (ties on one axis allowed)."""
    xs = x if x_lower else -x
    ys = -y if y_higher else y
    front = np.ones(len(x), dtype=bool)
    for i in range(len(x)):
        dominated = (xs <= xs[i]) & (ys <= ys[i]) & ((xs < xs[i]) | (ys < ys[i]))
        front[i] = not dominated.any()
    return front


def _points(frame: pd.DataFrame, quality: str, x: str, level: float,
            scorers: Mapping[str, Any] | None, order: Sequence[str] | None) -> pd.DataFrame:
    q = leaderboard(frame, quality, level, scorers=scorers, order=order, extras=False)
    c = leaderboard(frame, x, level, scorers=scorers, order=order, extras=False)
    factor = 1000.0 if x == "cost" else 1.0
    points = pd.DataFrame({
        "y": q["mean"], "y_low": q["ci_low"], "y_high": q["ci_high"],
        "x": c["mean"] * factor, "x_low": c["ci_low"] * factor, "x_high": c["ci_high"] * factor,
    })
    return points.dropna(subset=["x", "y"])


def _error(point: pd.Series, axis: str) -> np.ndarray:
    """[[below], [above]] for errorbar; no interval (one prompt) draws no bar."""
    below = point[axis] - point[f"{axis}_low"]
    above = point[f"{axis}_high"] - point[axis]
    return np.nan_to_num(np.array([[below], [above]], dtype=float)).clip(min=0)


def quality_scatter(results: Any, quality: str, x: str = "cost", *, level: float = 0.95,
                    ax: Axes | None = None) -> ChartFigure:
    """Quality (a score's mean over prompts) against cost or latency, with intervals both ways.

    `results` is a Results (or a tidy frame). Points on the Pareto front — no other deployment
    is both better and cheaper/faster — are red and joined by a line. Cost is shown per 1000
    prompts; latency as the mean over prompts of per-prompt medians.
    """
    frame = getattr(results, "frame", results)
    scorers = (getattr(results, "manifest", None) or {}).get("scorers")
    order = getattr(results, "deployments", None)
    points = _points(frame, quality, x, level, scorers, order)
    q_info, x_info = metric_info(frame, quality, scorers), metric_info(frame, x, scorers)
    fig = ChartFigure(figsize=(7, 5), layout="constrained") if ax is None else ax.figure
    ax = ax if ax is not None else fig.add_subplot()
    if points.empty:
        ax.text(0.5, 0.5, f"no deployment has both {quality} and {x}", ha="center",
                transform=ax.transAxes)
        return fig
    front = pareto_front(points["x"].to_numpy(), points["y"].to_numpy(),
                         not x_info.higher_is_better, q_info.higher_is_better)
    colors = deployment_colors(list(points.index))
    for (name, p), on_front in zip(points.iterrows(), front, strict=True):
        ax.errorbar(p["x"], p["y"], xerr=_error(p, "x"), yerr=_error(p, "y"), fmt="o",
                    color=colors[name], ecolor=colors[name], elinewidth=1.2, capsize=3,
                    markersize=9 if on_front else 7,
                    markeredgecolor=FRONT_COLOR if on_front else "white",
                    markeredgewidth=2, zorder=3)
        ax.annotate(str(name), (p["x"], p["y"]), xytext=(8, 6), textcoords="offset points",
                    fontsize=9, color="black", zorder=4,
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.75,
                          "edgecolor": "none"})
    line = points[front].sort_values("x")
    ax.plot(line["x"], line["y"], color=FRONT_COLOR, linewidth=1, linestyle="--", marker="o",
            markerfacecolor="none", markersize=9, markeredgewidth=2,
            label="Pareto front (black ring)", zorder=2)
    ax.set_xlabel(_x_label(x), fontsize=10)
    direction = "higher" if q_info.higher_is_better else "lower"
    ax.set_ylabel(f"{quality} (mean over prompts; {direction} is better)", fontsize=10)
    ax.set_title(f"{quality} vs {x}: {level:.0%} intervals both ways", loc="left", fontsize=11)
    ax.legend(loc="best", fontsize=9)
    ax.grid(alpha=0.3)
    ax.margins(0.15)
    return fig


def _x_label(x: str) -> str:
    if x == "cost":
        return "cost per 1000 prompts (mean per prompt × 1000; lower is better)"
    if x in ("latency_s", "ttft_s", "wall_s"):
        return f"{x}: mean over prompts of per-prompt median (s; lower is better)"
    return x


def quality_vs_cost(results: Any, quality: str, **kwargs: Any) -> ChartFigure:
    """`quality_scatter` with cost per 1000 prompts on the x axis."""
    return quality_scatter(results, quality, "cost", **kwargs)


def quality_vs_latency(results: Any, quality: str, **kwargs: Any) -> ChartFigure:
    """`quality_scatter` with latency (mean of per-prompt medians) on the x axis."""
    return quality_scatter(results, quality, "latency_s", **kwargs)
