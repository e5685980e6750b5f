"""Scoring while a run runs (`compare.run(..., scorers=[...])`).

Judge and embedding scorers start on each ok record as it arrives, through a
`RunnerScoringContext` on the run's own pool, so their calls overlap the run's; when every record
is in, `compare.scoring.ascore` waits for them, scores the rest (text scorers, whole-frame, in
one vectorised pass; pairwise judges, which need every deployment's answer) and puts the scores
in the Results. A run that is interrupted keeps its checkpointed judge calls: `compare.score`
on its directory finishes the job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from compare.deployments import Deployment
from compare.prompts import PromptSet
from compare.records import Record
from compare.results import Results
from compare.runner.judge_calls import RunnerScoringContext, scoring_deployments
from compare.scorers import Scorer, as_scorers, check_scorers
from compare.scorers.pairwise import PairwiseScorer


class LiveScoring:
    """The scorers of one run, their context, and the scores already under way."""

    def __init__(self, scorers: Sequence[Scorer | str], score_with: Any) -> None:
        self.scorers = as_scorers(scorers)
        check_scorers(self.scorers)
        for s in self.scorers:  # counted from this run's first score on
            s.unparsed = s.errors = 0
        self.score_with = score_with
        self.ctx: RunnerScoringContext | None = None
        self.ready: dict[tuple[str, str, str, int], asyncio.Future[Any]] = {}
        self._early = [s for s in self.scorers
                       if s.model_based and not isinstance(s, PairwiseScorer)]

    def start(self, deployments: list[Deployment], pool: Any, out: Path | None,
              run_id: str) -> None:
        """Find the deployments the scorers call (a missing one or its key fails here, before
        the run sends anything) and open the scoring context."""
        needed = {n for s in self.scorers for n in (s.judge, s.embed) if n}
        if not needed:
            return
        deps = scoring_deployments(needed, deployments, self.score_with)
        for dep in deps.values():
            pool.get(dep)
        self.ctx = RunnerScoringContext(deps, pool, out=out, run_id=run_id)

    def on_record(self, record: Record, prompts: PromptSet) -> None:
        """Start the model scorers on a new ok record."""
        if self.ctx is None or record.status != "ok" or record.cached:
            return
        prompt = prompts[record.prompt_id]
        for s in self._early:
            key = (s.name, record.prompt_id, record.deployment, record.repeat)
            self.ready[key] = asyncio.ensure_future(s.score(prompt, record, self.ctx))

    async def finish(self, results: Results, prompts: PromptSet) -> Results:
        from compare.scoring import ascore

        return await ascore(results, self.scorers, prompts=prompts, ctx=self.ctx,
                            ready=self.ready, pool=self.ctx.pool if self.ctx else None)

    async def close(self) -> None:
        """Stop what is under way (an interrupted run) and flush the calls' checkpoint."""
        for task in self.ready.values():
            task.cancel()
        if self.ready:
            await asyncio.gather(*self.ready.values(), return_exceptions=True)
        if self.ctx is not None:
            await self.ctx.aclose()
