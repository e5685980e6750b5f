"""Every chart on one figure: the charts.png of `compare run` and `compare demo`.

Every row's height grows with the number of deployments only: the heatmap lies across (prompts
along x, at most `max_prompts` of them, the title says which), so a run of 500 prompts gets the
same readable figure as one of 5.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from compare.charts.base import ChartFigure, ResultsLike, deployment_names
from compare.charts.counts import draw_status, draw_tokens_cost
from compare.charts.heatmap import draw_heatmap
from compare.charts.latency import draw_latency, draw_scatter


def dashboard(results: ResultsLike, max_prompts: int = 30) -> Figure:
    """All charts on one figure: latency and TTFT vs decode, status and tokens/cost, then the
    per-prompt heatmap across the full width (first `max_prompts` prompts)."""
    frame = results.frame
    n_dep = max(1, len(deployment_names(results)))
    rows = [max(4.5, 1.6 + 0.45 * n_dep), max(3.2, 1.8 + 0.4 * n_dep),
            max(3.4, 2.4 + 0.35 * n_dep)]
    fig = ChartFigure(figsize=(18, sum(rows) + 0.6), layout="constrained")
    fig.suptitle(f"compare: {n_dep} deployments, {len(frame)} records", fontsize=14)
    grid = fig.add_gridspec(3, 2, height_ratios=rows)
    draw_latency(fig.add_subfigure(grid[0, 0]), results, "latency_s")
    draw_scatter(fig.add_subfigure(grid[0, 1]), results)
    draw_status(fig.add_subfigure(grid[1, 0]), results)
    draw_tokens_cost(fig.add_subfigure(grid[1, 1]), results)
    draw_heatmap(fig.add_subfigure(grid[2, :]), results, "latency_s", max_prompts, across=True)
    return fig
