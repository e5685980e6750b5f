"""Matplotlib figures from a `Results`.

Every public function takes a `Results` and returns a `matplotlib.figure.Figure`. Figures are built
with the object API (`Figure(...)`, never `pyplot`) so they work under any backend (Agg in tests and
on servers), never leak into pyplot's global figure list, and show inline in Jupyter as images.

Axis labels are the metric definitions of `compare.records.METRICS`, so a chart says what it
measures. Latency charts read only `Results.timing_frame()` rows (status ok, not cached) and drop
any `cached` row again: a record replayed from a checkpoint was not timed in this run.
Empty or all-error data never raises: the axes say "no timing rows" instead.

Modules: `base` (figure class, colours, formats, timed rows), `latency` (distribution, TTFT vs
decode), `counts` (status, tokens and cost), `heatmap` (per prompt × deployment), `quality` (a
score beside latency and cost), `dashboard`.
"""

from __future__ import annotations

from compare.charts.base import STATUS_COLORS, ChartFigure, deployment_colors, format_seconds
from compare.charts.counts import status_breakdown, tokens_and_cost
from compare.charts.dashboard import dashboard
from compare.charts.heatmap import latency_heatmap
from compare.charts.latency import latency_distribution, ttft_vs_decode
from compare.charts.quality import quality_chart

__all__ = [
    "CHARTS",
    "STATUS_COLORS",
    "ChartFigure",
    "dashboard",
    "deployment_colors",
    "format_seconds",
    "latency_distribution",
    "latency_heatmap",
    "quality_chart",
    "status_breakdown",
    "tokens_and_cost",
    "ttft_vs_decode",
]

# Every chart with its title, in the order the explorer's charts tab and the report show them.
CHARTS = (
    ("latency", latency_distribution),
    ("TTFT vs decode", ttft_vs_decode),
    ("status", status_breakdown),
    ("per-prompt latency", latency_heatmap),
    ("tokens and cost", tokens_and_cost),
)
