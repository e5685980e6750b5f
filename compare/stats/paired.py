"""One paired comparison of b against a on per-prompt values: the test, the interval, the p-value.

Which test (test="auto"):
- binary metric, one repeat per prompt: exact McNemar (`scipy.stats.binomtest` on the discordant
  pairs); the interval for b − a is the exact (Clopper–Pearson) interval of the discordant share,
  conditional on the number of discordant pairs: (n_disc / n)·(2·CI − 1);
- continuous, or binary with repeats (per-prompt means are no longer 0/1): paired t
  (`scipy.stats.ttest_rel` and its `confidence_interval()`);
- ordinal: Wilcoxon signed-rank with `zero_method="zsplit"` (the interval is the paired t one);
- latency-like: paired t on log(b) − log(a) of per-prompt medians, reported as the ratio b/a with
  exp of its interval; `diff` and its interval stay in the metric's units (paired t on the raw
  medians) and describe the size in seconds or currency, the p-value is the log-ratio test's.
test="bootstrap": seeded BCa bootstrap (`scipy.stats.bootstrap`) of the mean difference (log
difference for latency-like), p-value = twice the smaller share of the bootstrap distribution on
either side of zero. test="permutation": paired (sign-flip) `scipy.stats.permutation_test` of the
mean difference; its interval is the paired t one.
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

TESTS: Final = ("auto", "t", "mcnemar", "wilcoxon", "bootstrap", "permutation")
SEED: Final = 20241104  # fixed: the same data always gives the same resampled answer
N_RESAMPLES: Final = 4999
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
    if discordant == 0:
        return {"ci_low": 0.0, "ci_high": 0.0, "p_value": 1.0,
                "note": "no discordant prompts: both got every prompt equally right or wrong"}
    res = stats.binomtest(b_only, discordant, 0.5)
    ci = res.proportion_ci(confidence_level=level, method="exact")
    share = discordant / n
    return {"ci_low": share * (2 * ci.low - 1), "ci_high": share * (2 * ci.high - 1),
            "p_value": float(res.pvalue)}


def _wilcoxon(paired: Paired, level: float) -> dict[str, Any]:
    out = _t_interval(paired.x_b, paired.x_a, level)
    d = paired.x_b - paired.x_a
    if not np.any(d):
        out.update(p_value=1.0, note="all paired differences are zero")
        return out
    res = stats.wilcoxon(paired.x_b, paired.x_a, zero_method="zsplit")
    out["p_value"] = float(res.pvalue)
    out.setdefault("note", "interval: paired t")
    return out


def _bootstrap(d: np.ndarray, level: float) -> dict[str, Any]:
    if np.ptp(d) == 0:
        return {"ci_low": float(d[0]), "ci_high": float(d[0]), "p_value": 1.0 if d[0] == 0 else 0.0,
                "note": "all paired differences are equal; nothing to resample"}
    res = stats.bootstrap((d,), np.mean, method="BCa", confidence_level=level,
                          n_resamples=N_RESAMPLES, random_state=np.random.default_rng(SEED))
    dist = res.bootstrap_distribution
    p = min(1.0, 2 * min(float(np.mean(dist <= 0)), float(np.mean(dist >= 0))))
    return {"ci_low": float(res.confidence_interval.low),
            "ci_high": float(res.confidence_interval.high), "p_value": p}


def _permutation(x_b: np.ndarray, x_a: np.ndarray, level: float) -> dict[str, Any]:
    out = _t_interval(x_b, x_a, level)
    if np.ptp(x_b - x_a) == 0:
        return out
    res = stats.permutation_test(
        (x_b, x_a), lambda u, v, axis: np.mean(u - v, axis=axis), vectorized=True,
        permutation_type="samples", n_resamples=N_RESAMPLES,
        random_state=np.random.default_rng(SEED))
    out["p_value"] = float(res.pvalue)
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
