"""One word per comparison row: better, worse, equivalent, inconclusive or too_few.

As a run comparison in Azure AI Foundry reports Improved / Degraded / Inconclusive /
TooFewSamples: `better` / `worse` when b differs significantly from a after Holm's adjustment
(direction by the metric's `higher_is_better`; latency-like rows by the ratio), `equivalent` when
a `margin` is given and the whole interval lies inside ±margin (for latency-like rows the ratio's
interval inside [1 − margin, 1 + margin]), `too_few` when there is no p-value or fewer paired
prompts than the test needs to ever reach `alpha`, else `inconclusive`.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import pandas as pd

from compare.errors import ConfigError

VERDICTS: Final = ("better", "worse", "equivalent", "inconclusive", "too_few")
# Tests whose p-value is a count of sign patterns (or discordant pairs): with n pairs the
# smallest two-sided p is 2 / 2^n, so fewer than log2(2 / alpha) pairs can never be significant.
DISCRETE: Final = ("McNemar", "Wilcoxon", "permutation", "bootstrap")


def check_margin(margin: float | None) -> None:
    if margin is not None and not (math.isfinite(margin) and margin > 0):
        raise ConfigError(
            f"margin={margin!r} must be a positive number: the largest difference b − a that "
            "counts as no difference (for latency-like metrics a fraction of the ratio, 0.1 = "
            "within ±10 %)",
            field="margin",
        )


def min_pairs(test: str, alpha: float) -> int:
    """The fewest paired prompts with which `test` can give p < alpha."""
    if any(str(test).startswith(name) for name in DISCRETE):
        return math.ceil(math.log2(2 / alpha))
    return 2


def verdicts(rows: pd.DataFrame, alpha: float, margin: float | None) -> pd.Series:
    """The verdict of each row of a compare() table (columns diff, ci_*, ratio*, significant)."""
    ratio = rows["ratio"] if "ratio" in rows.columns else pd.Series(np.nan, index=rows.index)
    by_ratio = ratio.notna()
    effect = (np.log(ratio.where(by_ratio, 1.0)).where(by_ratio, rows["diff"]))
    up = effect.gt(0)
    b_better = up.where(rows["higher_is_better"].astype(bool), effect.lt(0))
    out = pd.Series("inconclusive", index=rows.index, dtype=object)
    if margin is not None:
        low = rows["ratio_ci_low"].where(by_ratio, rows["ci_low"]) if by_ratio.any() \
            else rows["ci_low"]
        high = rows["ratio_ci_high"].where(by_ratio, rows["ci_high"]) if by_ratio.any() \
            else rows["ci_high"]
        centre = by_ratio.astype(float)  # 1 for ratios, 0 for differences
        inside = (low - centre).ge(-margin) & (high - centre).le(margin)
        out[inside] = "equivalent"
    significant = rows["significant"].astype(bool)
    out[significant & b_better] = "better"
    out[significant & ~b_better] = "worse"
    needed = rows["test"].map(lambda t: min_pairs(t, alpha))
    out[rows["p_value"].isna() | rows["n_pairs"].lt(needed)] = "too_few"
    return out
