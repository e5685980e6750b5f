"""Every chart on one figure: the demo's and `compare run`'s charts.png."""

from __future__ import annotations

from matplotlib.figure import Figure

from compare.charts.base import ChartFigure, ResultsLike, deployment_names
from compare.charts.counts import draw_status, draw_tokens_cost
from compare.charts.heatmap import draw_heatmap, prompt_order
from compare.charts.latency import draw_latency, draw_scatter


def dashboard(results: ResultsLike, max_prompts: int = 30) -> Figure:
    """All charts on one figure (the demo's charts.png)."""
    frame = results.frame
    n_dep = max(1, len(deployment_names(results)))
    n_prompts = max(1, min(max_prompts, len(prompt_order(frame))))
    row0 = max(4.5, 1.6 + 0.45 * n_dep)
    row1 = max(4.0, 2.2 + 0.28 * n_prompts, 1.6 + 0.4 * n_dep)
    row2 = 2.4 + 0.4 * n_dep
    fig = ChartFigure(figsize=(18, row0 + row1 + row2 + 0.6), layout="constrained")
    fig.suptitle(f"compare: {n_dep} deployments, {len(frame)} records", fontsize=14)
    grid = fig.add_gridspec(3, 2, height_ratios=[row0, row1, row2])
    draw_latency(fig.add_subfigure(grid[0, 0]), results, "latency_s")
    draw_scatter(fig.add_subfigure(grid[0, 1]), results)
    draw_status(fig.add_subfigure(grid[1, 0]), results)
    draw_heatmap(fig.add_subfigure(grid[1, 1]), results, "latency_s", max_prompts)
    draw_tokens_cost(fig.add_subfigure(grid[2, :]), results)
    return fig
