"""Charts from Results built out of Records: 2 and 12 deployments, cached rows, empty data."""

from __future__ import annotations

import io
import math
import random
import shutil
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from compare import charts
from compare.errors import ConfigError
from compare.records import METRICS, STATUSES, Record
from compare.results import Results

REPO = Path(__file__).resolve().parents[2]
CHART_FUNCTIONS = (
    charts.latency_distribution,
    charts.ttft_vs_decode,
    charts.status_breakdown,
    charts.tokens_and_cost,
    charts.latency_heatmap,
    charts.dashboard,
)


def make_results(n_deployments: int, *, prompts: int = 6, repeats: int = 2, seed: int = 1,
                 statuses: tuple[str, ...] = STATUSES, cached_latency: float | None = None
                 ) -> Results:
    """Records the way the runner fills them; deployment i is slower than deployment i-1."""
    rng = random.Random(seed)
    records = []
    for d in range(n_deployments):
        name = f"dep-{d:02d}"
        for p in range(prompts):
            for r in range(repeats):
                status = statuses[(d + p + r) % len(statuses)] if d else "ok"
                ttft = 0.05 * (d + 1) * rng.uniform(0.8, 1.2)
                latency = ttft + 0.2 * (d + 1) * rng.uniform(0.8, 1.2)
                ok = status == "ok"
                records.append(Record(
                    run_id="r1", prompt_id=f"p{p}", deployment=name, repeat=r,
                    endpoint_kind="azure-inference", status=status,
                    ttft_s=ttft if ok else math.nan, latency_s=latency if ok else math.nan,
                    decode_tps=20 / (latency - ttft) if ok else math.nan,
                    prompt_tokens=10 + p, completion_tokens=21 if ok else math.nan,
                    cost=0.002 * (d + 1) if ok else math.nan, output="x" * 10))
            if cached_latency is not None:
                # A replayed record with an absurd latency: it must never reach a latency chart.
                records.append(Record(
                    run_id="r0", prompt_id=f"p{p}", deployment=name, repeat=repeats,
                    endpoint_kind="azure-inference", status="ok", ttft_s=cached_latency / 2,
                    latency_s=cached_latency, decode_tps=0.001, cached=True,
                    prompt_tokens=10, completion_tokens=21))
    return Results.from_records(records)


def texts(fig: Figure) -> str:
    found = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
    return "\n".join(found)


def render(fig: Figure, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    fig.savefig(path, dpi=60)
    out = REPO / "test-output" / "charts"
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, out / path.name)
    return path


@pytest.mark.parametrize("n", [2, 12])
def test_every_chart_renders_with_metric_labels(n: int, tmp_path: Path) -> None:
    results = make_results(n, prompts=5)
    for fn in CHART_FUNCTIONS:
        fig = fn(results)
        assert isinstance(fig, Figure)
        assert render(fig, tmp_path, f"{fn.__name__}-{n}x5").stat().st_size > 5000
    lat = texts(charts.latency_distribution(results))
    assert METRICS["latency_s"] in lat
    assert "p50" in lat and "p90" in lat and "p99" in lat
    scatter = texts(charts.ttft_vs_decode(results))
    assert METRICS["ttft_s"] in scatter and METRICS["decode_tps"] in scatter
    tok = texts(charts.tokens_and_cost(results))
    assert METRICS["prompt_tokens"] in tok and METRICS["cost"] in tok
    assert METRICS["latency_s"] in texts(charts.latency_heatmap(results))


def test_twelve_deployments_get_distinct_colours_and_every_label() -> None:
    results = make_results(12)
    colours = charts.deployment_colors(results.deployments)
    assert len(set(colours.values())) == 12
    fig = charts.latency_distribution(results)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == results.deployments  # ticks listed top (first deployment) to bottom
    legend = charts.ttft_vs_decode(results).axes[0].get_legend()
    assert len(legend.get_texts()) == 12
    # Bigger figures for more deployments, so rows stay readable.
    small = charts.latency_distribution(make_results(2)).get_size_inches()[1]
    assert fig.get_size_inches()[1] > small * 2


def test_percentiles_marked_match_numpy() -> None:
    results = make_results(2, statuses=("ok",))
    fig = charts.latency_distribution(results)
    timing = results.timing_frame()
    for name in results.deployments:
        values = timing[timing["deployment"] == name]["latency_s"].to_numpy()
        p50, p90, p99 = np.percentile(values, [50, 90, 99])
        fmt = charts.format_seconds
        expected = f"p50 {fmt(p50)}  p90 {fmt(p90)}  p99 {fmt(p99)}"
        assert expected in texts(fig), expected


