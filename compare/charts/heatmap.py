"""Median latency per prompt × deployment as a heatmap; grey where nothing was timed."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from compare.charts.base import (
    NO_TIMING,
    PLAIN,
    Canvas,
    ChartFigure,
    ResultsLike,
    deployment_names,
    format_seconds,
    numeric,
    say,
    shorten,
    timed_rows,
    wide_range,
)
from compare.records import METRICS


def prompt_order(frame: pd.DataFrame) -> list[str]:
    return [str(p) for p in pd.unique(frame["prompt_id"].astype(str))] if len(frame) else []


def draw_heatmap(canvas: Canvas, results: ResultsLike, metric: str, max_prompts: int) -> None:
    ax = canvas.add_subplot()
    label = METRICS[metric].split(":")[0]
    timing = timed_rows(results)
    names = deployment_names(results)
    prompts = prompt_order(results.frame)
    shown = prompts[:max_prompts]
    more = f" (first {len(shown)} of {len(prompts)} prompts)" if len(prompts) > len(shown) else ""
    ax.set_title(f"median {label} per prompt × deployment{more}", fontsize=11)
    if not len(timing) or numeric(timing, metric).isna().all():
        say(ax, NO_TIMING)
        return
    grid = (
        timing.assign(_v=numeric(timing, metric), deployment=timing["deployment"].astype(str),
                      prompt_id=timing["prompt_id"].astype(str))
        .pivot_table(index="prompt_id", columns="deployment", values="_v", aggfunc="median")
        .reindex(index=shown, columns=names)
    )
    data = np.ma.masked_invalid(grid.to_numpy(dtype=float))
    import matplotlib

    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#dddddd")
    values = data.compressed()
    log = wide_range(values)
    norm = LogNorm(float(values[values > 0].min()), float(values.max())) if log else None
    image = ax.imshow(data, aspect="auto", cmap=cmap, interpolation="nearest", norm=norm)
    cbar = canvas.colorbar(image, ax=ax, shrink=0.9)
    cbar.set_label(METRICS[metric] + (", log colour scale" if log else ""), fontsize=8)
    if log:
        cbar.ax.yaxis.set_major_formatter(PLAIN)
    ax.set_xticks(range(len(names)), [shorten(n, 18) for n in names], rotation=35, ha="right",
                  fontsize=8)
    ax.set_yticks(range(len(shown)), [shorten(p, 24) for p in shown], fontsize=8)
    ax.set_xlabel("deployment (grey: no timed record)")
    ax.set_ylabel("prompt")
    if data.size <= 240:
        for (i, j), v in np.ndenumerate(grid.to_numpy(dtype=float)):
            if math.isfinite(v):
                # Dark text on the light (yellow) end of viridis, light text elsewhere.
                light = float(image.norm(v)) > 0.6
                ax.text(j, i, format_seconds(v), ha="center", va="center", fontsize=7,
                        color="black" if light else "white")


def latency_heatmap(results: ResultsLike, metric: str = "latency_s",
                    max_prompts: int = 40) -> Figure:
    """Median latency per prompt (rows) and deployment (columns); grey where nothing was timed."""
    frame = results.frame
    n_dep = max(1, len(deployment_names(results)))
    n_prompts = max(1, min(max_prompts, len(prompt_order(frame))))
    fig = ChartFigure(figsize=(3.5 + 0.75 * n_dep, 2.2 + 0.28 * n_prompts), layout="constrained")
    draw_heatmap(fig, results, metric, max_prompts)
    return fig
