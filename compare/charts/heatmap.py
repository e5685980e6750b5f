"""Median latency per prompt × deployment as a heatmap; grey where nothing was timed."""

from __future__ import annotations

import math
from typing import Any

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
    log_axis,
    numeric,
    say,
    shorten,
    timed_rows,
    untimed,
    untimed_note,
    wide_range,
)
from compare.errors import ConfigError
from compare.records import METRICS


def prompt_order(frame: pd.DataFrame) -> list[str]:
    """Prompt ids in order of first appearance."""
    return [str(p) for p in pd.unique(frame["prompt_id"].astype(str))] if len(frame) else []


def prompt_page(prompts: list[str], max_prompts: int, page: int) -> tuple[list[str], str]:
    """The prompts on `page` (1-based, `max_prompts` each) and what the title adds about it."""
    pages = max(1, math.ceil(len(prompts) / max_prompts))
    if not 1 <= page <= pages:
        raise ConfigError(f"page must be between 1 and {pages} ({len(prompts)} prompts, "
                          f"{max_prompts} a page), got {page}", field="page")
    shown = prompts[(page - 1) * max_prompts: page * max_prompts]
    if pages == 1:
        return shown, ""
    first = (page - 1) * max_prompts + 1
    nxt = f"; latency_heatmap(results, page={page + 1}) shows the next" if page < pages else ""
    return shown, (f" — prompts {first}–{first + len(shown) - 1} of {len(prompts)} "
                   f"(page {page} of {pages}{nxt})")


def _grid(results: ResultsLike, metric: str, prompts: list[str], names: list[str]) -> Any:
    timing = timed_rows(results)
    return (
        timing.assign(_v=numeric(timing, metric), deployment=timing["deployment"].astype(str),
                      prompt_id=timing["prompt_id"].astype(str))
        .pivot_table(index="prompt_id", columns="deployment", values="_v", aggfunc="median")
        .reindex(index=prompts, columns=names)
    )


def _label_cells(ax: Any, image: Any, values: np.ndarray) -> None:
    """Each cell's value in seconds (one unit for all), where the cells are big enough."""
    if values.size > 240 or max(values.shape) > 30:
        return
    for (i, j), v in np.ndenumerate(values):
        if math.isfinite(v):
            # Dark text on the light (yellow) end of viridis, light text elsewhere.
            light = float(image.norm(v)) > 0.6
            ax.text(j, i, format_seconds(v), ha="center", va="center", fontsize=7,
                    color="black" if light else "white")


def draw_heatmap(canvas: Canvas, results: ResultsLike, metric: str, max_prompts: int,
                 page: int = 1, across: bool = False) -> None:
    """Median `metric` per prompt × timed deployment; `across` puts prompts along x (the
    dashboard: its height then grows with deployments, not prompts)."""
    import matplotlib

    ax = canvas.add_subplot()
    skipped = untimed(results, metric)
    names = [n for n in deployment_names(results) if n not in skipped]
    shown, paging = prompt_page(prompt_order(results.frame), max_prompts, page)
    ax.set_title(f"median {METRICS[metric].split(':')[0]} per prompt × deployment{paging}",
                 fontsize=11)
    if not names:
        say(ax, NO_TIMING)
        return
    grid = _grid(results, metric, shown, names)
    values = grid.to_numpy(dtype=float).T if across else grid.to_numpy(dtype=float)
    data = np.ma.masked_invalid(values)
    present = data.compressed()
    log = wide_range(present)
    low, high = float(present[present > 0].min()), float(present.max())
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#dddddd")
    image = ax.imshow(data, aspect="auto", cmap=cmap, interpolation="nearest",
                      norm=LogNorm(low, high) if log else None)
    cbar = canvas.colorbar(image, ax=ax, shrink=0.9)
    cbar.set_label(METRICS[metric] + (", log colour scale" if log else ""), fontsize=8)
    if log:
        log_axis(cbar.ax.yaxis, low, high)
    else:
        cbar.ax.yaxis.set_major_formatter(PLAIN)
    deployment_ticks = [shorten(n, 18) for n in names]
    prompt_ticks = [shorten(p, 24) for p in shown]
    x_ticks, y_ticks = (prompt_ticks, deployment_ticks) if across else (deployment_ticks,
                                                                        prompt_ticks)
    ax.set_xticks(range(len(x_ticks)), x_ticks, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(y_ticks)), y_ticks, fontsize=8)
    note = untimed_note(results, skipped)
    ax.set_xlabel(("prompt" if across else "deployment") + " (grey: no timed record)"
                  + (f"\n{note}" if note else ""))
    ax.set_ylabel("deployment" if across else "prompt")
    _label_cells(ax, image, values)


def latency_heatmap(results: ResultsLike, metric: str = "latency_s", max_prompts: int = 40,
                    page: int = 1) -> Figure:
    """Median latency per prompt (rows) and deployment (columns); grey where nothing was timed.
    `max_prompts` a page; `page` (1-based) picks which prompts when there are more."""
    frame = results.frame
    n_dep = max(1, len(deployment_names(results)))
    n_prompts = max(1, min(max_prompts, len(prompt_order(frame))))
    fig = ChartFigure(figsize=(4.5 + 0.75 * n_dep, 2.4 + 0.28 * n_prompts), layout="constrained")
    draw_heatmap(fig, results, metric, max_prompts, page)
    return fig