def test_cached_rows_never_enter_latency_charts() -> None:
    results = make_results(2, cached_latency=500.0)
    assert results.frame["cached"].sum() == 12
    lat = charts.latency_distribution(results).axes[0]
    assert lat.get_xlim()[1] < 100
    heat = charts.latency_heatmap(results).axes[0]
    assert float(np.nanmax(heat.images[0].get_array())) < 100
    scatter = charts.ttft_vs_decode(results).axes[0]
    xs = np.concatenate([c.get_offsets()[:, 0] for c in scatter.collections])
    assert len(xs) == len(results.timing_frame()) and xs.max() < 100
    # The status chart counts every final record, cached ones included.
    status = charts.status_breakdown(results).axes[0]
    total = sum(p.get_width() for p in status.patches)
    assert total == len(results.frame)


def test_status_breakdown_counts_each_status() -> None:
    results = make_results(3)
    fig = charts.status_breakdown(results)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == [s for s in STATUSES if s in set(results.frame["status"])]
    total = sum(p.get_width() for p in fig.axes[0].patches)
    assert total == len(results.frame)


@pytest.mark.parametrize("kind", ["empty", "all-error"])
def test_no_timing_rows_is_said_not_raised(kind: str, tmp_path: Path) -> None:
    if kind == "empty":
        results = Results.from_records([])
    else:
        results = make_results(2, statuses=("error", "timeout"))
        results = Results(results.frame[results.frame["status"] != "ok"])
    for fn in CHART_FUNCTIONS:
        fig = fn(results)
        render(fig, tmp_path, f"{fn.__name__}-{kind}")
    for fn in (charts.latency_distribution, charts.ttft_vs_decode, charts.latency_heatmap):
        assert "no timing rows" in texts(fn(results))
    if kind == "all-error":
        status = texts(charts.status_breakdown(results))
        assert "error" in status and "timeout" in status


def test_wide_latency_range_switches_to_log_scale() -> None:
    def two(slow_factor: float) -> Results:
        records = [
            Record(run_id="r", prompt_id=f"p{i}", deployment=name, repeat=0,
                   endpoint_kind="azure-inference", ttft_s=0.02 * f,
                   latency_s=0.1 * f * (1 + i / 10), decode_tps=100 / f, completion_tokens=10)
            for name, f in (("fast", 1.0), ("slow", slow_factor)) for i in range(5)
        ]
        return Results.from_records(records)

    wide, narrow = two(150.0), two(3.0)
    assert charts.latency_distribution(wide).axes[0].get_xscale() == "log"
    assert charts.latency_distribution(narrow).axes[0].get_xscale() == "linear"
    assert charts.ttft_vs_decode(wide).axes[0].get_xscale() == "log"
    heat = charts.latency_heatmap(wide).axes[0].images[0]
    assert type(heat.norm).__name__ == "LogNorm"
    assert type(charts.latency_heatmap(narrow).axes[0].images[0].norm).__name__ == "Normalize"
    assert "log scale" in texts(charts.latency_distribution(wide))


def drawn(fig: Figure) -> Figure:
    """The figure after a render, so tick labels hold their final text."""
    fig.savefig(io.BytesIO(), format="png", dpi=40)
    return fig


@pytest.mark.parametrize("n", [2, 12])
def test_500_prompts_keep_the_dashboard_readable(n: int, tmp_path: Path) -> None:
    few, many = make_results(n, prompts=5), make_results(n, prompts=500, repeats=1)
    small, big = charts.dashboard(few), charts.dashboard(many)
    render(small, tmp_path, f"dashboard-{n}x5")
    render(big, tmp_path, f"dashboard-{n}x500")
    render(charts.latency_heatmap(many), tmp_path, f"latency_heatmap-{n}x500")
    # Row heights follow the deployments, not the prompts: 500 prompts, same figure.
    assert big.get_size_inches()[1] == small.get_size_inches()[1]
    # The heatmap says which prompts it shows and how to see the next ones.
    heat = texts(big)
    assert ("prompts 1–30 of 500 (page 1 of 17; latency_heatmap(results, page=2) shows the "
            "next)") in heat
    page2 = charts.latency_heatmap(many, page=2).axes[0]
    assert [t.get_text() for t in page2.get_yticklabels()][:2] == ["p40", "p41"]
    assert "prompts 41–80 of 500 (page 2 of 13;" in page2.get_title()
    with pytest.raises(ConfigError, match="page must be between 1 and 13"):
        charts.latency_heatmap(many, page=14)
    # Status counts are written at a readable size, and only where they fit.
    status = charts.status_breakdown(many)
    render(status, tmp_path, f"status_breakdown-{n}x500")
    labels = list(status.axes[0].texts)
    assert labels and all(t.get_fontsize() >= 8 for t in labels)


