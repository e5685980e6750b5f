"""The interval of a paired difference of proportions: Newcombe's hybrid score interval.

For one binary score per prompt the difference b − a of pass rates gets Newcombe's square-and-add
interval for paired data (Newcombe 1998, Statistics in Medicine 17:2635, method 10): the Wilson
score intervals of both rates (statsmodels `proportion_confint`) combined with the correlation of
the two rates, the φ of the 2 × 2 table with Newcombe's correction of positive φ by n/2. Its
coverage stays near the nominal level at the sizes evaluations have (tens of prompts, rates near
1), where an exact interval of the discordant share conditional on their number undercovers.
"""

from __future__ import annotations

import math

from statsmodels.stats.proportion import proportion_confint


def paired_difference_interval(
    both: int, b_only: int, a_only: int, neither: int, level: float
) -> tuple[float, float]:
    """Interval of p_b − p_a from the paired counts (both right, only b, only a, neither)."""
    n = both + b_only + a_only + neither
    right_b, right_a = both + b_only, both + a_only
    p_b, p_a = right_b / n, right_a / n
    low_b, high_b = proportion_confint(right_b, n, alpha=1 - level, method="wilson")
    low_a, high_a = proportion_confint(right_a, n, alpha=1 - level, method="wilson")
    margins = right_b * (n - right_b) * right_a * (n - right_a)
    phi = 0.0
    if margins > 0:
        cross = both * neither - b_only * a_only
        # Newcombe's correction: a positive association is shrunk by n/2 before it narrows.
        cross = cross - n / 2 if cross > n / 2 else (0.0 if cross >= 0 else cross)
        phi = cross / math.sqrt(margins)
    estimate = p_b - p_a
    below = math.sqrt(max(0.0, (p_b - low_b) ** 2 - 2 * phi * (p_b - low_b) * (high_a - p_a)
                          + (high_a - p_a) ** 2))
    above = math.sqrt(max(0.0, (high_b - p_b) ** 2 - 2 * phi * (high_b - p_b) * (p_a - low_a)
                          + (p_a - low_a) ** 2))
    return max(-1.0, estimate - below), min(1.0, estimate + above)

