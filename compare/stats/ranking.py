"""leaderboard(): per deployment, the mean of a metric with its interval, rank, p50 latency, cost.

Each prompt is a cluster: its repeats become one value (mean; median of timed rows for
latency-like metrics), the mean is over prompts and `se` is the standard deviation of the
per-prompt values / √n_prompts with a t interval on n_prompts − 1 degrees of freedom — on balanced
data exactly the cluster-robust (by prompt) standard error and interval of an intercept-only OLS.
A binary metric with one repeat per prompt gets the Wilson score interval instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from compare.errors import ConfigError
from compare.stats.frames import check_frame, deployments_of, prompt_table, usable_mask
from compare.stats.metrics import MetricInfo, metric_info

P50_RESAMPLES: Final = 1000
# Above this many timed rows in one deployment the p50 interval is resampled out of arrays the
# size of the rows (`_p50_interval_large`): scipy's vectorised bootstrap would hold batch × rows
# floats and, at 1000 resamples of 100,000 rows, take ~5 s per deployment.
LARGE_ROWS: Final = 50_000
# Resamples × rows stays under this budget (~1 s per deployment), between 200 and 1000 resamples.
RESAMPLE_BUDGET: Final = 100_000_000
P50_RESAMPLES_LARGE: Final = 200
SEED: Final = 20241104
COLUMNS: Final = (
    "n_prompts", "n_obs", "mean", "se", "ci_low", "ci_high", "interval", "rank",
    "latency_s_p50", "latency_s_p50_ci_low", "latency_s_p50_ci_high", "cost_per_1k_prompts", "note",
)


def mean_interval(
    values: np.ndarray, level: float, *, wilson: bool = False
) -> dict[str, Any]:
    """Mean of per-prompt values, its standard error and interval (t, or Wilson for 0/1)."""
    n = len(values)
    if n == 0:
        return {"mean": math.nan, "se": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                "interval": "", "note": "no usable rows"}
    mean = float(values.mean())
    if wilson:
        low, high = proportion_confint(int(values.sum()), n, alpha=1 - level, method="wilson")
        se = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
        return {"mean": mean, "se": se, "ci_low": float(low), "ci_high": float(high),
                "interval": "Wilson", "note": ""}
    if n < 2:
        return {"mean": mean, "se": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                "interval": "t", "note": "1 prompt: need at least 2 for an interval"}
    se = float(values.std(ddof=1) / math.sqrt(n))
    if se == 0:
        return {"mean": mean, "se": 0.0, "ci_low": mean, "ci_high": mean, "interval": "t",
                "note": "every prompt has the same value"}
    low, high = stats.t.interval(level, n - 1, loc=mean, scale=se)
    return {"mean": mean, "se": se, "ci_low": float(low), "ci_high": float(high),
            "interval": "t", "note": ""}


def _padded(rows: pd.DataFrame, column: str) -> np.ndarray:
    """Prompts × repeats matrix of `column` (NaN-padded) for resampling whole prompts."""
    groups = [g.to_numpy(dtype=float) for _, g in rows.groupby("prompt_id", sort=False)[column]]
    width = max((len(g) for g in groups), default=0)
    out = np.full((len(groups), width), np.nan)
    for i, g in enumerate(groups):
        out[i, : len(g)] = g
    return out


def p50_interval(rows: pd.DataFrame, level: float) -> tuple[float, float, float]:
    """p50 of the timed rows' latency_s and a seeded percentile bootstrap interval over prompts.

    Whole prompts are resampled (`scipy.stats.bootstrap` on prompt indices) because repeats of
    one prompt are not independent of each other.
    """
    if rows["latency_s"].notna().sum() > LARGE_ROWS:
        return _p50_interval_large(rows, level)
    padded = _padded(rows, "latency_s")
    if padded.size == 0:
        return math.nan, math.nan, math.nan
    p50 = float(np.nanpercentile(padded, 50))
    if len(padded) < 2:
        return p50, math.nan, math.nan

    # nanpercentile is many times slower than percentile: use it only when repeats differ.
    percentile = np.nanpercentile if np.isnan(padded).any() else np.percentile

    def statistic(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        chosen = padded[idx.astype(int)]
        return percentile(chosen.reshape(*chosen.shape[:-2], -1), 50, axis=-1)

    res = stats.bootstrap(
        (np.arange(len(padded)),), statistic, vectorized=True, method="percentile",
        confidence_level=level, n_resamples=P50_RESAMPLES, batch=200,
        random_state=np.random.default_rng(SEED),
    )
    return p50, float(res.confidence_interval.low), float(res.confidence_interval.high)


def _p50_interval_large(rows: pd.DataFrame, level: float) -> tuple[float, float, float]:
    """The same interval (whole prompts resampled, percentile method) for millions of rows:
    values sorted once; each resample weighs every value by how often its prompt was drawn
    and takes the weighted median from the cumulative weights — memory linear in the rows,
    P50_RESAMPLES_LARGE to P50_RESAMPLES resamples (fewer the more rows), seeded."""
    timed = rows[rows["latency_s"].notna()]
    values = timed["latency_s"].to_numpy(dtype=float)
    codes, uniques = pd.factorize(timed["prompt_id"])
    order = np.argsort(values, kind="stable")
    values, codes = values[order], codes[order]
    rng = np.random.default_rng(SEED)
    n_prompts = len(uniques)
    resamples = min(P50_RESAMPLES, max(P50_RESAMPLES_LARGE, RESAMPLE_BUDGET // len(values)))
    medians = np.empty(resamples)
    for i in range(resamples):
        drawn = np.bincount(rng.integers(0, n_prompts, n_prompts), minlength=n_prompts)
        cumulative = np.cumsum(drawn[codes])
        medians[i] = values[np.searchsorted(cumulative, cumulative[-1] / 2.0)]
    tail = (1 - level) / 2
    low, high = np.quantile(medians, [tail, 1 - tail])
    return float(np.percentile(values, 50)), float(low), float(high)


def _extras(frame: pd.DataFrame, deployment: str, level: float) -> dict[str, float]:
    rows = frame[frame["deployment"] == deployment]
    out = dict.fromkeys(COLUMNS[8:12], math.nan)
    if "latency_s" in frame.columns:
        timed = rows[usable_mask(rows, MetricInfo("latency_s", "latency", False))]
        p50, low, high = p50_interval(timed, level)
        out.update(latency_s_p50=p50, latency_s_p50_ci_low=low, latency_s_p50_ci_high=high)
    if "cost" in frame.columns:
        costs = rows[(rows["status"] == "ok") & rows["cost"].notna()]
        per_prompt = costs.groupby("prompt_id", sort=False)["cost"].mean()
        if len(per_prompt):
            out["cost_per_1k_prompts"] = float(per_prompt.mean() * 1000)
    return out


def _clip_to_proportion(row: dict[str, Any]) -> None:
    """A pass rate's t interval (repeats averaged per prompt) can reach past 0 or 1 with few
    prompts near either end: a rate outside [0, 1] is impossible, so the ends are cut there."""
    low, high = row["ci_low"], row["ci_high"]
    if math.isnan(low) or (low >= 0.0 and high <= 1.0):
        return
    row["ci_low"], row["ci_high"] = max(low, 0.0), min(high, 1.0)
    row["note"] = "; ".join(filter(None, [row.get("note"), "t interval cut at [0, 1]"]))


def _rank(board: pd.DataFrame, info: MetricInfo) -> pd.Series:
    return board["mean"].rank(ascending=not info.higher_is_better, method="min")


def leaderboard(
    frame: pd.DataFrame,
    metric: str,
    level: float = 0.95,
    *,
    scorers: Mapping[str, Any] | None = None,
    order: Sequence[str] | None = None,
    extras: bool = True,
    info: MetricInfo | None = None,
) -> pd.DataFrame:
    """One row per deployment (the index): n_prompts, n_obs, mean, se, ci_low, ci_high, rank.

    Also `interval` ('t' or 'Wilson'), `latency_s_p50` of the timed rows (status ok, not cached)
    with a seeded percentile bootstrap interval over prompts (`latency_s_p50_ci_low/high`),
    `cost_per_1k_prompts` (mean cost per prompt of ok rows × 1000) and `note` (why a number is
    missing). Rank 1 is the best mean, respecting the metric's direction. `extras=False` skips
    the p50 and cost columns (charts that need only the mean and its interval). `info` fixes
    the metric's kind and direction when `frame` is a part of the data (one deployment's rows).
    """
    check_frame(frame)
    if not 0 < level < 1:
        raise ConfigError(f"level={level!r} must be between 0 and 1 (e.g. 0.95)", field="level")
    info = info or metric_info(frame, metric, scorers)
    table = prompt_table(frame, info)
    rows = []
    for dep in deployments_of(frame, order):
        values = table.values[dep].dropna() if dep in table.values.columns else pd.Series()
        counts = table.counts[dep].dropna() if dep in table.counts.columns else pd.Series()
        wilson = info.kind == "binary" and len(counts) > 0 and counts.max() == 1
        row = {"deployment": dep, "n_prompts": len(values), "n_obs": int(counts.sum())}
        row.update(mean_interval(values.to_numpy(dtype=float), level, wilson=wilson))
        if info.kind == "binary" and not wilson:
            _clip_to_proportion(row)
        if not len(values):
            statuses = frame.loc[frame["deployment"] == dep, "status"].value_counts()
            row["note"] = f"no usable {metric} rows (statuses: " + ", ".join(
                f"{s}×{n}" for s, n in statuses.items()) + ")"
        if extras:
            row.update(_extras(frame, dep, level))
        rows.append(row)
    return ranked(pd.DataFrame(rows).set_index("deployment"), info, level)


def ranked(board: pd.DataFrame, info: MetricInfo, level: float) -> pd.DataFrame:
    """Leaderboard rows (one per deployment, from one frame or several) ranked and labelled."""
    board = board.copy()
    board["rank"] = _rank(board, info)
    board.attrs.update(metric=info.name, level=level, kind=info.kind,
                       higher_is_better=info.higher_is_better)
    return board[[c for c in COLUMNS if c in board.columns]]
