"""Judges against people: kappa and Krippendorff's alpha checked against a second library and
by construction, and the prediction-powered mean's coverage checked by simulation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.inter_rater import cohens_kappa

from compare.agreement import agreement_table
from compare.errors import ConfigError
from compare.ratings import Pair, append_rating
from compare.results import Results


def _results(judge: np.ndarray, human: np.ndarray | None = None, kind: str = "ordinal"
             ) -> Results:
    n = len(judge)
    rows = [{"prompt_id": f"p{i}", "deployment": "d", "repeat": 0, "status": "ok",
             "output": "x"} for i in range(n)]
    res = Results.from_records(rows, manifest={"scorers": {"judge": {"kind": kind}}})
    if human is not None:
        res.frame["human"] = human
    res.scores = pd.DataFrame({"prompt_id": [f"p{i}" for i in range(n)], "deployment": "d",
                               "repeat": 0, "scorer": "judge", "value": judge})
    return res


def test_kappas_match_statsmodels_and_alpha_is_one_for_identical_labels() -> None:
    rng = np.random.default_rng(1)
    human = rng.integers(1, 6, 200).astype(float)
    judge = np.where(rng.random(200) < 0.7, human, rng.integers(1, 6, 200)).astype(float)
    table = agreement_table(judge, human, ordinal=True, n_resamples=300)
    confusion = pd.crosstab(judge, human).reindex(index=range(1, 6), columns=range(1, 6),
                                                  fill_value=0).to_numpy()
    assert table.loc["cohen_kappa", "estimate"] == pytest.approx(cohens_kappa(confusion).kappa)
    quadratic = cohens_kappa(confusion, wt="quadratic").kappa
    assert table.loc["weighted_kappa", "estimate"] == pytest.approx(quadratic)
    for _, row in table.iterrows():
        assert row.ci_low < row.estimate < row.ci_high
    same = agreement_table(human, human, ordinal=True, n_resamples=50)
    assert same.loc["krippendorff_alpha", "estimate"] == pytest.approx(1.0)


def test_judge_agreement_reads_a_labelled_column_and_rounds_expected_grades() -> None:
    human = np.array([1, 2, 3, 4, 5, 5, 4, 3, 2, 1], dtype=float)
    judge = human + np.array([0.2, -0.3, 0.1, 0.4, -0.2, 0.0, 0.3, -0.1, 0.2, 0.1])
    human_partly = human.copy()
    human_partly[-2:] = np.nan  # unlabelled rows are left out
    table = _results(judge, human_partly).judge_agreement("judge", "human", n_resamples=100)
    assert table.loc["cohen_kappa", "estimate"] == pytest.approx(1.0)
    assert (table["n"] == 8).all()
    with pytest.raises(ConfigError, match="labels='nope' is not a column"):
        _results(judge, human).judge_agreement("judge", "nope")


def test_pairwise_agreement_against_the_rate_tabs_votes(tmp_path) -> None:
    res = _results(np.ones(3))
    res.path = tmp_path
    res.pairs = pd.DataFrame({"prompt_id": ["p0", "p1", "p2", "p3"], "repeat": 0,
                              "a": "x", "b": "y", "winner": ["a", "b", "tie", "a"],
                              "judge": "grader"})
    res.manifest["scorers"]["pairwise"] = {"kind": "pairwise", "judge": "grader"}
    for pid, left, vote in (("p0", "y", "right"), ("p1", "x", "right"), ("p2", "x", "both_bad"),
                            ("p3", "x", "right")):
        append_rating(tmp_path, Pair(pid, 0, left, "y" if left == "x" else "x"), vote)
    table = res.judge_agreement("pairwise", n_resamples=50)
    # p0: x shown right, voted right = a; p1: y = b; p2: tie; p3: y vs the judge's a.
    assert table.loc["cohen_kappa", "n"] == 4
    assert 0 < table.loc["cohen_kappa", "estimate"] < 1


def test_corrected_mean_covers_the_human_mean_a_biased_judge_misses() -> None:
    rng = np.random.default_rng(7)
    covered = judge_covered = 0
    trials = 200
    for _ in range(trials):
        human = rng.integers(1, 6, 600).astype(float)
        judge = np.clip(human + 0.8 + rng.normal(0, 0.7, 600), 1, 5)  # lenient, noisy
        labelled = np.full(600, np.nan)
        labelled[:60] = human[:60]
        out = _results(judge, labelled).corrected_mean("judge", "human", confidence=0.9)
        truth = human.mean()
        covered += out["ci_low"] <= truth <= out["ci_high"]
        judge_covered += abs(out["judge_mean"] - truth) < 0.2
        assert out["ci_high"] - out["ci_low"] < out["human_ci_high"] - out["human_ci_low"]
    assert covered / trials >= 0.85  # nominal 0.90; ±3 standard errors of 200 trials
    assert judge_covered == 0


def test_corrected_mean_needs_labels_on_judged_rows() -> None:
    with pytest.raises(ConfigError, match="at least 2 human-labelled rows"):
        _results(np.ones(5), np.array([1.0] + [math.nan] * 4)).corrected_mean("judge", "human")
