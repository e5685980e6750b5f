"""Counts per deployment: final records by status, mean tokens per request, total cost."""

from __future__ import annotations

import math

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
    ax = canvas.add_subplot()
    ax.set_title("status of each final record per deployment", fontsize=11)
    frame = results.frame
    if frame.empty:
        say(ax, NO_RECORDS)
        return
    counts = _status_counts(frame, deployment_names(results))
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
    ax.set_yticks(y, [shorten(n) for n in counts.index])
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


def draw_tokens_cost(canvas: Canvas, results: ResultsLike) -> None:
    ax_tok, ax_cost = canvas.subplots(1, 2, sharey=True)
    ax_tok.set_title("mean tokens per request (from usage)", fontsize=11)
    ax_cost.set_title("total cost per deployment", fontsize=11)
    frame = results.frame
    if frame.empty:
        say(ax_tok, NO_RECORDS)
        say(ax_cost, NO_RECORDS)
        return
    names = deployment_names(results)
    dep = frame["deployment"].astype(str)
    y = np.arange(len(names))[::-1]
    h = 0.38
    tokens = pd.DataFrame({
        "prompt_tokens": numeric(frame, "prompt_tokens").groupby(dep).mean(),
        "completion_tokens": numeric(frame, "completion_tokens").groupby(dep).mean(),
    }).reindex(names)
    if tokens.isna().all().all():
        say(ax_tok, "no token counts\n(the service reported no usage)")
    else:
        ax_tok.barh(y + h / 2, tokens["prompt_tokens"].fillna(0), height=h, color="#4c72b0",
                    label=METRICS["prompt_tokens"])
        ax_tok.barh(y - h / 2, tokens["completion_tokens"].fillna(0), height=h, color="#dd8452",
                    label=METRICS["completion_tokens"])
        ax_tok.set_xlabel("tokens per request (mean over records with usage)")
        ax_tok.legend(loc="best", fontsize=8, framealpha=0.85)
        ax_tok.grid(axis="x", alpha=0.3)
    ax_tok.set_yticks(y, [shorten(n) for n in names])
    cost = numeric(frame, "cost")
    if cost.isna().all():
        say(ax_cost, "no cost\n(no per-1k-token prices configured)")
        ax_cost.set_yticks(y, [shorten(n) for n in names])
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
    n = max(1, len(deployment_names(results)))
    fig = ChartFigure(figsize=(11, 2.4 + 0.4 * n), layout="constrained")
    draw_tokens_cost(fig, results)
    return fig
