"""bradley_terry(): fits against statsmodels on disaggregated data, worked examples, bias test."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from compare.errors import ConfigError
from compare.stats.preferences import bradley_terry, position_bias

N_BOOT = 200  # enough for the interval checks here; the default is 1000


def _judge(rows: list[tuple[str, str, str, str | None]]) -> pd.DataFrame:
    """(prompt_id, a, b, winner) → the judge frame, order-level verdicts consistent with winner."""
    ab = {"a": "first", "b": "second", "tie": "tie", None: None}
    ba = {"a": "second", "b": "first", "tie": "tie", None: None}
    return pd.DataFrame({
        "prompt_id": [r[0] for r in rows], "repeat": 0,
        "a": [r[1] for r in rows], "b": [r[2] for r in rows], "winner": [r[3] for r in rows],
        "verdict_ab": [ab[r[3]] for r in rows], "verdict_ba": [ba[r[3]] for r in rows],
        "judge": "judge-model",
    })


def _simulated(seed: int, n_prompts: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    strength = {"x": 0.0, "y": 0.8, "z": -0.4, "w": 0.3}
    names = list(strength)
    rows = []
    for p in range(n_prompts):
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                p_a = 1 / (1 + math.exp(strength[b] - strength[a]))
                u = rng.random()
                winner = "tie" if u > 0.85 else ("a" if u < 0.85 * p_a else "b")
                rows.append((f"p{p}", a, b, winner))
    return _judge(rows)


def test_worked_example_three_wins_in_four() -> None:
    judge = _judge([("p1", "x", "y", "a"), ("p2", "x", "y", "a"), ("p3", "y", "x", "b"),
                    ("p4", "x", "y", "b")])
    table = bradley_terry("judge", judge, n_boot=N_BOOT)
    # P(x beats y) = 3/4 → strength ratio 3 → 400·log10(3) ≈ 190.85 Elo points apart.
    assert table.loc["x", "strength"] / table.loc["y", "strength"] == pytest.approx(3.0)
    assert table.loc["x", "rating"] - table.loc["y", "rating"] == pytest.approx(
        400 * math.log10(3))
    assert table["rating"].mean() == pytest.approx(1000.0)
    assert table.loc["x", "win_rate"] == 0.75 and table.loc["x", "comparisons"] == 4
    assert list(table.index) == ["x", "y"]


def test_fit_equals_glm_on_one_row_per_comparison() -> None:
    judge = _simulated(41)
    table = bradley_terry("judge", judge, n_boot=N_BOOT)
    names = ["x", "y", "z", "w"]
    rows, outcome, weight = [], [], []
    for r in judge.itertuples():
        design = np.zeros(4)
        design[names.index(r.a)], design[names.index(r.b)] = 1.0, -1.0
        # A tie is half a win each: two half-weighted rows, one won and one lost.
        for won, w in ([(1.0, 1.0)] if r.winner == "a" else [(0.0, 1.0)] if r.winner == "b"
                       else [(1.0, 0.5), (0.0, 0.5)]):
            rows.append(design[1:])
            outcome.append(won)
            weight.append(w)
    fit = sm.GLM(np.array(outcome), np.array(rows), family=sm.families.Binomial(),
                 freq_weights=np.array(weight)).fit()
    beta = np.concatenate([[0.0], fit.params])
    expected = 1000 + 400 / math.log(10) * (beta - beta.mean())
    np.testing.assert_allclose(table.loc[names, "rating"], expected, rtol=1e-7)
    assert table["rating"].is_monotonic_decreasing and table.index[0] == "y"
    assert table.attrs["prior"] == "" and table.attrs["unparsed"] == 0


def test_bootstrap_interval_is_seeded_and_covers_the_estimate() -> None:
    judge = _simulated(42)
    first = bradley_terry("judge", judge, n_boot=N_BOOT)
    again = bradley_terry("judge", judge, n_boot=N_BOOT)
    pd.testing.assert_frame_equal(first, again)
    assert (first["rating_ci_low"] < first["rating"]).all()
    assert (first["rating"] < first["rating_ci_high"]).all()
    narrower = bradley_terry("judge", judge, n_boot=N_BOOT, level=0.5)
    assert (narrower["rating_ci_high"] - narrower["rating_ci_low"]
            < first["rating_ci_high"] - first["rating_ci_low"]).all()


def test_human_votes_both_bad_is_a_tie_and_both_sources_combine() -> None:
    judge = _simulated(43, n_prompts=10)
    votes = judge["winner"].map({"a": "left", "b": "right", "tie": "both_bad"})
    human = pd.DataFrame({"prompt_id": judge["prompt_id"], "repeat": 0, "left": judge["a"],
                          "right": judge["b"], "vote": votes, "note": "", "rated_at": None})
    from_judge = bradley_terry("judge", judge, n_boot=N_BOOT)
    from_human = bradley_terry("human", ratings=human, n_boot=N_BOOT)
    np.testing.assert_allclose(from_human.loc[from_judge.index, "rating"], from_judge["rating"])
    both = bradley_terry("both", judge, human, n_boot=N_BOOT)
    np.testing.assert_allclose(both.loc[from_judge.index, "rating"], from_judge["rating"])
    assert (both["comparisons"] == 2 * from_judge["comparisons"]).all()


def test_unparsed_verdicts_are_skipped_and_counted() -> None:
    judge = _judge([("p1", "x", "y", "a"), ("p2", "x", "y", None), ("p3", "x", "y", "b"),
                    ("p4", "x", "y", "a")])
    table = bradley_terry("judge", judge, n_boot=N_BOOT)
    assert table.attrs["unparsed"] == 1 and table.loc["x", "comparisons"] == 3


def test_position_bias_share_and_binomial_test() -> None:
    judge = _judge([("p1", "x", "y", "a"), ("p2", "x", "y", "tie")])
    judge["verdict_ab"] = ["first", "first"]
    judge["verdict_ba"] = ["first", "tie"]  # shown second, x lost once: first-shown won
    bias = position_bias(judge)
    assert (bias["share_first"], bias["n"]) == (1.0, 3)
    assert bias["p_value"] == pytest.approx(stats.binomtest(3, 3, 0.5).pvalue)
    many = _simulated(44)
    many["verdict_ba"] = "first"  # a judge that always prefers what it sees first
    bias = bradley_terry("judge", many, n_boot=N_BOOT).attrs["position_bias"]
    k = int((many["verdict_ab"] == "first").sum()) + len(many)
    n = int(many["verdict_ab"].isin(["first", "second"]).sum()) + len(many)
    assert bias["share_first"] == pytest.approx(k / n)
    assert bias["p_value"] == pytest.approx(stats.binomtest(k, n, 0.5).pvalue)
    assert bias["p_value"] < 1e-6


def test_a_deployment_that_always_wins_gets_a_finite_rating() -> None:
    judge = _judge([(f"p{i}", "x", "y", "a") for i in range(5)]
                   + [(f"q{i}", "y", "z", w) for i, w in enumerate("aab")])
    table = bradley_terry("judge", judge, n_boot=N_BOOT)
    assert np.isfinite(table["rating"]).all() and list(table.index) == ["x", "y", "z"]
    assert "virtual tie" in table.attrs["prior"]


def test_errors_name_what_is_missing() -> None:
    with pytest.raises(ConfigError, match="source='judge' needs judge="):
        bradley_terry("judge")
    with pytest.raises(ConfigError, match="source='human' needs ratings="):
        bradley_terry("human")
    with pytest.raises(ConfigError, match="source='elo'"):
        bradley_terry("elo")
    bad = _judge([("p1", "x", "y", "a")]).assign(winner="x")
    with pytest.raises(ConfigError, match="value\\(s\\) x; expected a, b, tie"):
        bradley_terry("judge", bad)
    with pytest.raises(ConfigError, match="lacks column"):
        bradley_terry("judge", _judge([("p1", "x", "y", "a")]).drop(columns="verdict_ba"))
    with pytest.raises(ConfigError, match="at least two deployments"):
        bradley_terry("judge", _judge([("p1", "x", "y", None)]))
