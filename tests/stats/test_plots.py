"""Plots: forest plot and quality scatter render under Agg, say what they show, mark the front."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from compare.errors import ConfigError
from compare.stats.comparison import compare
from compare.stats.plots import forest_plot, pareto_front, quality_vs_cost, quality_vs_latency
from compare.stats.rundiff import diff
from tests.stats._synth import Sim, tidy_frame

matplotlib.use("Agg")

SIMS = {
    "gpt-4o": Sim(0.8, 0.2, 1.0, 0.005),
    "gpt-4o-mini": Sim(0.7, 0.0, 0.6, 0.0008),
    "phi-4-mini-instruct": Sim(0.6, -0.1, 0.5, 0.0003),
    "llama-3.3-70b": Sim(0.78, 0.15, 1.4, 0.002),
    "mistral-large": Sim(0.65, -0.05, 1.1, 0.003),
}


def _frame(seed: int = 71):
    return tidy_frame(np.random.default_rng(seed), 60, SIMS, repeats=2,
                      tags=[["math"], ["code"], ["math", "chat"]])


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=90)
    assert path.stat().st_size > 10_000


def test_forest_plot_one_panel_per_metric(tmp_path: Path) -> None:
    table = compare(_frame(), baseline="gpt-4o")
    fig = forest_plot(table)
    _save(fig, tmp_path / "forest.png")
    axes = fig.axes
    assert [ax.get_title(loc="left") for ax in axes] == [
        f"{m} vs gpt-4o" for m in ("score_exact", "score_quality", "latency_s", "ttft_s", "cost")]
    labels = [t.get_text() for t in axes[0].get_yticklabels()]
    assert labels == ["gpt-4o-mini", "phi-4-mini-instruct", "llama-3.3-70b", "mistral-large"]
    assert axes[0].get_xscale() == "linear" and axes[2].get_xscale() == "log"
    assert "ratio b / a" in axes[2].get_xlabel() and "lower is better" in axes[2].get_xlabel()
    ratio_labels = [t.get_text() for t in axes[2].get_xticklabels()]
    assert "1×" in ratio_labels and all(label.endswith("×") for label in ratio_labels)


def test_forest_plot_groups_and_run_diffs(tmp_path: Path) -> None:
    frame = _frame()
    by_tag = compare(frame, baseline="gpt-4o", metrics="score_quality", by="tag")
    fig = forest_plot(by_tag)
    _save(fig, tmp_path / "forest_by_tag.png")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[0] == "gpt-4o-mini  [chat]" and len(labels) == 12
    new = frame.assign(latency_s=frame["latency_s"] * np.where(
        frame["deployment"] == "gpt-4o", 1.3, 1.0) * np.exp(
        np.random.default_rng(1).normal(0, 0.1, len(frame))))
    fig = forest_plot(diff(frame, new, metrics="latency_s"))
    _save(fig, tmp_path / "forest_diff.png")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == list(SIMS)
    assert fig.axes[0].get_title(loc="left") == "latency_s: new run vs old run"
    assert fig.axes[0].get_xlabel().startswith("ratio new / old")
    with pytest.raises(ConfigError, match="metric 'cost' is not in this table"):
        forest_plot(by_tag, metric="cost")


def test_quality_scatter_marks_the_pareto_front(tmp_path: Path) -> None:
    frame = _frame()
    fig = quality_vs_cost(frame, "score_quality")
    _save(fig, tmp_path / "quality_vs_cost.png")
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("cost per 1000 prompts")
    assert "higher is better" in ax.get_ylabel()
    names = {t.get_text() for t in ax.texts}
    assert names == set(SIMS)
    legend = ax.get_legend()
    assert legend is not None and "Pareto front" in legend.get_texts()[0].get_text()
    _save(quality_vs_latency(frame, "score_exact"), tmp_path / "quality_vs_latency.png")


def test_pareto_front_against_brute_force() -> None:
    rng = np.random.default_rng(72)
    for _ in range(50):
        x, y = rng.random(8), rng.random(8)
        x[3], y[3] = x[2], y[2]  # a duplicate point is not dominated by its twin
        front = pareto_front(x, y, x_lower=True, y_higher=True)
        for i in range(8):
            beaten = any(x[j] <= x[i] and y[j] >= y[i] and (x[j] < x[i] or y[j] > y[i])
                         for j in range(8))
            assert front[i] == (not beaten)
    # Direction flags: higher x better and lower y better mirror the picture.
    mirrored = pareto_front(-x, -y, x_lower=False, y_higher=False)
    np.testing.assert_array_equal(mirrored, pareto_front(x, y, True, True))
