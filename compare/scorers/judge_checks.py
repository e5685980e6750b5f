"""Two checks on a judge that need no people: length bias and position consistency.

Length bias: Spearman's rank correlation (scipy) of a judge's grades with the length of the
answers it graded: judges are known to prefer longer answers, and a strong correlation on a set
where length should not matter is a warning. Position consistency: the share of pairs whose
pairwise verdict survives swapping the two answers (A first, then B first), with an exact
binomial interval; 1.0 is a judge that reads the answers, not their order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

_SWAPPED = {"first": "second", "second": "first", "tie": "tie"}


def length_bias(values: np.ndarray, outputs: Sequence[str]) -> dict[str, Any]:
    """Spearman's rho (and its p-value) of grades against answer length in characters, over
    the rows that have a grade."""
    grades = np.asarray(values, dtype=float)
    lengths = np.array([len(o or "") for o in outputs], dtype=float)
    keep = ~np.isnan(grades)
    n = int(keep.sum())
    if n < 3 or np.ptp(grades[keep]) == 0 or np.ptp(lengths[keep]) == 0:
        return {"spearman_rho": math.nan, "p_value": math.nan, "n": n}
    res = stats.spearmanr(grades[keep], lengths[keep])
    return {"spearman_rho": float(res.statistic), "p_value": float(res.pvalue), "n": n}


def position_consistency(pairs: pd.DataFrame | None) -> dict[str, Any]:
    """Share of pairs (both orders read) whose verdict is the same answer after the swap."""
    if pairs is None or not len(pairs):
        return {"share": math.nan, "n": 0, "ci_low": math.nan, "ci_high": math.nan}
    both = pairs.dropna(subset=["verdict_ab", "verdict_ba"])
    n = len(both)
    if n == 0:
        return {"share": math.nan, "n": 0, "ci_low": math.nan, "ci_high": math.nan}
    # Shown b first, a verdict of "second" names a: the same winner as "first" shown a first.
    same = int(sum(_SWAPPED.get(str(ab)) == str(ba)
                   for ab, ba in zip(both["verdict_ab"], both["verdict_ba"], strict=True)))
    ci = stats.binomtest(same, n).proportion_ci(confidence_level=0.95, method="exact")
    return {"share": same / n, "n": n, "ci_low": float(ci.low), "ci_high": float(ci.high)}
