"""Results: dtypes, timing_frame, summary statistics, wide view, save/load and crash recovery."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from compare.checkpoint import Checkpoint
from compare.errors import ConfigError
from compare.records import RECORD_COLUMNS, Record
from compare.results import SUMMARY_COLUMNS, Results


def _rec(pid: str, dep: str, repeat: int = 0, **kw) -> Record:
    return Record(run_id="r1", prompt_id=pid, deployment=dep, repeat=repeat, endpoint_kind="k",
                  started_at="2026-11-25T10:00:00.000001+00:00", **kw)


def _sample() -> list[Record]:
    rng = np.random.default_rng(7)
    recs = []
    for i in range(20):
        lat = float(rng.uniform(0.1, 1.0))
        recs.append(_rec(f"p{i}", "a", ttft_s=lat / 4, latency_s=lat, decode_tps=10.0 + i,
                         prompt_tokens=5, completion_tokens=7, cost=0.001, output=f"a{i}"))
        recs.append(_rec(f"p{i}", "b", ttft_s=0.05, latency_s=0.2, output=f"b{i}",
                         prompt_tokens=5, completion_tokens=3))
    # Rows that must not count for latency statistics: cached, and not ok.
    recs.append(_rec("p0", "a", 1, latency_s=99.0, ttft_s=99.0, cached=True, output="c"))
    recs.append(_rec("p1", "a", 1, status="timeout", latency_s=50.0, error_type="EndpointTimeout"))
    recs.append(_rec("p2", "b", 1, status="rate_limited", http_status=429))
    return recs


def test_frame_columns_and_dtypes() -> None:
    f = Results.from_records(_sample()).frame
    assert tuple(f.columns) == RECORD_COLUMNS
    assert f["latency_s"].dtype == np.float64 and f["repeat"].dtype == np.int64
    assert f["cached"].dtype == bool and f["attempts"].dtype == np.int64
    assert isinstance(f["status"].dtype, pd.StringDtype)
    assert str(f["started_at"].dtype).startswith("datetime64")
    assert str(f["started_at"].dt.tz) == "UTC"
    assert math.isnan(f.loc[0, "http_status"])  # not measured → NaN, never 0


def test_timing_frame_is_ok_and_not_cached() -> None:
    r = Results.from_records(_sample())
    t = r.timing_frame()
    assert len(t) == 40 and (t["status"] == "ok").all() and not t["cached"].any()


def test_summary_statistics() -> None:
    recs = _sample()
    s = Results.from_records(recs).summary()
    assert list(s.index) == ["a", "b"] and tuple(s.columns) == SUMMARY_COLUMNS
    a_lat = [r.latency_s for r in recs if r.deployment == "a" and r.status == "ok" and not r.cached]
    for q in (50, 90, 99):
        assert s.loc["a", f"latency_s_p{q}"] == pytest.approx(np.percentile(a_lat, q))
        assert s.loc["a", f"ttft_s_p{q}"] == pytest.approx(np.percentile(a_lat, q) / 4)
    assert (s.loc["a", "n"], s.loc["a", "ok"], s.loc["a", "timeout"]) == (22, 21, 1)
    assert s.loc["a", "cached"] == 1 and s.loc["a", "n_timing"] == 20
    assert s.loc["a", "error_rate"] == pytest.approx(1 / 22)
    assert s.loc["b", "rate_limited"] == 1 and s.loc["b", "error_rate"] == pytest.approx(1 / 21)
    assert s.loc["a", "decode_tps_mean"] == pytest.approx(np.mean([10.0 + i for i in range(20)]))
    assert s.loc["a", "completion_tokens"] == 140 and s.loc["a", "cost"] == pytest.approx(0.02)
    assert math.isnan(s.loc["b", "cost"])  # no prices → unknown, not 0
    assert math.isnan(s.loc["b", "decode_tps_mean"])


def test_summary_never_mixes_token_sources() -> None:
    recs = [_rec(f"p{i}", "a", ttft_s=0.1, latency_s=0.5, decode_tps=10.0 + i,
                 tokens_source="usage", completion_tokens=5) for i in range(3)]
    recs += [_rec(f"q{i}", "a", ttft_s=0.1, latency_s=0.5, decode_tps=100.0,
                  tokens_source="chunks", completion_chunks=41) for i in range(2)]
    recs += [_rec(f"p{i}", "b", ttft_s=0.1, latency_s=0.5, decode_tps=20.0 + i,
                  tokens_source="chunks", completion_chunks=9) for i in range(2)]
    recs += [_rec("p0", "c", ttft_s=0.1, latency_s=0.5)]
    s = Results.from_records(recs).summary()
    assert s.loc["a", "decode_tps_mean"] == pytest.approx(np.mean([10.0, 11.0, 12.0]))
    assert s.loc["a", "tokens_source"] == "usage (2 rows by another source left out)"
    assert s.loc["b", "decode_tps_mean"] == pytest.approx(20.5)
    assert s.loc["b", "tokens_source"] == "chunks"
    assert math.isnan(s.loc["c", "decode_tps_mean"]) and s.loc["c", "tokens_source"] == "none"


def test_summary_of_nothing() -> None:
    s = Results.from_records([]).summary()
    assert s.empty and tuple(s.columns) == SUMMARY_COLUMNS


def test_wide_one_row_per_prompt() -> None:
    prompts = pd.DataFrame({"id": [f"p{i}" for i in range(20)],
                            "prompt": [f"question {i}" for i in range(20)],
                            "reference": ["x"] * 20})
    r = Results.from_records(_sample(), prompts=prompts,
                             manifest={"deployment_order": ["b", "a"]})
    w = r.wide()
    assert list(w.columns) == ["prompt", "reference", "b", "a"]
    assert list(w.index[:3]) == ["p0", "p1", "p2"] and len(w) == 20
    assert w.loc["p3", "a"] == "a3" and w.loc["p3", "prompt"] == "question 3"
    lat = r.wide("latency_s", repeat=None)
    assert lat.loc["p0", "a"] == pytest.approx((_sample()[0].latency_s + 99.0) / 2)
    with pytest.raises(KeyError, match="no column"):
        r.wide("nope")


def test_save_load_roundtrip(tmp_path) -> None:
    prompts = pd.DataFrame({"id": ["p0"], "prompt": ["q"], "reference": [None]})
    r = Results.from_records(_sample(), manifest={"run_id": "r1", "config": {"repeats": 2}},
                             prompts=prompts)
    r.save(tmp_path / "run")
    assert {p.name for p in (tmp_path / "run").iterdir()} == {
        "results.parquet", "manifest.json", "prompts.parquet"}
    back = Results.load(tmp_path / "run")
    pd.testing.assert_frame_equal(back.frame, r.frame)
    m = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert m["run_id"] == "r1" and m["rows"] == 43 and m["status_counts"]["ok"] == 41
    assert m["packages"]["pandas"] == pd.__version__ and m["saved_at"]
    assert m["metrics"]["ttft_s"].startswith("TTFT")
    assert back.run_id == "r1" and back.prompt_table is not None


def test_load_rebuilds_from_checkpoint_after_a_crash(tmp_path) -> None:
    recs = _sample()
    with Checkpoint(tmp_path) as ck:
        for rec in recs:
            ck.append(rec)
        ck.append(_rec("p1", "a", 1, latency_s=0.5))  # a rerun's row supersedes the timeout
    back = Results.load(tmp_path)
    assert len(back) == 43
    row = back.frame.query("prompt_id == 'p1' and deployment == 'a' and repeat == 1").iloc[0]
    assert row["status"] == "ok" and row["latency_s"] == 0.5
    assert back.frame.loc[back.frame["deployment"] == "b", "cost"].isna().all()


def test_load_errors_name_the_directory(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no results here"):
        Results.load(tmp_path)
    with pytest.raises(ConfigError, match="no such run directory"):
        Results.load(tmp_path / "missing")


def test_repr_is_short_and_stable() -> None:
    r = Results.from_records(_sample())
    lines = repr(r).splitlines()
    assert lines[0] == "Results(43 rows; deployments: a, b; ok=41 timeout=1 rate_limited=1)"
    # Then the first failure per deployment, one line each (what a Python user must see).
    assert [line.split(":")[0] for line in lines[1:]] == ["  a", "  b"]
    assert all(" 1 failed, first: " in line for line in lines[1:])
