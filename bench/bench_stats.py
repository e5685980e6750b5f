"""Statistics at scale: how long leaderboard / compare / diff / Bradley–Terry take on a big run.

    .venv/bin/python bench/bench_stats.py [--prompts 2000] [--deployments 5] [--repeats 5] [--smoke]

A seeded synthetic tidy frame (prompts × deployments × repeats rows, a binary and a continuous
score, latency, cost, three prompt tags) and a judge frame (every pair of deployments on every
prompt) are built in memory; each call is timed once, wall clock, in this process (pinned to
core 1). Goal: a 50,000-row run's full `compare()` in under 5 s.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from _common import common_args, header, pin_self, results_path, table, write_section

from compare.stats import bradley_terry, compare, diff, leaderboard

GOAL_COMPARE_S = 5.0


def tidy(rng: np.random.Generator, prompts: int, deployments: int, repeats: int) -> pd.DataFrame:
    names = [f"model-{i}" for i in range(deployments)]
    difficulty = rng.normal(0, 1, prompts)
    tags = [["math"], ["code"], ["chat", "math"]]
    parts = []
    for d, name in enumerate(names):
        for rep in range(repeats):
            p_right = 1 / (1 + np.exp(-(0.2 * d + difficulty)))
            parts.append(pd.DataFrame({
                "prompt_id": [f"p{i}" for i in range(prompts)], "deployment": name,
                "repeat": rep, "status": "ok", "cached": False,
                "score_exact": (rng.random(prompts) < p_right).astype(float),
                "score_quality": 3 + 0.05 * d + 0.5 * difficulty + rng.normal(0, 0.3, prompts),
                "latency_s": np.exp(rng.normal(-0.2 + 0.05 * d, 0.4, prompts)),
                "ttft_s": np.exp(rng.normal(-1.5, 0.3, prompts)),
                "cost": 0.001 * (1 + d) * (1 + 0.1 * rng.random(prompts)),
                "tags": [tags[i % 3] for i in range(prompts)],
            }))
    return pd.concat(parts, ignore_index=True)


def judge(rng: np.random.Generator, frame: pd.DataFrame) -> pd.DataFrame:
    names = list(dict.fromkeys(frame["deployment"]))
    prompts = list(dict.fromkeys(frame["prompt_id"]))
    rows = []
    for a, b in itertools.combinations(names, 2):
        u = rng.random(len(prompts))
        winner = np.where(u < 0.45, "a", np.where(u < 0.9, "b", "tie"))
        rows.append(pd.DataFrame({"prompt_id": prompts, "repeat": 0, "a": a, "b": b,
                                  "winner": winner, "verdict_ab": "first",
                                  "verdict_ba": "second", "judge": "judge"}))
    return pd.concat(rows, ignore_index=True)


def timed(label: str, call: Callable[[], Any]) -> tuple[str, float, int]:
    start = time.perf_counter()
    out = call()
    return label, time.perf_counter() - start, len(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--deployments", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    common_args(parser)
    args = parser.parse_args()
    if args.smoke:
        args.prompts, args.deployments, args.repeats = 50, 3, 2
    pin_self()
    rng = np.random.default_rng(0)
    frame = tidy(rng, args.prompts, args.deployments, args.repeats)
    newer = frame.assign(latency_s=frame["latency_s"] * 1.05)
    judged = judge(rng, frame)
    rows = [
        timed("leaderboard(score_quality)", lambda: leaderboard(frame, "score_quality")),
        timed("compare() all pairs, 5 metrics", lambda: compare(frame)),
        timed("compare(baseline, by='tag')", lambda: compare(frame, baseline="model-0",
                                                             by="tag")),
        timed("compare(latency_s, test='bootstrap')",
              lambda: compare(frame, baseline="model-0", metrics="latency_s", test="bootstrap")),
        timed("diff(old, new)", lambda: diff(frame, newer)),
        timed("bradley_terry(judge), 1000 resamples", lambda: bradley_terry("judge", judged)),
    ]
    body = header("8. Statistics: time per call", args.smoke) + (
        f"\n{len(frame):,} rows ({args.prompts} prompts × {args.deployments} deployments × "
        f"{args.repeats} repeats); judge frame {len(judged):,} comparisons. "
        f"Goal: compare() of all pairs under {GOAL_COMPARE_S:.0f} s.\n\n")
    body += table(["call", "seconds", "rows out"], [list(r) for r in rows]) + "\n"
    print(body)
    compare_all = next(float(r[1]) for r in rows if r[0].startswith("compare("))
    goals = [{"goal": f"compare() of all pairs under {GOAL_COMPARE_S:.0f} s",
              "result": f"{compare_all:.2f} s", "met": compare_all < GOAL_COMPARE_S}]
    write_section("stats", body, results_path(args), None if args.smoke else goals)


if __name__ == "__main__":
    main()
