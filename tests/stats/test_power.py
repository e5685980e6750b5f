"""power(): statsmodels TTestPower on the sd of the paired per-prompt differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats.power import TTestPower

from compare.stats.sample_size import PowerResult, power
from tests.stats._synth import Sim, per_prompt, tidy_frame


def test_difference_scale_against_ttestpower() -> None:
    frame = tidy_frame(np.random.default_rng(31), 50, {"a": Sim(), "b": Sim(shift=0.05)},
                       repeats=2)
    result = power(frame, "a", "b", "score_quality", 0.1, power=0.9, alpha=0.01)
    d = per_prompt(frame, "b", "score_quality") - per_prompt(frame, "a", "score_quality")
    sd = d.std(ddof=1)
    analysis = TTestPower()
    needed = analysis.solve_power(effect_size=0.1 / sd, alpha=0.01, power=0.9)
    assert isinstance(result, PowerResult) and result.scale == "difference"
    assert result.sd_diff == pytest.approx(sd) and result.n_prompts == 50
    assert result.n_needed == math.ceil(needed)
    assert result.power_at_n == pytest.approx(analysis.power(0.1 / sd, 50, 0.01))
    assert result.min_detectable == pytest.approx(
        analysis.solve_power(nobs=50, alpha=0.01, power=0.9) * sd)
    text = str(result)
    assert f"{result.n_needed} prompts needed" in text and "b − a = 0.1" in text
    assert repr(result).startswith("PowerResult(To detect")


def test_ratio_scale_for_latency() -> None:
    frame = tidy_frame(np.random.default_rng(32), 40, {"a": Sim(), "b": Sim(latency_ratio=1.1)})
    result = power(frame, "a", "b", "latency_s", 1.2)
    logs = np.log(per_prompt(frame, "b", "latency_s")) - np.log(per_prompt(frame, "a",
                                                                             "latency_s"))
    sd = logs.std(ddof=1)
    effect = math.log(1.2) / sd
    assert result.scale == "ratio" and result.sd_diff == pytest.approx(sd)
    assert result.n_needed == math.ceil(TTestPower().solve_power(effect, alpha=0.05, power=0.8))
    detectable = TTestPower().solve_power(nobs=40, alpha=0.05, power=0.8) * sd
    assert result.min_detectable == pytest.approx(math.exp(detectable))
    # A 20 % slowdown and a 1/1.2 speed-up are the same distance on the log scale.
    faster = power(frame, "a", "b", "latency_s", 1 / 1.2)
    assert faster.n_needed == result.n_needed
    assert "ratio b/a = 1.2" in str(result) and "smallest detectable ratio" in str(result)
