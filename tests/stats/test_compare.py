"""compare(): every test's numbers against scipy / statsmodels called directly on the same data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import cochrans_q, mcnemar
from statsmodels.stats.multitest import multipletests

from compare.stats.comparison import compare
from compare.stats.paired import N_RESAMPLES, SEED
from tests.stats._synth import Sim, per_prompt, tidy_frame


def _binary_frame(a: list[int], b: list[int]) -> pd.DataFrame:
    n = len(a)
    return pd.DataFrame({
        "prompt_id": [f"p{i}" for i in range(n)] * 2,
        "deployment": ["a"] * n + ["b"] * n,
        "repeat": 0, "status": "ok", "cached": False,
        "score_exact": np.array(a + b, dtype=float),
    })


def test_mcnemar_worked_example() -> None:
    # 10 prompts: both right on 3, both wrong on 1, only b right on 5, only a right on 1.
    a = [1, 1, 1, 0, 1, 0, 0, 0, 0, 0]
    b = [1, 1, 1, 0, 0, 1, 1, 1, 1, 1]
    row = compare(_binary_frame(a, b), "a", "b", metrics="score_exact").iloc[0]
    assert row["test"] == "McNemar exact"
    # P(X ≥ 5 | n = 6, p = ½) = 7/64; two-sided: 14/64.
    assert row["p_value"] == pytest.approx(14 / 64)
    table = [[3, 1], [5, 1]]  # rows a right/wrong, columns b right/wrong
    assert row["p_value"] == pytest.approx(mcnemar(table, exact=True).pvalue)
    assert row["ci_low"] < 0.4 < row["ci_high"]
    assert (row["diff"], row["mean_a"], row["mean_b"]) == pytest.approx((0.4, 0.4, 0.8))
    assert (row["wins"], row["losses"], row["ties"]) == (5, 1, 4)


def test_paired_proportion_interval_matches_the_published_example() -> None:
    # Cavo et al. (2012) complete response before/after consolidation, 161 patients: the
    # Newcombe square-and-add interval published for it (Fagerland, Lydersen & Laake,
    # "Statistical Analysis of Contingency Tables", ch. 8) is -0.1186 to -0.0046.
    from compare.stats.proportions import paired_difference_interval

    low, high = paired_difference_interval(59, 6, 16, 80, 0.95)
    assert (round(low, 4), round(high, 4)) == (-0.1186, -0.0046)


def test_paired_t_on_per_prompt_means_with_repeats() -> None:
    rng = np.random.default_rng(1)
    frame = tidy_frame(rng, 30, {"a": Sim(), "b": Sim(shift=0.2)}, repeats=3)
    row = compare(frame, "a", "b", metrics="score_quality").iloc[0]
    xa, xb = per_prompt(frame, "a", "score_quality"), per_prompt(frame, "b", "score_quality")
    expected = stats.ttest_rel(xb, xa)
    ci = expected.confidence_interval(0.95)
    assert row["test"] == "paired t" and row["n_pairs"] == 30
    assert row["p_value"] == pytest.approx(expected.pvalue)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert row["diff"] == pytest.approx((xb - xa).mean())
    assert row["se_diff"] == pytest.approx(stats.sem(xb - xa))


def test_binary_with_repeats_uses_paired_t_on_means() -> None:
    rng = np.random.default_rng(2)
    frame = tidy_frame(rng, 40, {"a": Sim(0.6), "b": Sim(0.8)}, repeats=2)
    row = compare(frame, "a", "b", metrics="score_exact").iloc[0]
    xa, xb = per_prompt(frame, "a", "score_exact"), per_prompt(frame, "b", "score_exact")
    assert row["test"] == "paired t"
    assert row["p_value"] == pytest.approx(stats.ttest_rel(xb, xa).pvalue)


def test_wilcoxon_for_ordinal_scores() -> None:
    rng = np.random.default_rng(3)
    frame = tidy_frame(rng, 25, {"a": Sim(), "b": Sim(shift=0.3)})
    frame["score_rating"] = np.clip(np.round(frame["score_quality"]), 1, 5)
    scorers = {"rating": {"kind": "ordinal", "higher_is_better": True}}
    row = compare(frame, "a", "b", metrics="score_rating", scorers=scorers).iloc[0]
    xa, xb = per_prompt(frame, "a", "score_rating"), per_prompt(frame, "b", "score_rating")
    assert row["test"] == "Wilcoxon signed-rank"
    d = (xb - xa).to_numpy()
    ranks = stats.rankdata(np.abs(d))
    ref = stats.permutation_test((d,), lambda x, axis: np.sum(np.sign(x) * ranks, axis=axis),
                                 vectorized=True, permutation_type="samples",
                                 n_resamples=N_RESAMPLES, rng=np.random.default_rng(SEED))
    assert row["p_value"] == pytest.approx(ref.pvalue)


def test_wilcoxon_with_tied_grades_is_the_sign_flip_p_not_zsplit() -> None:
    # Tied 1–5 grades on 12 prompts: 2^12 sign patterns, so the permutation p is exact; the
    # normal approximation with zsplit is far too small here (the 0.333 vs 0.509 kind).
    a = np.array([3, 4, 2, 5, 3, 3, 4, 2, 3, 4, 5, 3], dtype=float)
    b = np.array([4, 4, 3, 5, 4, 2, 4, 3, 3, 5, 4, 4], dtype=float)
    n = len(a)
    frame = pd.DataFrame({
        "prompt_id": [f"p{i}" for i in range(n)] * 2, "deployment": ["a"] * n + ["b"] * n,
        "repeat": 0, "status": "ok", "score_grade": np.concatenate([a, b])})
    scorers = {"grade": {"kind": "ordinal", "higher_is_better": True}}
    row = compare(frame, "a", "b", metrics="score_grade", scorers=scorers).iloc[0]
    exact = stats.wilcoxon(b - a, zero_method="pratt",
                           method=stats.PermutationMethod(n_resamples=10_000)).pvalue
    zsplit = stats.wilcoxon(b - a, zero_method="zsplit", method="approx").pvalue
    print(f"sign-flip p {row['p_value']:.3f}, scipy exact {exact:.3f}, zsplit {zsplit:.3f}")
    assert row["p_value"] == pytest.approx(exact)
    assert zsplit < row["p_value"]


def test_latency_ratio_uses_timed_rows_and_log_t() -> None:
    rng = np.random.default_rng(4)
    frame = tidy_frame(rng, 30, {"a": Sim(), "b": Sim(latency_ratio=1.3)}, repeats=3)
    # Rows that must not count: a replayed (cached) row and a timeout, both absurdly slow.
    junk = frame.iloc[[0, 1]].copy()
    junk["latency_s"] = 500.0
    junk["cached"] = [True, False]
    junk["status"] = ["ok", "timeout"]
    frame = pd.concat([frame, junk], ignore_index=True)
    row = compare(frame, "a", "b", metrics="latency_s").iloc[0]
    xa = per_prompt(frame, "a", "latency_s", "median")
    xb = per_prompt(frame, "b", "latency_s", "median")
    logt = stats.ttest_rel(np.log(xb), np.log(xa))
    ci = logt.confidence_interval(0.95)
    assert row["test"] == "log-ratio t" and row["higher_is_better"] is np.False_
    assert row["p_value"] == pytest.approx(logt.pvalue)
    assert row["ratio"] == pytest.approx(math.exp(np.mean(np.log(xb) - np.log(xa))))
    assert (row["ratio_ci_low"], row["ratio_ci_high"]) == pytest.approx(
        (math.exp(ci.low), math.exp(ci.high)))
    raw = stats.ttest_rel(xb, xa).confidence_interval(0.95)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((raw.low, raw.high))
    assert 1.1 < row["ratio"] < 1.5 and row["significant"]


def test_bootstrap_and_permutation_match_scipy() -> None:
    rng = np.random.default_rng(5)
    frame = tidy_frame(rng, 60, {"a": Sim(), "b": Sim(shift=0.15)})
    xa, xb = per_prompt(frame, "a", "score_quality"), per_prompt(frame, "b", "score_quality")
    d = (xb - xa).to_numpy()
    boot = compare(frame, "a", "b", metrics="score_quality", test="bootstrap").iloc[0]
    ref = stats.bootstrap((d,), np.mean, method="BCa", n_resamples=N_RESAMPLES,
                          random_state=np.random.default_rng(SEED))
    assert boot["test"] == "bootstrap BCa"
    assert (boot["ci_low"], boot["ci_high"]) == pytest.approx(
        (ref.confidence_interval.low, ref.confidence_interval.high))
    # The p-value beside the interval is the sign-flip permutation p (calibrated under the null).
    sign_flip = stats.permutation_test((d,), lambda x, axis: np.mean(x, axis=axis),
                                       vectorized=True, permutation_type="samples",
                                       n_resamples=N_RESAMPLES, rng=np.random.default_rng(SEED))
    assert boot["p_value"] == pytest.approx(sign_flip.pvalue, abs=0.02)
    perm = compare(frame, "a", "b", metrics="score_quality", test="permutation").iloc[0]
    ref_p = stats.permutation_test(
        (xb.to_numpy(), xa.to_numpy()), lambda u, v, axis: np.mean(u - v, axis=axis),
        vectorized=True, permutation_type="samples", n_resamples=N_RESAMPLES,
        random_state=np.random.default_rng(SEED))
    assert perm["test"] == "permutation" and perm["p_value"] == pytest.approx(ref_p.pvalue)


def test_bootstrap_latency_gives_a_ratio_interval() -> None:
    rng = np.random.default_rng(6)
    frame = tidy_frame(rng, 60, {"a": Sim(), "b": Sim(latency_ratio=0.7)})
    row = compare(frame, "a", "b", metrics="latency_s", test="bootstrap").iloc[0]
    d = np.log(per_prompt(frame, "b", "latency_s").to_numpy()) - np.log(
        per_prompt(frame, "a", "latency_s").to_numpy())
    ref = stats.bootstrap((d,), np.mean, method="BCa", n_resamples=N_RESAMPLES,
                          random_state=np.random.default_rng(SEED))
    assert row["ratio_ci_low"] == pytest.approx(math.exp(ref.confidence_interval.low))
    assert row["ratio_ci_high"] == pytest.approx(math.exp(ref.confidence_interval.high))
    assert row["ratio"] < 1 and row["significant"]


def test_holm_over_every_row_of_the_call() -> None:
    rng = np.random.default_rng(7)
    frame = tidy_frame(rng, 30, {"a": Sim(), "b": Sim(0.8, 0.1, 1.1), "c": Sim(0.6, -0.1, 0.9)})
    table = compare(frame)
    assert len(table) == 3 * 5  # 3 pairs × 5 default metrics
    expected = multipletests(table["p_value"], alpha=0.05, method="holm")[1]
    np.testing.assert_allclose(table["p_adj"], expected)
    assert (table["significant"] == (table["p_adj"] < 0.05)).all()


def test_default_metrics_scores_then_latency_ttft_cost() -> None:
    rng = np.random.default_rng(8)
    frame = tidy_frame(rng, 10, {"a": Sim(), "b": Sim()})
    table = compare(frame)
    assert list(table["metric"]) == ["score_exact", "score_quality", "latency_s", "ttft_s", "cost"]
    frame["cost"] = np.nan  # no prices: cost has no data and is left out
    assert "cost" not in set(compare(frame)["metric"])


def test_omnibus_cochran_and_friedman() -> None:
    rng = np.random.default_rng(9)
    frame = tidy_frame(rng, 40, {"a": Sim(0.5), "b": Sim(0.8, 0.4), "c": Sim(0.55, 0.1)})
    table = compare(frame, metrics=["score_exact", "score_quality"])
    tests = {o["metric"]: o for o in table.attrs["omnibus"]}
    block = np.column_stack([per_prompt(frame, d, "score_exact") for d in "abc"])
    q = cochrans_q(block.astype(int))
    assert tests["score_exact"]["test"] == "Cochran's Q"
    assert tests["score_exact"]["p_value"] == pytest.approx(q.pvalue)
    quality = [per_prompt(frame, d, "score_quality") for d in "abc"]
    fried = stats.friedmanchisquare(*quality)
    assert tests["score_quality"]["test"] == "Friedman"
    assert tests["score_quality"]["statistic"] == pytest.approx(fried.statistic)
    rows = table[table["metric"] == "score_quality"]
    np.testing.assert_allclose(rows["omnibus_p"], fried.pvalue)
    two = compare(frame, "a", "b", metrics="score_exact")
    assert two.attrs["omnibus"] == [] and "omnibus_p" not in two.columns


def test_pairs_baseline_and_all() -> None:
    rng = np.random.default_rng(10)
    frame = tidy_frame(rng, 8, {"x": Sim(), "y": Sim(), "z": Sim()})
    base = compare(frame, baseline="y", metrics="score_quality")
    assert list(zip(base["a"], base["b"], strict=True)) == [("y", "x"), ("y", "z")]
    every = compare(frame, metrics="score_quality")
    assert list(zip(every["a"], every["b"], strict=True)) == [("x", "y"), ("x", "z"), ("y", "z")]
    one = compare(frame, "z", "x", metrics="score_quality")
    assert list(zip(one["a"], one["b"], strict=True)) == [("z", "x")]
    ordered = compare(frame, metrics="score_quality", order=["z", "y", "x"])
    assert (ordered["a"].iloc[0], ordered["b"].iloc[0]) == ("z", "y")


def test_by_tag_equals_compare_on_the_tagged_prompts() -> None:
    rng = np.random.default_rng(11)
    frame = tidy_frame(rng, 30, {"a": Sim(), "b": Sim(shift=0.2)},
                       tags=[["math"], ["math", "code"], ["chat"], []])
    table = compare(frame, "a", "b", metrics="score_quality", by="tag")
    assert list(table["tag"]) == ["(untagged)", "chat", "code", "math"]
    math_rows = frame[frame["tags"].map(lambda t: "math" in t)]
    alone = compare(math_rows, "a", "b", metrics="score_quality").iloc[0]
    row = table.set_index("tag").loc["math"]
    assert row["n_pairs"] == alone["n_pairs"] == 16
    assert row["p_value"] == pytest.approx(alone["p_value"])
    assert table["p_adj"].tolist() == pytest.approx(
        multipletests(table["p_value"], method="holm")[1].tolist())


def test_by_label_column() -> None:
    rng = np.random.default_rng(12)
    frame = tidy_frame(rng, 20, {"a": Sim(), "b": Sim()})
    frame["label_domain"] = np.where(frame["prompt_id"] < "p010", "law", "med")
    table = compare(frame, "a", "b", metrics="score_quality", by="label_domain")
    assert list(table["label_domain"]) == ["law", "med"] and list(table["n_pairs"]) == [10, 10]


def test_only_prompts_both_answered_ok_are_paired_and_drops_are_explained() -> None:
    rng = np.random.default_rng(13)
    frame = tidy_frame(rng, 12, {"a": Sim(), "b": Sim()})
    b_rows = frame.index[frame["deployment"] == "b"]
    frame.loc[b_rows[:2], "status"] = "timeout"
    frame.loc[b_rows[2], "status"] = "error"
    frame.loc[b_rows[3], "cached"] = True
    frame.loc[frame.index[frame["deployment"] == "a"][4], "score_quality"] = np.nan
    quality = compare(frame, "a", "b", metrics="score_quality").iloc[0]
    assert quality["n_pairs"] == 8 and quality["n_dropped"] == 4
    assert "b: no ok answer (timeout) — 2 prompts" in quality["dropped"]
    assert "b: no ok answer (error) — 1 prompt" in quality["dropped"]
    assert "a: no score_quality value — 1 prompt" in quality["dropped"]
    latency = compare(frame, "a", "b", metrics="latency_s").iloc[0]
    assert latency["n_pairs"] == 8  # the cached row counts for scores, never for latency
    assert "b: only cached (replayed) rows — 1 prompt" in latency["dropped"]


def test_wins_respect_direction() -> None:
    rng = np.random.default_rng(14)
    frame = tidy_frame(rng, 30, {"a": Sim(), "b": Sim(latency_ratio=0.5)}, noise=0.05)
    row = compare(frame, "a", "b", metrics="latency_s").iloc[0]
    assert row["wins"] == 30 and row["losses"] == 0  # b is faster on every prompt: lower wins
    scorers = {"quality": {"kind": "continuous", "higher_is_better": False}}
    rows = compare(frame, "a", "b", metrics="score_quality", scorers=scorers).iloc[0]
    assert rows["wins"] == int((per_prompt(frame, "b", "score_quality")
                                < per_prompt(frame, "a", "score_quality")).sum())
