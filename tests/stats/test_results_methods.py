"""Results.from_frame keeps score/label/tag columns; the Results methods delegate to compare.stats
with the run's deployment order and manifest["scorers"]."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from compare.errors import ConfigError
from compare.records import RECORD_COLUMNS
from compare.results import Results
from compare.stats.comparison import compare
from compare.stats.preferences import bradley_terry
from compare.stats.ranking import leaderboard
from compare.stats.rundiff import diff, significantly_worse
from compare.stats.sample_size import power
from tests.stats._synth import Sim, tidy_frame


def _frame(seed: int = 81) -> pd.DataFrame:
    frame = tidy_frame(np.random.default_rng(seed), 30, {"a": Sim(), "b": Sim(0.8, 0.2, 1.2)},
                       tags=[["math"], ["code"]])
    frame["pass_exact"] = frame["score_exact"] == 1
    frame["label_domain"] = np.where(frame["prompt_id"] < "p015", "law", "med")
    frame["score_rating"] = np.clip(np.round(frame["score_quality"]), 1, 5)
    return frame


def test_from_frame_keeps_extra_columns_with_their_dtypes() -> None:
    results = Results.from_frame(_frame())
    f = results.frame
    assert tuple(f.columns[: len(RECORD_COLUMNS)]) == RECORD_COLUMNS
    assert {"score_exact", "score_quality", "pass_exact", "label_domain", "tags"} <= set(f)
    assert f["score_exact"].dtype == np.float64 and f["pass_exact"].dtype == bool
    assert isinstance(f["label_domain"].dtype, pd.StringDtype)
    assert f["tags"].iloc[0] == ["math"] and f["latency_s"].dtype == np.float64
    assert f["endpoint_kind"].isna().all()  # record columns the frame lacked stay empty
    assert results.deployments == ["a", "b"] and len(results) == 60


def test_from_frame_errors_name_the_columns() -> None:
    with pytest.raises(ConfigError, match=r"missing column.*deployment, status"):
        Results.from_frame(_frame().drop(columns=["deployment", "status"]))
    with pytest.raises(ConfigError, match="no metric column"):
        Results.from_frame(_frame()[["prompt_id", "deployment", "repeat", "status"]])
    with pytest.raises(ConfigError, match=r"unknown value.*failed"):
        Results.from_frame(_frame().assign(status="failed"))
    with pytest.raises(ConfigError, match="pandas DataFrame, not list"):
        Results.from_frame([])  # type: ignore[arg-type]


def test_methods_delegate_with_order_and_scorers() -> None:
    scorers = {"rating": {"kind": "ordinal", "higher_is_better": True}}
    manifest = {"scorers": scorers, "deployment_order": ["b", "a"]}
    results = Results.from_frame(_frame(), manifest=manifest)
    frame, order = results.frame, ["b", "a"]
    pd.testing.assert_frame_equal(results.leaderboard("score_quality"),
                                  leaderboard(frame, "score_quality", order=order))
    table = results.compare(metrics=["score_rating", "latency_s"], by="label_domain")
    expected = compare(frame, metrics=["score_rating", "latency_s"], by="label_domain",
                       scorers=scorers, order=order)
    pd.testing.assert_frame_equal(table, expected)
    assert set(table["test"]) == {"Wilcoxon signed-rank", "log-ratio t"}
    assert (table["a"] == "b").all()  # the run's order decides which side is a
    assert results.power("a", "b", "score_quality", 0.1) == power(frame, "a", "b",
                                                                  "score_quality", 0.1)
    judge = pd.DataFrame({"prompt_id": ["p1", "p2", "p3"], "repeat": 0, "a": "a", "b": "b",
                          "winner": ["a", "b", "b"], "verdict_ab": ["first", "second", "second"],
                          "verdict_ba": ["second", "first", "first"], "judge": "j"})
    pd.testing.assert_frame_equal(results.bradley_terry("judge", judge),
                                  bradley_terry("judge", judge, order=order))


def test_diff_of_two_results_reads_scorers_from_the_manifest() -> None:
    old = _frame()
    new = old.copy()
    new["score_quality"] += np.where(new["deployment"] == "a", 0.4, 0.0) + np.random.default_rng(
        1).normal(0, 0.1, len(new))
    scorers = {"quality": {"kind": "continuous", "higher_is_better": False}}
    table = diff(Results.from_frame(old), Results.from_frame(new, manifest={"scorers": scorers}),
                 metrics="score_quality")
    assert not table["higher_is_better"].any()
    assert significantly_worse(table, "score_quality")  # higher is worse for this scorer


def test_importing_results_does_not_import_scipy() -> None:
    code = ("import sys, compare.results; "
            "print([m for m in ('scipy', 'statsmodels') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
