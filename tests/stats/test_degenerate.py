"""Degenerate input: a clear ConfigError, or a warning plus a row whose note says why."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from compare.errors import ConfigError
from compare.stats.comparison import compare
from compare.stats.ranking import leaderboard
from compare.stats.sample_size import power
from tests.stats._synth import Sim, tidy_frame


def _frame(n: int = 10, repeats: int = 1, deployments: str = "ab", seed: int = 0) -> pd.DataFrame:
    return tidy_frame(np.random.default_rng(seed), n, {d: Sim() for d in deployments}, repeats)


def test_one_prompt() -> None:
    with pytest.warns(UserWarning, match=r"no p-value .*1 paired prompt"):
        table = compare(_frame(1))
    t_row = table.set_index("metric").loc["score_quality"]
    assert t_row["n_pairs"] == 1 and np.isnan(t_row["p_value"]) and not t_row["significant"]
    assert "need at least 2" in t_row["note"]
    mcnemar = table.set_index("metric").loc["score_exact"]
    assert mcnemar["p_value"] == 1.0 and "1 paired prompt" in mcnemar["note"]
    board = leaderboard(_frame(1), "score_quality")
    assert (board["n_prompts"] == 1).all() and board["note"].str.contains("1 prompt").all()
    with pytest.raises(ConfigError, match=r"1 paired prompt.*pilot"):
        power(_frame(1), "a", "b", "score_quality", 0.1)


def test_all_ties() -> None:
    frame = _frame(12, deployments="abc")
    frame["score_exact"] = 1.0
    frame["score_quality"] = 2.5
    table = compare(frame, metrics=["score_exact", "score_quality"])
    assert (table["p_value"] == 1.0).all() and not table["significant"].any()
    assert (table["ties"] == 12).all()
    quality = table[table["metric"] == "score_quality"]
    assert (quality["ci_low"] == 0).all() and (quality["ci_high"] == 0).all()
    # 12 agreeing pass/fail answers rule out large differences, not small ones.
    exact = table[table["metric"] == "score_exact"]
    assert ((exact["ci_low"] < 0) & (exact["ci_high"] > 0)).all()
    assert table["note"].str.contains("no discordant|all paired differences are equal").all()
    assert [o["note"] for o in table.attrs["omnibus"]] == ["no prompt differs"] * 2
    with pytest.raises(ConfigError, match="all with the same difference"):
        power(frame, "a", "b", "score_quality", 0.1)


def test_deployment_with_no_ok_rows() -> None:
    frame = _frame(8)
    frame.loc[frame["deployment"] == "b", "status"] = "error"
    with pytest.warns(UserWarning, match="no prompt answered ok by both"):
        row = compare(frame, metrics="score_quality").iloc[0]
    assert row["n_pairs"] == 0 and row["n_dropped"] == 8
    assert row["dropped"] == "b: no ok answer (error) — 8 prompts"
    assert "b has no usable score_quality rows" in row["note"]
    board = leaderboard(frame, "score_quality")
    assert board.loc["b", "n_prompts"] == 0 and np.isnan(board.loc["b", "mean"])
    assert board.loc["b", "note"] == "no usable score_quality rows (statuses: error×8)"
    assert np.isnan(board.loc["b", "rank"]) and board.loc["a", "rank"] == 1


def test_unbalanced_repeats_are_averaged_per_prompt() -> None:
    frame = _frame(10, repeats=3)
    frame = frame.drop(index=frame.index[(frame["deployment"] == "a") & (frame["repeat"] > 0)][:5])
    row = compare(frame, "a", "b", metrics="score_quality").iloc[0]
    assert row["n_pairs"] == 10 and "unequal repeats" in row["note"]
    assert np.isfinite(row["p_value"])


def test_missing_metric_column_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match=r"no metric column 'score_exct'\. Did you mean "
                                          r"'score_exact'\?"):
        compare(_frame(), metrics="score_exct")
    with pytest.raises(ConfigError, match="Did you mean 'latency_s'"):
        leaderboard(_frame(), "latncy_s")
    with pytest.raises(ConfigError, match="not numeric"):
        compare(_frame(), metrics="prompt_id")


def test_bad_arguments_name_themselves() -> None:
    frame = _frame(deployments="ab")
    cases = [
        ({"a": "A"}, r"a='A' is not a deployment.*Did you mean 'a'"),
        ({"baseline": "c"}, r"baseline='c' is not a deployment"),
        ({"b": "a"}, "b= was given without a="),
        ({"a": "a", "b": "a"}, "both 'a'"),
        ({"by": "label_domian"}, r"by='label_domian': no such column"),
        ({"by": "tag"}, "needs a 'tags' column"),
        ({"test": "boot"}, "test='boot'; choose one of"),
        ({"alpha": 5}, "alpha=5 must be between 0 and 1"),
        ({"metrics": "score_exact", "test": "mcnemar", "by": None, "a": "a", "b": "b"}, None),
    ]
    for kwargs, message in cases:
        if message is None:
            assert compare(frame, **kwargs)["test"].iloc[0] == "McNemar exact"
            continue
        with pytest.raises(ConfigError, match=message):
            compare(frame, **kwargs)
    with pytest.raises(ConfigError, match="test='mcnemar' needs a binary metric"):
        compare(frame, metrics="score_quality", test="mcnemar")
    with pytest.raises(ConfigError, match="test='wilcoxon' does not apply to latency_s"):
        compare(frame, metrics="latency_s", test="wilcoxon")


def test_frames_that_cannot_be_compared() -> None:
    with pytest.raises(ConfigError, match=r"at least two deployments.*a"):
        compare(_frame(deployments="a"))
    with pytest.raises(ConfigError, match="has no rows"):
        compare(_frame().iloc[:0])
    with pytest.raises(ConfigError, match=r"lacks column.*status"):
        compare(_frame().drop(columns="status"))
    empty_metrics = _frame()[["prompt_id", "deployment", "repeat", "status"]]
    with pytest.raises(ConfigError, match="no metric to analyse"):
        compare(empty_metrics)


def test_latency_like_with_zero_values_tests_the_difference() -> None:
    frame = _frame(10)
    frame.loc[frame["deployment"] == "a", "cost"] = 0.0  # a free local deployment
    row = compare(frame, metrics="cost").iloc[0]
    assert np.isnan(row["ratio"]) and np.isfinite(row["p_value"])
    assert row["note"] == "values ≤ 0: no ratio; tested the difference instead"
    with pytest.raises(ConfigError, match="values ≤ 0"):
        power(frame, "a", "b", "cost", 1.1)


def test_power_arguments() -> None:
    frame = _frame(20)
    with pytest.raises(ConfigError, match="ratio b/a"):
        power(frame, "a", "b", "latency_s", 0)
    with pytest.raises(ConfigError, match="≠ 0"):
        power(frame, "a", "b", "score_quality", 0)
    with pytest.raises(ConfigError, match=r"power=1\.5"):
        power(frame, "a", "b", "score_quality", 0.1, power=1.5)
