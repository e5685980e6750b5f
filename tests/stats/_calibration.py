"""Simulated paired evaluations with a known truth, for calibrating compare()'s tests.

Each scenario draws `reps` evaluations of `n` prompts at once (arrays reps × n of per-prompt
values of a and b). Every prompt has a latent difficulty both deployments share, so the pairs are
correlated as in real evaluations. Under `null=True` the two deployments are exchangeable (the
same process); otherwise b is better by a fixed amount and `truth` is the mean difference b − a,
measured on one very large draw.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit

from compare.stats.metrics import Kind, MetricInfo

Draw = Callable[[np.random.Generator, int, int, bool], tuple[np.ndarray, np.ndarray]]
TRUTH_DRAW = 2_000_000


def _binary(rate_a: float, rate_b: float, repeats: int) -> Draw:
    def draw(rng: np.random.Generator, reps: int, n: int, null: bool) -> tuple[np.ndarray, ...]:
        difficulty = rng.normal(0.0, 1.0, (reps, n, 1))
        shapes = (reps, n, repeats)
        x_a = rng.random(shapes) < expit(logit(rate_a) + difficulty)
        x_b = rng.random(shapes) < expit(logit(rate_a if null else rate_b) + difficulty)
        return x_a.mean(axis=2), x_b.mean(axis=2)
    return draw


def _continuous(noise: Callable[[np.random.Generator, tuple[int, ...]], np.ndarray],
                shift: float, repeats: int, grades: bool = False) -> Draw:
    def draw(rng: np.random.Generator, reps: int, n: int, null: bool) -> tuple[np.ndarray, ...]:
        level = rng.normal(0.0, 1.0, (reps, n, 1))
        shapes = (reps, n, repeats)
        x_a = level + noise(rng, shapes)
        x_b = level + noise(rng, shapes) + (0.0 if null else shift)
        if grades:  # judge grades 1–5: many ties
            x_a, x_b = (np.clip(np.round(3 + x), 1, 5) for x in (x_a, x_b))
        return x_a.mean(axis=2), x_b.mean(axis=2)
    return draw


def _lognormal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.lognormal(0.0, 1.0, shape) - np.exp(0.5)  # skewed, mean 0


def _t3(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_t(3, shape)  # heavy tails, mean 0


def _normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.normal(0.0, 0.8, shape)


def _latency(ratio: float, repeats: int) -> Draw:
    def draw(rng: np.random.Generator, reps: int, n: int, null: bool) -> tuple[np.ndarray, ...]:
        speed = rng.normal(0.0, 0.5, (reps, n, 1))
        shapes = (reps, n, repeats)
        x_a = np.exp(speed + rng.normal(0.0, 0.4, shapes))
        x_b = np.exp(speed + rng.normal(0.0, 0.4, shapes) + (0.0 if null else np.log(ratio)))
        return np.median(x_a, axis=2), np.median(x_b, axis=2)
    return draw


@dataclass(frozen=True)
class Scenario:
    """One kind of evaluation: how values are drawn and how compare() reads them."""

    name: str
    kind: Kind
    repeats: int
    draw: Draw

    @property
    def info(self) -> MetricInfo:
        return MetricInfo("latency_s" if self.kind == "latency" else f"score_{self.name}",
                          self.kind, self.kind != "latency")

    def truth(self) -> float:
        """Mean difference b − a (log ratio for latency-like) under the alternative."""
        x_a, x_b = self.draw(np.random.default_rng(0), 1, TRUTH_DRAW, False)
        if self.kind == "latency":
            return float(np.mean(np.log(x_b) - np.log(x_a)))
        return float(np.mean(x_b - x_a))


SCENARIOS = (
    Scenario("pass_50_60", "binary", 1, _binary(0.5, 0.6, 1)),
    Scenario("pass_80_90", "binary", 1, _binary(0.8, 0.9, 1)),
    Scenario("pass_90_95", "binary", 1, _binary(0.9, 0.95, 1)),
    Scenario("pass_95_97", "binary", 1, _binary(0.95, 0.97, 1)),
    Scenario("pass_80_90_x3", "binary", 3, _binary(0.8, 0.9, 3)),
    Scenario("lognormal", "continuous", 1, _continuous(_lognormal, 0.3, 1)),
    Scenario("t3", "continuous", 1, _continuous(_t3, 0.3, 1)),
    Scenario("normal_x3", "continuous", 3, _continuous(_normal, 0.3, 3)),
    Scenario("grade", "ordinal", 1, _continuous(_normal, 0.4, 1, grades=True)),
    Scenario("grade_x3", "ordinal", 3, _continuous(_normal, 0.4, 3, grades=True)),
    Scenario("latency", "latency", 1, _latency(1.2, 1)),
)
