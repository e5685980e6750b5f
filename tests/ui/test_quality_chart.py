"""charts.quality_chart: a score per deployment beside latency and cost, drawn from the same
numbers `Results.leaderboard` reports."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from compare import charts
from compare.results import Results

REPO = Path(__file__).resolve().parents[2]
# deployment: (chance of a right answer, latency s, cost per prompt)
PROFILES = {"small": (0.45, 6.0, 0.0002), "base": (0.2, 8.0, 0.0001),
            "simulated": (0.9, 0.2, 0.001)}


def scored_results(priced: bool = True, untimed: str | None = None, prompts: int = 40) -> Results:
    rng = np.random.default_rng(7)
    rows = []
    for name, (p_right, latency, cost) in PROFILES.items():
        for i in range(prompts):
            timed = name != untimed
            rows.append({
                "prompt_id": f"p{i:02d}", "deployment": name, "repeat": 0, "status": "ok",
                "cached": False,
                "latency_s": latency * rng.lognormal(0, 0.3) if timed else np.nan,
                "cost": cost * rng.uniform(0.5, 1.5) if priced else np.nan,
                "score_exact": float(rng.random() < p_right),
            })
    return Results.from_frame(pd.DataFrame(rows))


def dots(ax: matplotlib.axes.Axes) -> dict[float, float]:
    """y → x of every dot drawn on an axes."""
    found = {}
    for line in ax.get_lines():
        if isinstance(line, Line2D) and line.get_marker() == "o":
            x, y = line.get_xdata(), line.get_ydata()
            found[float(y[0])] = float(x[0])
    return found


def segments(ax: matplotlib.axes.Axes) -> dict[float, tuple[float, float]]:
    found = {}
    for line in ax.get_lines():
        if line.get_marker() in ("None", None, "") and len(line.get_xdata()) == 2:
            x, y = line.get_xdata(), line.get_ydata()
            found[float(y[0])] = (float(x[0]), float(x[1]))
    return found


def save(fig: Figure, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    fig.savefig(path, dpi=70)
    out = REPO / "test-output" / "charts"
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, out / path.name)


def test_dots_and_intervals_are_the_leaderboards(tmp_path: Path) -> None:
    results = scored_results()
    fig = charts.quality_chart(results, "score_exact")
    save(fig, tmp_path, "quality-chart")
    score_ax, latency_ax, cost_ax = fig.axes
    board = results.leaderboard("score_exact")
    order = board["mean"].sort_values(ascending=False).index.tolist()
    # Best score on top, the same row order in every panel (shared y).
    labels = [t.get_text() for t in score_ax.get_yticklabels()]
    ys = list(score_ax.get_yticks())
    assert [labels[ys.index(y)] for y in sorted(ys, reverse=True)] == order
    row = {name: len(order) - 1 - i for i, name in enumerate(order)}
    for ax, metric, scale in ((score_ax, "score_exact", 1.0), (latency_ax, "latency_s", 1.0),
                              (cost_ax, "cost", 1000.0)):
        expected = results.leaderboard(metric)
        drawn, bars = dots(ax), segments(ax)
        for name in PROFILES:
            y = row[name]
            assert drawn[y] == pytest.approx(expected.loc[name, "mean"] * scale)
            assert bars[y] == pytest.approx((expected.loc[name, "ci_low"] * scale,
                                             expected.loc[name, "ci_high"] * scale))
    assert board.attrs["kind"] == "binary" and board["interval"].eq("Wilson").all()
    assert score_ax.get_xlim() == pytest.approx((-0.05, 1.08))  # a 0-1 score on its whole scale
    assert latency_ax.get_xscale() == "log"  # 0.2 s beside 8 s
    assert score_ax.get_xscale() == "linear"
    assert "cost per 1000 prompts" in cost_ax.get_title(loc="left")


def test_labels_stay_inside_the_figure_and_apart(tmp_path: Path) -> None:
    # Long names take width from the panels: the titles must still not run into each other.
    long_names = {"small": "smollm2-precise-eu-west", "base": "gemma3-base-270m-q4",
                  "simulated": "simulated-oracle-deployment"}
    frame = scored_results().frame.replace({"deployment": long_names})
    fig = charts.quality_chart(Results.from_frame(frame), "score_exact")
    save(fig, tmp_path, "quality-chart-long-names")
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)  # constrained layout places everything on a draw
    frame = fig.bbox
    boxes = []
    for ax in fig.axes:
        for text in ax.texts:
            box = text.get_window_extent(renderer)
            assert frame.x0 <= box.x0 and box.x1 <= frame.x1, text.get_text()
            boxes.append((ax, box))
    for i, (ax_a, a) in enumerate(boxes):
        for ax_b, b in boxes[i + 1:]:
            assert ax_a is not ax_b or not a.overlaps(b)
    titles = [next(t for t in ax.findobj(matplotlib.text.Text)
                   if t.get_text() == ax.get_title(loc="left")).get_window_extent(renderer)
              for ax in fig.axes]
    for left, right in itertools.pairwise(titles):
        assert left.x1 <= right.x0, "panel titles run into each other"


def test_no_prices_leaves_the_cost_panel_out() -> None:
    fig = charts.quality_chart(scored_results(priced=False), "score_exact")
    assert len(fig.axes) == 2


def test_an_untimed_deployment_says_no_data() -> None:
    fig = charts.quality_chart(scored_results(untimed="base"), "score_exact")
    latency_ax = fig.axes[1]
    assert "no data" in [t.get_text() for t in latency_ax.texts]
    assert len(dots(latency_ax)) == 2
