"""Latency per deployment (box plot with p50/p90/p99) and TTFT against decode tokens/s."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from compare.charts.base import (
    NO_TIMING,
    PCT_MARKERS,
    PERCENTILES,
    Canvas,
    ChartFigure,
    ResultsLike,
    deployment_colors,
    deployment_names,
    format_seconds,
    legend_outside,
    log_axis,
    numeric,
    say,
    shorten,
    timed_rows,
    untimed,
    untimed_note,
    wide_range,
)
from compare.records import METRICS


def _box(ax: Any, data: np.ndarray, y: float, color: Any, legend: bool) -> None:
    """One deployment's box (p25-p75, whiskers p5-p95), its p50/p90/p99 markers and numbers."""
    box = ax.boxplot(data, positions=[y], orientation="horizontal", widths=0.55,
                     patch_artist=True, showfliers=True, whis=(5, 95),
                     flierprops={"markersize": 3, "markeredgecolor": color},
                     medianprops={"color": "black"})
    for patch in box["boxes"]:
        patch.set_facecolor((*color[:3], 0.35))
        patch.set_edgecolor(color)
    pct = np.percentile(data, PERCENTILES)
    for p, v in zip(PERCENTILES, pct, strict=True):
        marker, size = PCT_MARKERS[p]
        ax.plot([v], [y], marker=marker, markersize=size, color="black", linestyle="none",
                label=f"p{p}" if legend else None)
    # In the right margin (axes x > 1) so the numbers never cover a box or marker.
    text = "  ".join(f"p{p} {format_seconds(v)}" for p, v in zip(PERCENTILES, pct, strict=True))
    ax.annotate(f"{text}  n={len(data)}", xy=(1.01, y), xycoords=("axes fraction", "data"),
                va="center", fontsize=8)


def draw_latency(canvas: Canvas, results: ResultsLike, metric: str) -> None:
    """Box per timed deployment, top to bottom in run order; untimed ones named under it."""
    ax = canvas.add_subplot()
    ax.set_title(f"{METRICS[metric].split(':')[0]} per deployment (p50 | p90 ◆ p99 ▲)", fontsize=11)
    timing = timed_rows(results)
    skipped = untimed(results, metric)
    names = [n for n in deployment_names(results) if n not in skipped]
    if not names:
        say(ax, NO_TIMING)
        ax.set_xlabel(METRICS[metric])
        return
    colors = deployment_colors(deployment_names(results))
    positions = {n: len(names) - i for i, n in enumerate(names)}
    values = {n: numeric(timing[timing["deployment"].astype(str) == n], metric).dropna()
              .to_numpy() for n in names}
    for name in names:
        _box(ax, values[name], positions[name], colors[name], legend=name == names[0])
    every = np.concatenate(list(values.values()))
    ax.set_yticks([positions[n] for n in names], [shorten(n) for n in names])
    ax.set_ylim(0.4, len(names) + 0.6)
    log = wide_range(every)
    if log:
        low, high = float(every[every > 0].min()) * 0.7, float(every.max()) * 1.4
        ax.set_xscale("log")
        ax.set_xlim(low, high)
        log_axis(ax.xaxis, low, high)
    else:
        ax.set_xlim(0, float(every.max()) * 1.05)
    scale = ", log scale" if log else ""
    note = untimed_note(results, skipped)
    ax.set_xlabel(METRICS[metric] + f"  (box: p25-p75, whiskers: p5-p95{scale})"
                  + (f"\n{note}" if note else ""))
    ax.grid(axis="x", alpha=0.3)


def latency_distribution(results: ResultsLike, metric: str = "latency_s") -> Figure:
    """Box plot per deployment of `latency_s` (or `ttft_s`, `wall_s`) with p50/p90/p99 marked."""
    n = max(1, len(deployment_names(results)))
    fig = ChartFigure(figsize=(9, 1.6 + 0.45 * n), layout="constrained")
    draw_latency(fig, results, metric)
    return fig


# ------------------------------------------------------------------------ TTFT vs decode tok/s


def draw_scatter(canvas: Canvas, results: ResultsLike) -> None:
    ax = canvas.add_subplot()
    ax.set_title("TTFT vs decode tokens/s (one point per timed request)", fontsize=11)
    ax.set_xlabel(METRICS["ttft_s"])
    ax.set_ylabel(METRICS["decode_tps"])
    timing = timed_rows(results)
    names = deployment_names(results)
    colors = deployment_colors(names)
    drawn = 0
    ttfts = []
    for name in names:
        rows = timing[timing["deployment"].astype(str) == name] if len(timing) else timing
        x, y = numeric(rows, "ttft_s"), numeric(rows, "decode_tps")
        keep = x.notna() & y.notna()
        if not keep.any():
            continue
        ax.scatter(x[keep], y[keep], s=22, alpha=0.75, color=colors[name], label=shorten(name),
                   edgecolors="none")
        drawn += int(keep.sum())
        ttfts.append(x[keep].to_numpy(dtype=float))
    if not drawn:
        say(ax, NO_TIMING + "\nwith both TTFT and decode tokens/s")
        return
    every = np.concatenate(ttfts)
    note = untimed_note(results, untimed(results, "ttft_s"))
    if wide_range(every):
        low, high = float(every[every > 0].min()) * 0.8, float(every.max()) * 1.25
        ax.set_xscale("log")
        ax.set_xlim(low, high)
        log_axis(ax.xaxis, low, high)
        ax.set_xlabel(METRICS["ttft_s"] + " (log scale)" + (f"\n{note}" if note else ""))
    else:
        ax.set_xlim(left=0)
        ax.set_xlabel(METRICS["ttft_s"] + (f"\n{note}" if note else ""))
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.text(0.99, 0.99, "better: up and left", ha="right", va="top", transform=ax.transAxes,
            fontsize=8, color="#555555")
    legend_outside(ax, title="deployment")


def ttft_vs_decode(results: ResultsLike) -> Figure:
    """Scatter of TTFT (x) against decode tokens/s (y), coloured by deployment."""
    n = len(deployment_names(results))
    fig = ChartFigure(figsize=(8.5, 5 + 0.1 * max(0, n - 10)), layout="constrained")
    draw_scatter(fig, results)
    return fig
