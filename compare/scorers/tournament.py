"""Running a pairwise scorer over a frame: every pair of deployments per (prompt, repeat).

Deployments are paired in the order they first appear in the frame (the run order), a before b.
Each record's score is the mean over the other deployments of win 1 / tie 0.5 / loss 0, over
the pairs that have a winner; NaN when none does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pandas as pd

from compare.errors import ConfigError
from compare.scorers.pairwise import PAIRS_COLUMNS, PairVerdict, PairwiseScorer
from compare.scorers.rows import FrameRows

POINTS = {"a": (1.0, 0.0), "b": (0.0, 1.0), "tie": (0.5, 0.5)}


def pair_plan(rows: FrameRows) -> list[tuple[int, int]]:
    """(row of a, row of b) for every pair of deployments answering the same prompt and repeat.

    Raises ConfigError when a (prompt, deployment, repeat) appears twice: it could not be known
    which answer to compare.
    """
    order = {d: i for i, d in enumerate(dict.fromkeys(rows.deployments))}
    groups: dict[tuple[str, int], dict[str, int]] = defaultdict(dict)
    for i, (pid, dep, rep) in enumerate(zip(rows.prompt_ids, rows.deployments, rows.repeats,
                                            strict=True)):
        group = groups[(pid, rep)]
        if dep in group:
            raise ConfigError(
                f"the frame has two rows for prompt {pid!r}, deployment {dep!r}, repeat {rep}; "
                "pairwise scoring needs one answer per (prompt, deployment, repeat)",
                field="frame",
            )
        group[dep] = i
    plan = []
    for group in groups.values():
        members = sorted(group.items(), key=lambda item: order[item[0]])
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                plan.append((members[x][1], members[y][1]))
    return plan


async def run_pairwise(
    scorer: PairwiseScorer, rows: FrameRows, ctx: Any, concurrency: int
) -> tuple[np.ndarray, list[str | None], pd.DataFrame]:
    """Per-row values, per-row summaries, and the pairs frame."""
    from compare.scorers.engine import run_bounded

    plan = pair_plan(rows)
    verdicts: list[PairVerdict | None] = [None] * len(plan)

    def job(k: int) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            i, j = plan[k]
            verdicts[k] = await scorer.compare(rows.prompts[i], rows.view(i), rows.view(j), ctx)
        return run

    # Each job makes two judge calls: half as many jobs in flight keeps `concurrency` calls.
    await run_bounded((job(k) for k in range(len(plan))), max(1, concurrency // 2))
    return (*_per_record(rows, plan, verdicts), _pairs_frame(scorer, rows, plan, verdicts))


def _per_record(
    rows: FrameRows, plan: list[tuple[int, int]], verdicts: list[PairVerdict | None]
) -> tuple[np.ndarray, list[str | None]]:
    points: dict[int, list[float]] = defaultdict(list)
    for (i, j), verdict in zip(plan, verdicts, strict=True):
        if verdict is None or verdict.winner is None:
            continue
        for_a, for_b = POINTS[verdict.winner]
        points[i].append(for_a)
        points[j].append(for_b)
    values = np.full(rows.n, np.nan)
    summaries: list[str | None] = [None] * rows.n
    for i, got in points.items():
        values[i] = float(np.mean(got))
        wins, ties = got.count(1.0), got.count(0.5)
        summaries[i] = (f"{wins} won, {ties} tied, {len(got) - wins - ties} lost "
                        f"of {len(got)} comparisons")
    return values, summaries


def _pairs_frame(
    scorer: PairwiseScorer, rows: FrameRows, plan: list[tuple[int, int]],
    verdicts: list[PairVerdict | None],
) -> pd.DataFrame:
    records = []
    for (i, j), verdict in zip(plan, verdicts, strict=True):
        v = verdict or PairVerdict(None, None, None, None)
        records.append((rows.prompt_ids[i], rows.repeats[i], rows.deployments[i],
                        rows.deployments[j], v.winner, v.verdict_ab, v.verdict_ba,
                        scorer.judge, v.explanation))
    frame = pd.DataFrame.from_records(records, columns=list(PAIRS_COLUMNS))
    # Text columns as Results uses them: pandas strings, <NA> for "no winner" / "unreadable".
    return frame.astype({c: "string" for c in PAIRS_COLUMNS if c != "repeat"}
                        ).astype({"repeat": "int64"})
