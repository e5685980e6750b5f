"""leaderboard(): mean, se and interval against cluster-robust OLS; Wilson; p50 bootstrap; cost."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from compare.stats.ranking import P50_RESAMPLES, SEED, leaderboard
from tests.stats._synth import Sim, per_prompt, tidy_frame


def test_mean_and_se_equal_cluster_robust_ols_on_balanced_data() -> None:
    rng = np.random.default_rng(21)
    frame = tidy_frame(rng, 15, {"a": Sim(), "b": Sim(shift=0.4)}, repeats=3)
    board = leaderboard(frame, "score_quality")
    for dep in ("a", "b"):
        rows = frame[frame["deployment"] == dep]
        groups = pd.factorize(rows["prompt_id"])[0]
        # Intercept-only OLS, standard errors clustered by prompt. statsmodels' default small-
        # sample correction G/(G−1)·(N−1)/(N−k) is G/(G−1) here (k = 1), which turns the
        # cluster sandwich Σ(ȳ_g − ȳ)²/G² into exactly s²/G of the per-prompt means; inference
        # uses t with G − 1 degrees of freedom. Without the correction se would be √((G−1)/G)
        # times smaller.
        fit = sm.OLS(rows["score_quality"].to_numpy(), np.ones((len(rows), 1))).fit(
            cov_type="cluster", cov_kwds={"groups": groups, "use_correction": True}, use_t=True)
        low, high = fit.conf_int(alpha=0.05)[0]
        row = board.loc[dep]
        assert row["mean"] == pytest.approx(fit.params[0])
        assert row["se"] == pytest.approx(fit.bse[0])
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high))
        uncorrected = sm.OLS(rows["score_quality"].to_numpy(), np.ones((len(rows), 1))).fit(
            cov_type="cluster", cov_kwds={"groups": groups, "use_correction": False})
        assert uncorrected.bse[0] == pytest.approx(row["se"] * np.sqrt(14 / 15))
        assert (row["n_prompts"], row["n_obs"], row["interval"]) == (15, 45, "t")
    assert list(board["rank"]) == [2, 1]


def test_binary_one_repeat_gets_wilson() -> None:
    rng = np.random.default_rng(22)
    frame = tidy_frame(rng, 50, {"a": Sim(0.6), "b": Sim(0.9)})
    board = leaderboard(frame, "score_exact", level=0.9)
    for dep in ("a", "b"):
        values = per_prompt(frame, dep, "score_exact")
        low, high = proportion_confint(int(values.sum()), len(values), alpha=0.1,
                                       method="wilson")
        assert board.loc[dep, "interval"] == "Wilson"
        assert (board.loc[dep, "ci_low"], board.loc[dep, "ci_high"]) == pytest.approx((low, high))
        assert board.loc[dep, "mean"] == pytest.approx(values.mean())


def test_rank_respects_direction() -> None:
    rng = np.random.default_rng(23)
    frame = tidy_frame(rng, 30, {"slow": Sim(latency_ratio=2.0), "fast": Sim(latency_ratio=0.5),
                                 "mid": Sim()})
    board = leaderboard(frame, "latency_s")
    assert board["rank"].to_dict() == {"slow": 3, "fast": 1, "mid": 2}
    assert list(board.index) == ["slow", "fast", "mid"]  # run order, not rank order
    scorers = {"quality": {"kind": "continuous", "higher_is_better": False}}
    frame["score_quality"] = frame["deployment"].map({"slow": 1.0, "fast": 3.0, "mid": 2.0})
    assert leaderboard(frame, "score_quality", scorers=scorers)["rank"].to_dict() == {
        "slow": 1, "fast": 3, "mid": 2}


def test_p50_and_its_bootstrap_interval_over_prompts() -> None:
    rng = np.random.default_rng(24)
    frame = tidy_frame(rng, 40, {"a": Sim()})
    cached = frame.iloc[:3].assign(latency_s=100.0, cached=True)
    frame = pd.concat([frame, cached], ignore_index=True)
    row = leaderboard(frame, "score_quality").loc["a"]
    timed = frame.loc[~frame["cached"], "latency_s"].to_numpy()
    assert row["latency_s_p50"] == pytest.approx(np.percentile(timed, 50))
    # With one repeat, resampling prompts is resampling rows: scipy on the values directly.
    ref = stats.bootstrap((timed,), np.median, method="percentile", n_resamples=P50_RESAMPLES,
                          batch=200, random_state=np.random.default_rng(SEED))
    assert row["latency_s_p50_ci_low"] == pytest.approx(ref.confidence_interval.low)
    assert row["latency_s_p50_ci_high"] == pytest.approx(ref.confidence_interval.high)


def test_p50_interval_resamples_whole_prompts_with_repeats() -> None:
    rng = np.random.default_rng(25)
    frame = tidy_frame(rng, 30, {"a": Sim()}, repeats=4)
    first = leaderboard(frame, "latency_s").loc["a"]
    again = leaderboard(frame, "latency_s").loc["a"]
    assert first["latency_s_p50"] == pytest.approx(np.percentile(frame["latency_s"], 50))
    assert first["latency_s_p50_ci_low"] < first["latency_s_p50"] < first["latency_s_p50_ci_high"]
    assert first["latency_s_p50_ci_low"] == again["latency_s_p50_ci_low"]  # seeded


def test_cost_per_1k_prompts() -> None:
    rng = np.random.default_rng(26)
    frame = tidy_frame(rng, 10, {"a": Sim(price=0.002), "b": Sim(price=0.0005)}, repeats=2)
    board = leaderboard(frame, "score_quality")
    for dep in ("a", "b"):
        expected = per_prompt(frame, dep, "cost").mean() * 1000
        assert board.loc[dep, "cost_per_1k_prompts"] == pytest.approx(expected)
    assert 2.0 <= board.loc["a", "cost_per_1k_prompts"] <= 2.2


def test_p50_interval_for_millions_of_rows_agrees_with_the_bootstrap(monkeypatch) -> None:
    # The out-of-core path (taken above LARGE_ROWS timed rows) on data small enough to check
    # against scipy's bootstrap over prompts: the same interval up to resampling noise.
    import compare.stats.ranking as ranking

    rng = np.random.default_rng(27)
    frame = tidy_frame(rng, 300, {"a": Sim()}, repeats=3)
    exact = leaderboard(frame, "latency_s").loc["a"]
    monkeypatch.setattr(ranking, "LARGE_ROWS", 100)
    large = leaderboard(frame, "latency_s").loc["a"]
    assert large["latency_s_p50"] == pytest.approx(exact["latency_s_p50"])
    width = exact["latency_s_p50_ci_high"] - exact["latency_s_p50_ci_low"]
    for end in ("latency_s_p50_ci_low", "latency_s_p50_ci_high"):
        assert abs(large[end] - exact[end]) < 0.25 * width, (end, large[end], exact[end])


def test_a_pass_rate_interval_with_repeats_stays_within_0_and_1() -> None:
    # Five prompts, two repeats: four always pass, one passes half the time. The t interval on
    # the per-prompt means (0.9 ± 2.776 × 0.1) reaches past 1; the board cuts it and says so.
    rows = [{"prompt_id": f"p{i}", "deployment": "a", "repeat": r, "status": "ok",
             "score_exact": 1.0 if i or r else 0.0} for i in range(5) for r in range(2)]
    board = leaderboard(pd.DataFrame(rows), "score_exact").loc["a"]
    t_low, t_high = stats.t.interval(0.95, 4, loc=0.9, scale=0.1)
    assert board["interval"] == "t" and t_high > 1
    assert board["ci_low"] == pytest.approx(t_low) and board["ci_high"] == 1.0
    assert "cut at [0, 1]" in board["note"]