def _wide_run(priced: bool = True, batch: bool = False) -> Results:
    """fast (~0.09 s) next to slow (~2.5 s): a log axis; optionally a deployment whose rows are
    all ok but untimed (what a batch deployment reports)."""
    rng = random.Random(3)
    records = []
    for name, factor in (("fast", 1.0), ("slow", 25.0)):
        for i in range(8):
            ttft = 0.03 * factor * rng.uniform(0.8, 1.3)
            records.append(Record(
                run_id="r", prompt_id=f"p{i}", deployment=name, repeat=0,
                endpoint_kind="azure-inference", ttft_s=ttft,
                latency_s=ttft + 0.06 * factor * rng.uniform(0.8, 1.2), decode_tps=200 / factor,
                completion_tokens=20, prompt_tokens=10, cost=0.001 if priced else math.nan))
    if batch:
        records += [Record(run_id="r", prompt_id=f"p{i}", deployment="batchy", repeat=0,
                           endpoint_kind="azure-openai", streamed=False, completion_tokens=20,
                           prompt_tokens=10, output="x") for i in range(8)]
    return Results.from_records(records)


def test_log_axes_are_labelled_in_plain_numbers(tmp_path: Path) -> None:
    results = _wide_run()
    figures = {
        "scatter": drawn(charts.ttft_vs_decode(results)).axes[0].xaxis,
        "latency": drawn(charts.latency_distribution(results)).axes[0].xaxis,
        "colour bar": drawn(charts.latency_heatmap(results)).axes[1].yaxis,
    }
    for name, axis in figures.items():
        major = [t.get_text() for t in axis.get_ticklabels()]
        minor = [t.get_text() for t in axis.get_ticklabels(minor=True)]
        assert major and all(m.replace(".", "").isdigit() for m in major if m), (name, major)
        assert not any(minor), (name, minor)  # no "3×10⁻²4×10⁻²" run-together labels
    render(charts.ttft_vs_decode(results), tmp_path, "ttft_vs_decode-log")


def test_heatmap_cells_share_one_unit() -> None:
    results = _wide_run()
    cells = [t.get_text() for t in charts.latency_heatmap(results).axes[0].texts]
    assert len(cells) == 16 and not any("ms" in c for c in cells)
    fast = results.frame[results.frame["deployment"] == "fast"]["latency_s"].iloc[0]
    assert charts.format_seconds(fast) in cells and charts.format_seconds(fast).startswith("0.0")


def test_no_prices_means_no_empty_cost_panel(tmp_path: Path) -> None:
    fig = charts.tokens_and_cost(_wide_run(priced=False))
    assert len(fig.axes) == 1
    assert fig.axes[0].get_title().endswith("cost: no per-1k-token prices configured")
    assert len(charts.tokens_and_cost(_wide_run(priced=True)).axes) == 2
    render(fig, tmp_path, "tokens_and_cost-no-prices")


def test_untimed_deployments_are_named_not_drawn(tmp_path: Path) -> None:
    results = _wide_run(batch=True)
    note = "not shown (no timed rows): batchy"
    lat = charts.latency_distribution(results).axes[0]
    assert [t.get_text() for t in lat.get_yticklabels()] == ["fast", "slow"]
    assert note in lat.get_xlabel()
    assert note in charts.ttft_vs_decode(results).axes[0].get_xlabel()
    heat = charts.latency_heatmap(results).axes[0]
    assert [t.get_text() for t in heat.get_xticklabels()] == ["fast", "slow"]
    assert note in heat.get_xlabel()
    status = charts.status_breakdown(results).axes[0]
    assert "batchy" in [t.get_text() for t in status.get_yticklabels()]  # counted, not timed
    render(charts.dashboard(results), tmp_path, "dashboard-untimed")
    # Batch deployments report their time as batch_turnaround_s: the note says where to look.
    frame = results.frame
    frame["batch_turnaround_s"] = np.where(frame["deployment"] == "batchy", 3600.0, np.nan)
    assert charts.latency_distribution(results).axes[0].get_xlabel().endswith(
        f"\n{note}; batch deployments: see batch_turnaround_s")
