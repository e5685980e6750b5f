"""Length bias and position consistency of judges, on constructed cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from compare.scorers.judge_checks import length_bias, position_consistency


def test_grades_that_rise_with_length_have_rho_one_and_shuffled_ones_near_zero() -> None:
    outputs = ["x" * n for n in range(1, 41)]
    rising = length_bias(np.linspace(1, 5, 40), outputs)
    assert rising["spearman_rho"] == 1.0 and rising["n"] == 40
    rng = np.random.default_rng(3)
    rhos = [length_bias(rng.integers(1, 6, 40).astype(float), outputs)["spearman_rho"]
            for _ in range(300)]
    # Independent grades: the test at 5 % rejects about 5 % of the time.
    rejected = np.mean([length_bias(rng.integers(1, 6, 40).astype(float), outputs)["p_value"]
                        < 0.05 for _ in range(300)])
    assert abs(np.mean(rhos)) < 0.05 and rejected < 0.1


def test_length_bias_skips_ungraded_rows_and_constant_grades() -> None:
    out = length_bias(np.array([1.0, math.nan, 5.0, 3.0]), ["a", "bb", "ccccc", "ccc"])
    assert out["n"] == 3 and out["spearman_rho"] == 1.0
    assert math.isnan(length_bias(np.full(5, 4.0), ["a", "bb", "c", "dd", "e"])["spearman_rho"])


def test_position_consistency_counts_verdicts_that_survive_the_swap() -> None:
    pairs = pd.DataFrame({
        # a wins both orders, b wins both, tie both, first-shown both times, unparsed.
        "verdict_ab": ["first", "second", "tie", "first", None],
        "verdict_ba": ["second", "first", "tie", "first", "first"],
    })
    out = position_consistency(pairs)
    assert out["n"] == 4 and out["share"] == 0.75
    assert out["ci_low"] < 0.75 < out["ci_high"]
    assert position_consistency(None)["n"] == 0
