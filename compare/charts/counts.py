"""Counts per deployment: final records by status, mean tokens per request, total cost."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from compare.charts.base import (
    NO_RECORDS,
    STATUS_COLORS,
    Canvas,
    ChartFigure,
    ResultsLike,
    deployment_colors,
    deployment_names,
    legend_outside,
    numeric,
    say,
    shorten,
)
from compare.records import METRICS, STATUSES


def _status_counts(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    status = frame["status"].astype(str).where(frame["status"].astype(str).isin(STATUSES), "other")
    counts = pd.crosstab(frame["deployment"].astype(str), status)
    order = [s for s in (*STATUSES, "other") if s in counts.columns]
    return counts.reindex(index=names, columns=order, fill_value=0)


def draw_status(canvas: Canvas, results: ResultsLike) -> None:
    """Stacked bars of final records by status, one bar per deployment."""
    ax = canvas.add_subplot()
    ax.set_title("status of each final record per deployment", fontsize=11)
    frame = results.frame
    if frame.empty:
        say(ax, NO_RECORDS)
        return
    counts = _status_counts(frame, deployment_names(results))
    y = np.arange(len(counts))[::-1]
    left = np.zeros(len(counts))
    # A count is written in its segment only where it fits (a 1-row sliver gets no label).
    smallest = 0.04 * float(counts.sum(axis=1).max() or 1)
    for status in counts.columns:
        vals = counts[status].to_numpy(dtype=float)
        ax.barh(y, vals, left=left, color=STATUS_COLORS[status], label=status, height=0.6)
        for yi, li, v in zip(y, left, vals, strict=True):
            if v >= smallest:
                ax.text(li + v / 2, yi, str(int(v)), ha="center", va="center", fontsize=8,
                        color="black" if status == "rate_limited" else "white")
        left += vals
    ax.set_yticks(y, [shorten(n) for n in counts.index])
    ax.set_ylim(-0.6, len(counts) - 0.4)
    ax.set_xlabel("records (prompt × repeat), by status")
    ax.grid(axis="x", alpha=0.3)
    legend_outside(ax, title="status")


def status_breakdown(results: ResultsLike) -> Figure:
    """Stacked bars of record counts per status per deployment."""
    n = max(1, len(deployment_names(results)))
    fig = ChartFigure(figsize=(9, 1.6 + 0.4 * n), layout="constrained")
    draw_status(fig, results)
    return fig


# ----------------------------------------------------------------------------- tokens and cost


def has_prices(results: ResultsLike) -> bool:
    """Whether any row has a cost (some deployment has per-1k-token prices)."""
    return bool(numeric(results.frame, "cost").notna().any())


def _draw_tokens(ax: Any, frame: pd.DataFrame, names: list[str], title: str) -> None:
    ax.set_title(title, fontsize=11)
    dep = frame["deployment"].astype(str)
    y = np.arange(len(names))[::-1]
    h = 0.38
    tokens = pd.DataFrame({
        "prompt_tokens": numeric(frame, "prompt_tokens").groupby(dep).mean(),
        "completion_tokens": numeric(frame, "completion_tokens").groupby(dep).mean(),
    }).reindex(names)
    if tokens.isna().all().all():
        say(ax, "no token counts\n(the service reported no usage)")
    else:
        ax.barh(y + h / 2, tokens["prompt_tokens"].fillna(0), height=h, color="#4c72b0",
                label=METRICS["prompt_tokens"])
        ax.barh(y - h / 2, tokens["completion_tokens"].fillna(0), height=h, color="#dd8452",
                label=METRICS["completion_tokens"])
        ax.set_xlabel("tokens per request (mean over records with usage)")
        # Under the axis: inside it would cover the bars of the first deployments.
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8,
                  frameon=False)
        ax.grid(axis="x", alpha=0.3)
    ax.set_yticks(y, [shorten(n) for n in names])


def _draw_cost(ax: Any, frame: pd.DataFrame, names: list[str]) -> None:
    ax.set_title("total cost per deployment", fontsize=11)
    y = np.arange(len(names))[::-1]
    totals = numeric(frame, "cost").groupby(frame["deployment"].astype(str)).sum(min_count=1)
    totals = totals.reindex(names)
    colors = deployment_colors(names)
    ax.barh(y, totals.fillna(0), height=0.6, color=[colors[n] for n in names])
    for yi, v in zip(y, totals, strict=True):
        ax.text(0 if not math.isfinite(v) else v, yi,
                "  no price" if not math.isfinite(v) else f" {v:.4g}", va="center", fontsize=8)
    ax.set_xlabel(METRICS["cost"] + ", summed over records")
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlim(0, max(float(totals.max(skipna=True) or 0), 1e-12) * 1.3)


def draw_tokens_cost(canvas: Canvas, results: ResultsLike) -> None:
    """Mean tokens per request, and total cost beside it when any deployment has prices (the
    tokens title says "no prices configured" otherwise, instead of an empty cost panel)."""
    frame = results.frame
    names = deployment_names(results)
    title = "mean tokens per request (from usage)"
    if frame.empty:
        say(canvas.add_subplot(), NO_RECORDS)
        return
    if not has_prices(results):
        _draw_tokens(canvas.add_subplot(), frame, names,
                     title + " · cost: no per-1k-token prices configured")
        return
    ax_tok, ax_cost = canvas.subplots(1, 2, sharey=True)
    _draw_tokens(ax_tok, frame, names, title)
    _draw_cost(ax_cost, frame, names)


def tokens_and_cost(results: ResultsLike) -> Figure:
    """Mean prompt / completion tokens and total cost per deployment, side by side (tokens
    alone, saying so, when no deployment has prices)."""
    n = max(1, len(deployment_names(results)))
    width = 11 if has_prices(results) else 7.5
    fig = ChartFigure(figsize=(width, 2.4 + 0.4 * n), layout="constrained")
    draw_tokens_cost(fig, results)
    return fig
