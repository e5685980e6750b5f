"""Seeded synthetic tidy frames: prompts of varying difficulty answered by simulated deployments.

Each prompt has a latent difficulty shared by every deployment (that is what makes paired tests
worth it); each deployment adds its own accuracy, score shift and latency ratio.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
from scipy.special import expit, logit


@dataclass(frozen=True)
class Sim:
    """One simulated deployment."""

    accuracy: float = 0.7  # P(score_exact = 1) on a prompt of average difficulty
    shift: float = 0.0  # added to score_quality
    latency_ratio: float = 1.0  # multiplies latency (and ttft)
    price: float = 0.001  # cost per answer


@cache
def _prompt_ids(n: int) -> tuple[str, ...]:
    return tuple(f"p{i:03d}" for i in range(n))


def tidy_frame(
    rng: np.random.Generator,
    n_prompts: int,
    sims: Mapping[str, Sim],
    repeats: int = 1,
    *,
    noise: float = 0.3,
    tags: Sequence[Sequence[str]] | None = None,
) -> pd.DataFrame:
    """One row per (prompt, deployment, repeat), status ok, never cached."""
    difficulty = rng.normal(0.0, 1.0, n_prompts)
    speed = rng.normal(0.0, 0.5, n_prompts)
    parts = []
    for name, sim in sims.items():
        for rep in range(repeats):
            p_right = expit(logit(sim.accuracy) + difficulty)
            latency = np.exp(np.log(0.8) + speed + np.log(sim.latency_ratio)
                             + rng.normal(0.0, noise, n_prompts))
            part = pd.DataFrame({
                "prompt_id": _prompt_ids(n_prompts),
                "deployment": name,
                "repeat": rep,
                "status": "ok",
                "cached": False,
                "score_exact": (rng.random(n_prompts) < p_right).astype(float),
                "score_quality": 3.0 + sim.shift + 0.5 * difficulty
                + rng.normal(0.0, noise, n_prompts),
                "latency_s": latency,
                "ttft_s": latency * 0.2,
                "cost": sim.price * (1.0 + 0.1 * rng.random(n_prompts)),
            })
            if tags is not None:
                part["tags"] = [list(tags[i % len(tags)]) for i in range(n_prompts)]
            parts.append(part)
    return pd.concat(parts, ignore_index=True)


def per_prompt(frame: pd.DataFrame, deployment: str, metric: str, how: str = "mean") -> pd.Series:
    """The per-prompt aggregate a test expects, computed directly with pandas."""
    rows = frame[(frame["deployment"] == deployment) & (frame["status"] == "ok")]
    if metric in ("latency_s", "ttft_s"):
        rows = rows[~rows["cached"]]
    return rows.groupby("prompt_id")[metric].agg(how).dropna()
