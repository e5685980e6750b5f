"""power(): how many prompts it takes to detect a difference, and what the prompts at hand detect.

Based on the paired t test (statsmodels `TTestPower`) with the standard deviation of the paired
per-prompt differences measured in the results. For latency-like metrics the differences are
log(b) − log(a) and `delta` is a ratio b/a (1.1 = 10 % slower); otherwise `delta` is b − a in the
metric's units. For a binary metric with one repeat (compared with McNemar's exact test) the
t-based answer is a close approximation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.power import TTestPower

from compare.errors import ConfigError
from compare.stats.comparison import check_alpha, choose_pairs
from compare.stats.frames import check_frame, deployments_of, pair, prompt_table
from compare.stats.metrics import metric_info


@dataclass(frozen=True)
class PowerResult:
    """Prompts needed for `delta` at `power`, and the effect detectable with `n_prompts`."""

    a: str
    b: str
    metric: str
    delta: float  # b − a, or the ratio b/a for latency-like metrics
    scale: str  # "difference" or "ratio"
    alpha: float
    power: float
    sd_diff: float  # of the paired per-prompt differences (log differences for ratios)
    n_prompts: int  # paired prompts at hand
    n_needed: int  # paired prompts to reach `power` for `delta`
    power_at_n: float  # power for `delta` with the prompts at hand
    min_detectable: float  # smallest |b − a| (or ratio ≥ 1) detectable at `power` with n_prompts

    def __str__(self) -> str:
        what = f"ratio {self.b}/{self.a} = {self.delta:g}" if self.scale == "ratio" else (
            f"{self.b} − {self.a} = {self.delta:g}")
        return (
            f"To detect {what} on {self.metric} with {self.power:.0%} power at alpha "
            f"{self.alpha:g} (sd of paired differences {self.sd_diff:.3g}): {self.n_needed} "
            f"prompts needed; {self.n_prompts} at hand give {self.power_at_n:.0%} power. "
            f"With {self.n_prompts} prompts the smallest detectable "
            f"{'ratio' if self.scale == 'ratio' else 'difference'} is {self.min_detectable:.4g}."
        )

    def __repr__(self) -> str:
        return f"PowerResult({self})"


def _effect(delta: float, latency_like: bool, metric: str) -> float:
    if latency_like:
        if not delta > 0 or delta == 1:
            raise ConfigError(
                f"delta={delta!r}: for {metric} delta is a ratio b/a, e.g. 1.1 for 10 % slower "
                "or 0.9 for 10 % faster (not 1, not ≤ 0)",
                field="delta",
            )
        return abs(math.log(delta))
    if delta == 0 or not math.isfinite(delta):
        raise ConfigError(f"delta={delta!r}: give the difference b − a to detect (≠ 0)",
                          field="delta")
    return abs(delta)


def power(
    frame: pd.DataFrame,
    a: str,
    b: str,
    metric: str,
    delta: float,
    power: float = 0.8,
    alpha: float = 0.05,
    *,
    scorers: Mapping[str, Any] | None = None,
    order: Sequence[str] | None = None,
) -> PowerResult:
    """Prompts needed to detect `delta` between a and b on `metric`, and the power at hand."""
    check_frame(frame)
    check_alpha(alpha)
    if not 0 < power < 1:
        raise ConfigError(f"power={power!r} must be between 0 and 1 (e.g. 0.8)", field="power")
    choose_pairs(deployments_of(frame, order), a, b, None)
    info = metric_info(frame, metric, scorers)
    paired = pair(prompt_table(frame, info), a, b)
    if info.latency_like and ((paired.x_a <= 0).any() or (paired.x_b <= 0).any()):
        raise ConfigError(f"{metric} has values ≤ 0: no ratio, so no power on the ratio scale")
    diffs = (np.log(paired.x_b) - np.log(paired.x_a) if info.latency_like
             else paired.x_b - paired.x_a)
    n = len(diffs)
    sd = float(diffs.std(ddof=1)) if n > 1 else math.nan
    if not sd > 0:
        raise ConfigError(
            f"power needs the spread of paired differences of {metric} between {a} and {b}: "
            f"{n} paired prompt(s)" + (", all with the same difference" if n > 1 else "")
            + "; run more prompts (a pilot of 20 or more) first",
            field="metric",
        )
    effect = _effect(delta, info.latency_like, metric) / sd
    analysis = TTestPower()
    needed = analysis.solve_power(effect_size=effect, alpha=alpha, power=power,
                                  alternative="two-sided")
    at_n = analysis.power(effect_size=effect, nobs=n, alpha=alpha, alternative="two-sided")
    detectable = analysis.solve_power(nobs=n, alpha=alpha, power=power,
                                      alternative="two-sided") * sd
    return PowerResult(
        a=a, b=b, metric=metric, delta=float(delta),
        scale="ratio" if info.latency_like else "difference", alpha=alpha, power=power,
        sd_diff=sd, n_prompts=n, n_needed=max(2, math.ceil(float(np.squeeze(needed)))),
        power_at_n=float(np.squeeze(at_n)),
        min_detectable=float(math.exp(detectable) if info.latency_like else detectable),
    )
