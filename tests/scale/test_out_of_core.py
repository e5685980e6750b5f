"""The run directory read column by column: `Results.summarize_dir` equals `summary()` of the
loaded run (batches of a few rows, every status, cached rows, missing usage, a score column),
so does `Results.leaderboard_dir` the loaded run's `leaderboard()`, and
`Results.load(columns=...)` keeps repeated text as categoricals."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pandas as pd
import pytest

from compare import run_summary
from compare.errors import ConfigError
from compare.records import STATUSES, Record
from compare.results import Results
from compare.run_parts import PARTS_DIR, read_parts


def _records(n: int) -> list[Record]:
    rng = random.Random(5)
    out = []
    for i in range(n):
        status = rng.choice([*STATUSES, "ok", "ok"])
        rec = Record(run_id="r", prompt_id=f"p{i % 17}", deployment=f"d{i % 3}",
                     repeat=i // 51, endpoint_kind="openai", status=status,
                     cached=rng.random() < 0.2)
        if rng.random() < 0.9:
            rec.ttft_s, rec.latency_s = rng.random(), 1 + rng.random()
            rec.decode_tps = rng.random() * 100 if rng.random() < 0.8 else math.nan
        if rng.random() < 0.7:
            rec.prompt_tokens, rec.completion_tokens = rng.randint(1, 50), rng.randint(1, 9)
            rec.cost = rng.random()
        out.append(rec)
    return out


def _saved(tmp_path: Path, layout: str) -> Path:
    """A run of three deployments saved as results.parquet, or as a sharded run leaves it."""
    res = Results.from_records(_records(150),
                               manifest={"deployment_order": ["d2", "d0", "d1"]})
    res.frame["score_exact"] = [random.Random(i).choice([0.0, 1.0, math.nan])
                                for i in range(len(res))]
    res.save(tmp_path)
    if layout == "parts":  # parts, no results.parquet
        parts = tmp_path / PARTS_DIR
        parts.mkdir()
        for k, chunk in enumerate((res.frame.iloc[:60], res.frame.iloc[60:])):
            chunk.to_parquet(parts / f"part-s{k:04d}-00000.parquet", index=False)
        (tmp_path / "results.parquet").unlink()
        manifest = json.loads((tmp_path / "manifest.json").read_text())
        manifest["parts"] = {"complete": True, "files": 2}
        (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


@pytest.mark.parametrize("layout", ["results.parquet", "parts"])
def test_summarize_dir_equals_summary_of_the_loaded_run(tmp_path: Path, monkeypatch,
                                                        layout: str) -> None:
    monkeypatch.setattr(run_summary, "BATCH_ROWS", 7)  # many batches per deployment
    run_dir = _saved(tmp_path, layout)
    expected = Results.load(run_dir).summary()
    got = Results.summarize_dir(run_dir)
    assert list(got.index) == ["d2", "d0", "d1"]
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-12)


@pytest.mark.parametrize("layout", ["results.parquet", "parts"])
@pytest.mark.parametrize("metric", ["latency_s", "score_exact", "cost", "completion_tokens"])
def test_leaderboard_dir_equals_leaderboard_of_the_loaded_run(tmp_path: Path, monkeypatch,
                                                              layout: str, metric: str) -> None:
    monkeypatch.setattr(run_summary, "BATCH_ROWS", 7)
    run_dir = _saved(tmp_path, layout)
    expected = Results.load(run_dir).leaderboard(metric, level=0.9)
    got = Results.leaderboard_dir(run_dir, metric, level=0.9)
    assert list(got.index) == ["d2", "d0", "d1"]
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-12)
    assert got.attrs == expected.attrs
    assert got.attrs["kind"] == {"latency_s": "latency", "score_exact": "binary",
                                 "cost": "latency", "completion_tokens": "continuous"}[metric]


def test_leaderboard_dir_names_a_missing_metric(tmp_path: Path) -> None:
    run_dir = _saved(tmp_path, "parts")
    with pytest.raises(ConfigError, match=r"no metric column 'latency'\. Did you mean 'latency_s'"):
        Results.leaderboard_dir(run_dir, "latency")


def test_load_columns_reads_repeated_text_as_categoricals(tmp_path: Path) -> None:
    res = Results.from_records(_records(40))
    parts = tmp_path / PARTS_DIR
    parts.mkdir()
    res.frame.to_parquet(parts / "part-s0000-00000.parquet", index=False)
    frame = read_parts(tmp_path, ["prompt_id", "deployment", "status", "output", "latency_s"])
    assert isinstance(frame["deployment"].dtype, pd.CategoricalDtype)
    assert isinstance(frame["prompt_id"].dtype, pd.CategoricalDtype)
    assert str(frame["output"].dtype) == "string"
    assert (frame["deployment"].astype(str) == res.frame["deployment"]).all()
