"""Latency per deployment (box plot with p50/p90/p99) and TTFT against decode tokens/s."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from compare.charts.base import (
    NO_TIMING,
    PCT_MARKERS,
    PERCENTILES,
    PLAIN,
    Canvas,
    ChartFigure,
    ResultsLike,
    deployment_colors,
    deployment_names,
    format_seconds,
    legend_outside,
    numeric,
    say,
    shorten,
    timed_rows,
    wide_range,
)
from compare.records import METRICS


def draw_latency(canvas: Canvas, results: ResultsLike, metric: str) -> None:
    ax = canvas.add_subplot()
    ax.set_title(f"{METRICS[metric].split(':')[0]} per deployment (p50 | p90 ◆ p99 ▲)", fontsize=11)
    timing = timed_rows(results)
    names = deployment_names(results)
    values = {n: numeric(timing[timing["deployment"].astype(str) == n], metric).dropna().to_numpy()
              for n in names} if len(timing) else {}
    if not any(len(v) for v in values.values()):
        say(ax, NO_TIMING)
        ax.set_xlabel(METRICS[metric])
        return
    colors = deployment_colors(names)
    # Top to bottom in the user's order.
    positions = {n: len(names) - i for i, n in enumerate(names)}
    every = np.concatenate([v for v in values.values() if len(v)])
    x_max = float(every.max())
    log = wide_range(every)
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
            marker, size = PCT_MARKERS[p]
            ax.plot([v], [y], marker=marker, markersize=size, color="black", linestyle="none",
                    label=f"p{p}" if name == names[0] else None)
        # In the right margin (axes x > 1) so the numbers never cover a box or marker.
        text = "  ".join(f"p{p} {format_seconds(v)}" for p, v in zip(PERCENTILES, pct, strict=True))
        text += f"  n={len(data)}"
        ax.annotate(text, xy=(1.01, y), xycoords=("axes fraction", "data"), va="center", fontsize=8)
    ax.set_yticks([positions[n] for n in names], [shorten(n) for n in names])
    ax.set_ylim(0.4, len(names) + 0.6)
    if log:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(PLAIN)
        ax.set_xlim(float(every[every > 0].min()) * 0.7, x_max * 1.4)
    else:
        ax.set_xlim(0, x_max * 1.05)
    scale = ", log scale" if log else ""
    ax.set_xlabel(METRICS[metric] + f"  (box: p25-p75, whiskers: p5-p95{scale})")
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
    if wide_range(np.concatenate(ttfts)):
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(PLAIN)
        ax.set_xlabel(METRICS["ttft_s"] + " (log scale)")
    else:
        ax.set_xlim(left=0)
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
