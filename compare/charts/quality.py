"""Quality beside speed and cost: one row per deployment, three panels side by side.

Left: a score's mean over prompts with its interval (`compare.stats.leaderboard`: a t interval
over prompts, Wilson for a pass/fail score with one repeat). Middle: latency, the mean over
prompts of each prompt's median latency with its t interval (the x axis of
`compare.stats.plots.quality_vs_latency`). Right: cost per 1000 prompts (mean cost of a prompt's
ok answers × 1000, with its interval), left out when no row has a cost. Rows are sorted best
score first and each deployment keeps its colour in every panel, so a row reads across.

The statistics are imported on first use: `compare.charts` stays free of scipy/statsmodels.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from compare.charts.base import (
    ChartFigure,
    ResultsLike,
    deployment_colors,
    deployment_names,
    log_axis,
    numeric,
    say,
    shorten,
    wide_range,
)

ROW_INCHES: Final = 0.55
NO_VALUE: Final = "no data"


def _board(results: ResultsLike, metric: str, level: float) -> pd.DataFrame:
    from compare.stats.ranking import leaderboard

    scorers = (getattr(results, "manifest", None) or {}).get("scorers")
    return leaderboard(results.frame, metric, level, scorers=scorers,
                       order=deployment_names(results), extras=False)


def _label(value: float, metric: str) -> str:
    if not math.isfinite(value):
        return NO_VALUE
    if metric == "cost":
        return f"{value:.3g}"
    if metric in ("latency_s", "ttft_s"):
        return f"{value:.3g} s"
    return f"{value:.2f}"


def _panel(ax: Axes, board: pd.DataFrame, order: list[str], metric: str,
           titles: tuple[str, str], colors: dict[str, Any], scale: float = 1.0,
           log_ok: bool = True) -> None:
    """One dot with its interval per deployment, its value written above the dot; a log axis
    when values span more than WIDE_RANGE (0.2 s beside 15 s) and `log_ok`."""
    rows = board.reindex(order)
    means = rows["mean"].to_numpy(dtype=float) * scale
    lows = rows["ci_low"].to_numpy(dtype=float) * scale
    highs = rows["ci_high"].to_numpy(dtype=float) * scale
    y = np.arange(len(order))[::-1]
    ax.set_title(titles[0], fontsize=10, loc="left")
    ax.set_xlabel(titles[1], fontsize=9)
    if not np.isfinite(means).any():
        say(ax, f"no {metric} values")
        return
    for yi, name, mean, low, high in zip(y, order, means, lows, highs, strict=True):
        if not math.isfinite(mean):
            ax.text(0.5, yi, NO_VALUE, transform=ax.get_yaxis_transform(), ha="center",
                    va="center", fontsize=8, color="#777777")
            continue
        if math.isfinite(low) and math.isfinite(high):
            ax.plot([low, high], [yi, yi], color=colors[name], linewidth=2.5,
                    solid_capstyle="butt")
        ax.plot([mean], [yi], "o", color=colors[name], markersize=7, zorder=3)
        ax.annotate(_label(mean, metric), (mean, yi), xytext=(0, 6), textcoords="offset points",
                    ha="center", va="bottom", fontsize=8)
    ax.set_ylim(-0.7, len(order) - 0.3)
    ax.grid(axis="x", alpha=0.3)
    finite = np.concatenate([v[np.isfinite(v)] for v in (means, lows, highs)])
    if log_ok and wide_range(finite):
        ax.set_xscale("log")
        log_axis(ax.xaxis, float(finite[finite > 0].min()), float(finite.max()))
    ax.margins(x=0.12)


def _score_limits(ax: Axes, board: pd.DataFrame) -> None:
    """A pass/fail or 0–1 score on its whole scale, so 0.9 does not look like 0.1 at a glance."""
    values = board[["mean", "ci_low", "ci_high"]].to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    if len(finite) and finite.min() >= 0 and finite.max() <= 1:
        ax.set_xlim(-0.05, 1.08)


def _order(board: pd.DataFrame) -> list[str]:
    higher = bool(board.attrs.get("higher_is_better", True))
    ranked = board["mean"].sort_values(ascending=not higher, na_position="last")
    return [str(n) for n in ranked.index]


def quality_chart(results: ResultsLike, metric: str, *, level: float = 0.95) -> ChartFigure:
    """A score per deployment (mean over prompts with its `level` interval) beside latency and
    cost per 1000 prompts, one row per deployment, best score on top.

    `metric` is a score column (score_<name>) or any metric `Results.leaderboard` accepts. The
    cost panel is left out when no row has a cost; a deployment without timed rows (a batch
    deployment) says "no data" in the latency panel.
    """
    board = _board(results, metric, level)
    order = _order(board)
    has_cost = "cost" in results.frame and bool(numeric(results.frame, "cost").notna().any())
    panels = 3 if has_cost else 2
    height = 1.9 + ROW_INCHES * max(2, len(order))
    fig = ChartFigure(figsize=(4.4 * panels + 1.2, height), layout="constrained")
    axes = fig.subplots(1, panels, sharey=True,
                        gridspec_kw={"width_ratios": [1.25] + [1.0] * (panels - 1)})
    colors = deployment_colors(deployment_names(results))
    direction = "higher" if board.attrs.get("higher_is_better", True) else "lower"
    n_prompts = int(board["n_prompts"].max()) if len(board) else 0
    _panel(axes[0], board, order, metric, (f"{metric} ({direction} is better)",
                                           "mean over prompts"), colors, log_ok=False)
    _score_limits(axes[0], board)
    axes[0].set_yticks(np.arange(len(order))[::-1], [shorten(n, 24) for n in order])
    _panel(axes[1], _board(results, "latency_s", level), order, "latency_s",
           ("latency (s; lower is better)", "mean over prompts of each prompt's median"),
           colors)
    if has_cost:
        _panel(axes[2], _board(results, "cost", level), order, "cost",
               ("cost per 1000 prompts (lower is better)", "mean cost of a prompt × 1000"),
               colors, scale=1000.0)
    fig.suptitle(f"{metric} per deployment beside latency and cost: means over {n_prompts} "
                 f"prompts, {level:.0%} intervals", fontsize=11)
    return fig
