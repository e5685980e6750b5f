"""One paired comparison of b against a on per-prompt values: the test, the interval, the p-value.

Which test (test="auto"):
- binary metric, one repeat per prompt: exact McNemar (`scipy.stats.binomtest` on the discordant
  pairs); the interval for b − a is Newcombe's hybrid score interval for paired proportions
  (`compare.stats.proportions`);
- continuous, or binary with repeats (per-prompt means are no longer 0/1): paired t
  (`scipy.stats.ttest_rel` and its `confidence_interval()`);
- ordinal: Wilcoxon signed-rank, its p-value from seeded sign flips of the signed-rank sum
  (`scipy.stats.permutation_test`, as `scipy.stats.wilcoxon(method=PermutationMethod())`; exact
  when 2^n ≤ N_RESAMPLES): tied grades make the normal approximation
  too sure at every n we measured (the interval is the paired t one);
- latency-like: paired t on log(b) − log(a) of per-prompt medians, reported as the ratio b/a with
  exp of its interval; `diff` and its interval stay in the metric's units (paired t on the raw
  medians) and describe the size in seconds or currency, the p-value is the log-ratio test's.
test="bootstrap": seeded BCa bootstrap (`scipy.stats.bootstrap`) interval of the mean difference
(log difference for latency-like) from BCA_MIN_N paired prompts on; below that BCa undercovers
(88–91 % at 10–20 prompts) and the interval is the paired t one (said in `note`). Its p-value is
the sign-flip permutation p (the share of the bootstrap distribution beyond zero is not a p-value
under the null: 9–11 % false positives at 10–20 prompts). test="permutation": paired (sign-flip)
`scipy.stats.permutation_test` of the mean difference; its interval is the paired t one.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Final

import numpy as np
from scipy import stats

from compare.errors import ConfigError
from compare.stats.frames import Paired
from compare.stats.metrics import MetricInfo
from compare.stats.proportions import paired_difference_interval

TESTS: Final = ("auto", "t", "mcnemar", "wilcoxon", "bootstrap", "permutation")
SEED: Final = 20241104  # fixed: the same data always gives the same resampled answer
N_RESAMPLES: Final = 4999
BCA_MIN_N: Final = 50  # measured: BCa's 95 % interval covers ≥ 94 % from here on
NAN = math.nan


def _descriptive(paired: Paired, info: MetricInfo) -> dict[str, Any]:
    diff = paired.x_b - paired.x_a
    better = diff > 0 if info.higher_is_better else diff < 0
    worse = diff < 0 if info.higher_is_better else diff > 0
    n = len(diff)
    return {
        "n_pairs": n,
        "mean_a": float(paired.x_a.mean()) if n else NAN,
        "mean_b": float(paired.x_b.mean()) if n else NAN,
        "diff": float(diff.mean()) if n else NAN,
        "se_diff": float(diff.std(ddof=1) / math.sqrt(n)) if n > 1 else NAN,
        "wins": int(better.sum()),
        "losses": int(worse.sum()),
        "ties": int((diff == 0).sum()),
    }


def _t_interval(x_b: np.ndarray, x_a: np.ndarray, level: float) -> dict[str, Any]:
    """Paired t: p-value and interval of the mean difference; all-equal pairs give p = 1."""
    d = x_b - x_a
    if np.ptp(d) == 0:
        # Zero variance: scipy's t is 0/0 (or ±inf); the data say exactly `d[0]`.
        p = 1.0 if d[0] == 0 else 0.0
        note = "all paired differences are equal; no spread to test against"
        return {"ci_low": float(d[0]), "ci_high": float(d[0]), "p_value": p, "note": note}
    res = stats.ttest_rel(x_b, x_a)
    ci = res.confidence_interval(confidence_level=level)
    return {"ci_low": float(ci.low), "ci_high": float(ci.high), "p_value": float(res.pvalue)}


def _mcnemar(paired: Paired, level: float) -> dict[str, Any]:
    b_only = int(((paired.x_b == 1) & (paired.x_a == 0)).sum())
    a_only = int(((paired.x_a == 1) & (paired.x_b == 0)).sum())
    discordant = a_only + b_only
    n = len(paired.x_a)
    both = int(((paired.x_b == 1) & (paired.x_a == 1)).sum())
    low, high = paired_difference_interval(both, b_only, a_only, n - both - discordant, level)
    if discordant == 0:
        # No discordant prompt is evidence of a small difference, not of none: keep the interval.
        return {"ci_low": low, "ci_high": high, "p_value": 1.0,
                "note": "no discordant prompts: both got every prompt equally right or wrong"}
    res = stats.binomtest(b_only, discordant, 0.5)
    return {"ci_low": low, "ci_high": high, "p_value": float(res.pvalue)}


def _wilcoxon(paired: Paired, level: float) -> dict[str, Any]:
    out = _t_interval(paired.x_b, paired.x_a, level)
    d = paired.x_b - paired.x_a
    if not np.any(d):
        out.update(p_value=1.0, note="all paired differences are zero")
        return out
    # The signed-rank sum under sign flips (zeros rank but add nothing): the p-value of
    # `stats.wilcoxon(method=PermutationMethod())`, through the vectorised permutation_test.
    ranks = stats.rankdata(np.abs(d))
    res = stats.permutation_test(
        (d,), lambda x, axis: np.sum(np.sign(x) * ranks, axis=axis), vectorized=True,
        permutation_type="samples", n_resamples=N_RESAMPLES, rng=np.random.default_rng(SEED))
    out["p_value"] = float(res.pvalue)
    out.setdefault("note", "interval: paired t")
    return out


def _bootstrap(d: np.ndarray, level: float) -> dict[str, Any]:
    if np.ptp(d) == 0:
        return {"ci_low": float(d[0]), "ci_high": float(d[0]), "p_value": 1.0 if d[0] == 0 else 0.0,
                "note": "all paired differences are equal; nothing to resample"}
    p = _sign_flip_p(d)
    if len(d) < BCA_MIN_N:
        out = _t_interval(d, np.zeros_like(d), level)
        return {**out, "p_value": p,
                "note": f"interval: paired t (BCa undercovers below {BCA_MIN_N} prompts); "
                        "p: sign-flip permutation"}
    res = stats.bootstrap((d,), np.mean, method="BCa", confidence_level=level,
                          n_resamples=N_RESAMPLES, random_state=np.random.default_rng(SEED))
    return {"ci_low": float(res.confidence_interval.low),
            "ci_high": float(res.confidence_interval.high), "p_value": p,
            "note": "p: sign-flip permutation"}


def _sign_flip_p(d: np.ndarray) -> float:
    """Two-sided p of the mean difference under sign flips (exact when 2^n ≤ N_RESAMPLES)."""
    res = stats.permutation_test(
        (d, np.zeros_like(d)), lambda u, v, axis: np.mean(u - v, axis=axis), vectorized=True,
        permutation_type="samples", n_resamples=N_RESAMPLES,
        random_state=np.random.default_rng(SEED))
    return float(res.pvalue)


def _permutation(x_b: np.ndarray, x_a: np.ndarray, level: float) -> dict[str, Any]:
    out = _t_interval(x_b, x_a, level)
    if np.ptp(x_b - x_a) == 0:
        return out
    out["p_value"] = _sign_flip_p(x_b - x_a)
    out["note"] = "interval: paired t"
    return out


def _on_scale(paired: Paired, scale: np.ndarray, test: str, level: float) -> dict[str, Any]:
    """The chosen resampling or t test on `scale` = per-prompt differences to test."""
    if test == "bootstrap":
        return _bootstrap(scale, level)
    x_b, x_a = scale, np.zeros_like(scale)
    return _permutation(x_b, x_a, level) if test == "permutation" else _t_interval(x_b, x_a, level)


def _latency(paired: Paired, test: str, level: float) -> dict[str, Any]:
    raw = _on_scale(paired, paired.x_b - paired.x_a, test, level)
    if (paired.x_a <= 0).any() or (paired.x_b <= 0).any():
        raw["note"] = "values ≤ 0: no ratio; tested the difference instead"
        return {**raw, "test": f"{_name(test, 'paired t')} (no log: values ≤ 0)"}
    logged = _on_scale(paired, np.log(paired.x_b) - np.log(paired.x_a), test, level)
    out = {**raw, "p_value": logged["p_value"], "test": _name(test, "log-ratio t")}
    out["ratio"] = float(np.exp(np.mean(np.log(paired.x_b) - np.log(paired.x_a))))
    out["ratio_ci_low"] = float(np.exp(logged["ci_low"]))
    out["ratio_ci_high"] = float(np.exp(logged["ci_high"]))
    notes = [n for n in (logged.get("note"), raw.get("note")) if n]
    if notes:
        out["note"] = notes[0]
    return out


def _name(test: str, auto: str) -> str:
    return {"bootstrap": "bootstrap BCa", "permutation": "permutation"}.get(test, auto)


def choose_test(info: MetricInfo, max_repeats: int, test: str) -> str:
    """The concrete test for `info` (latency-like metrics are named by `_latency`)."""
    if test not in TESTS:
        raise ConfigError(f"test={test!r}; choose one of {', '.join(TESTS)}", field="test")
    if test != "auto":
        if info.latency_like and test in ("mcnemar", "wilcoxon"):
            raise ConfigError(
                f"test={test!r} does not apply to {info.name}: latency-like metrics are compared "
                "as ratios with test='auto' (log-ratio t), 'bootstrap' or 'permutation'",
                field="test",
            )
        if test == "mcnemar" and (info.kind != "binary" or max_repeats > 1):
            raise ConfigError(
                f"test='mcnemar' needs a binary metric with one repeat per prompt; {info.name} is "
                f"{info.kind} with up to {max_repeats} repeats: use test='auto' or 't'",
                field="test",
            )
        return test
    if info.kind == "binary" and max_repeats <= 1:
        return "mcnemar"
    return "wilcoxon" if info.kind == "ordinal" else "t"


def compare_paired(
    paired: Paired, info: MetricInfo, *, test: str = "auto", level: float = 0.95
) -> dict[str, Any]:
    """Descriptive numbers, interval and p-value of b − a; degenerate input gives a `note`."""
    row = _descriptive(paired, info)
    chosen = choose_test(info, paired.max_repeats, test)
    latency = info.latency_like and chosen != "mcnemar"
    label = _name(chosen, "log-ratio t") if latency else _label(chosen)
    n = row["n_pairs"]
    if n == 0:
        return {**row, "test": label, "p_value": NAN, "note": "no prompt answered ok by both"}
    if n < 2 and chosen != "mcnemar":
        return {**row, "test": label, "p_value": NAN,
                "note": "1 paired prompt: need at least 2 for an interval"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if latency:
            return {**row, **_latency(paired, chosen, level)}
        if chosen == "mcnemar":
            out = {**row, "test": label, **_mcnemar(paired, level)}
            if n < 2:
                out["note"] = "1 paired prompt: a test cannot find anything with so little data"
            return out
        d = paired.x_b - paired.x_a
        result = {
            "t": lambda: _t_interval(paired.x_b, paired.x_a, level),
            "wilcoxon": lambda: _wilcoxon(paired, level),
            "bootstrap": lambda: _bootstrap(d, level),
            "permutation": lambda: _permutation(paired.x_b, paired.x_a, level),
        }[chosen]()
    return {**row, "test": label, **result}


def _label(test: str) -> str:
    names = {"t": "paired t", "wilcoxon": "Wilcoxon signed-rank", "mcnemar": "McNemar exact"}
    return names.get(test, _name(test, test))
