"""Scoring a run: while it runs (`compare.run(..., scorers=[...])`) or later (`compare.score`).

    results = compare.score("runs/try", ["exact", "f1", "judge:gpt-4o"], score_with=judges)
    results.frame[["score_exact", "score_f1", "score_judge"]]
    results.scores          # long: prompt_id, deployment, repeat, scorer, value, passed, ...

The scorers (`compare.scorers`) compute; this module connects them to a run: the prompts it
used (rebuilt from prompts.parquet for a saved run), the deployments judges and embedding
scorers call (`score_with`, else the compared ones), a `RunnerScoringContext` so those calls
are timed, retried, paced and checkpointed in OUT/judge_records.jsonl (a killed scoring resumes
without re-sending finished calls), and where the scores land: `score_<name>` / `pass_<name>`
columns in the frame, `Results.scores` (scores.parquet), `Results.pairs` (pairs.parquet) and the
manifest's `scorers` (kind, direction, template sha256, ...) and `scoring` (calls, cost).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from typing import Any

import pandas as pd

from compare.deployments import FIELD_NAMES, Deployment
from compare.errors import CompareError
from compare.prompts import PromptSet, load_prompts
from compare.results import Results
from compare.runner.judge_calls import RunnerScoringContext, scoring_deployments
from compare.scorers import Scorer, as_scorers, check_scorers, score_frame
from compare.scorers.engine import DEFAULT_CONCURRENCY, Ready, ScoredFrames

ScorersArg = Sequence["Scorer | str"]


def prompts_of(results: Results) -> PromptSet | None:
    """The prompt set a saved run used, from its prompts table (full messages when saved)."""
    table = results.prompt_table
    if table is None or not len(table):
        return None
    rows = []
    for row in table.to_dict(orient="records"):
        item: dict[str, Any] = {"id": row["id"], "reference": row.get("reference"),
                                "tags": list(row.get("tags") or [])}
        messages = row.get("messages")
        if isinstance(messages, str) and messages:
            item["messages"] = json.loads(messages)
        else:  # runs saved before messages were kept: the last user turn only
            item["prompt"] = row.get("prompt") or ""
        rows.append(item)
    return load_prompts(rows, source=str(results.path or "the run's prompts"))


def _compared(results: Results, deployments: Sequence[Deployment] | None) -> list[Deployment]:
    if deployments is not None:
        return list(deployments)
    out = []
    for d in results.manifest.get("deployments") or ():
        try:
            out.append(Deployment(**{k: v for k, v in d.items() if k in FIELD_NAMES}))
        except CompareError:
            continue  # e.g. its endpoint variable is not set here: not usable as a judge
    return out


def _needed(scorers: Sequence[Scorer]) -> set[str]:
    return {name for s in scorers for name in (s.judge, s.embed) if name}


def apply_scores(results: Results, scored: ScoredFrames, scoring: dict[str, Any] | None) -> None:
    """Put scores where they land (see the module doc); a scorer scored again replaces its
    earlier columns, rows and manifest entry."""
    names = list(scored.metadata)
    replaced = [c for c in results.frame.columns
                if c in scored.columns.columns or c in {f"pass_{n}" for n in names}]
    frame = results.frame.drop(columns=replaced)
    results.frame = pd.concat([frame, scored.columns.set_axis(frame.index)], axis=1)
    old = results.scores
    if old is not None and len(old):
        old = old[~old["scorer"].astype(str).isin(names)]
        results.scores = pd.concat([old.astype({"scorer": str}),
                                    scored.scores.astype({"scorer": str})], ignore_index=True)
    else:
        results.scores = scored.scores
    if scored.pairs is not None:
        results.pairs = scored.pairs
    results.manifest["scorers"] = {**(results.manifest.get("scorers") or {}), **scored.metadata}
    if scoring is not None:
        results.manifest["scoring"] = scoring
    for name, meta in scored.metadata.items():
        if meta.get("unparsed") or meta.get("errors"):
            warnings.warn(f"scorer {name!r}: {meta.get('unparsed', 0)} replies could not be read "
                          f"and {meta.get('errors', 0)} calls failed (NaN scores; the replies "
                          "are in Results.scores.explanation)", RuntimeWarning, stacklevel=3)


async def ascore(
    results: Results | str | os.PathLike[str],
    scorers: ScorersArg,
    *,
    score_with: Any = None,
    prompts: Any = None,
    deployments: Sequence[Deployment] | None = None,
    pool: Any = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_attempts: int = 5,
    ready: Ready | None = None,
    ctx: RunnerScoringContext | None = None,
) -> Results:
    """Score a run's rows without re-sending its prompts; see `score`."""
    if not isinstance(results, Results):
        results = Results.load(results)
    chosen = as_scorers(scorers)
    check_scorers(chosen)
    prompt_set = load_prompts(prompts) if prompts is not None else prompts_of(results)
    own_pool = pool is None and ctx is None
    if own_pool:
        from compare.endpoints import EndpointPool

        pool = EndpointPool()
    try:
        if ctx is None and _needed(chosen):
            deps = scoring_deployments(_needed(chosen), _compared(results, deployments),
                                       score_with)
            for dep in deps.values():
                pool.get(dep)  # a missing key fails here, naming the variable, before any call
            ctx = RunnerScoringContext(deps, pool, out=results.path, run_id=results.run_id or "",
                                       max_attempts=max_attempts)
        scored = await score_frame(results.frame, prompt_set, chosen, ctx,
                                   concurrency=concurrency, ready=ready)
        apply_scores(results, scored, ctx.summary() if ctx is not None else None)
    finally:
        if ctx is not None and own_pool:
            await ctx.aclose()
        if own_pool and pool is not None:
            await pool.aclose()
    if results.path is not None:
        results.save()
    return results


def score(
    results: Results | str | os.PathLike[str],
    scorers: ScorersArg,
    *,
    score_with: Any = None,
    prompts: Any = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_attempts: int = 5,
) -> Results:
    """Score an existing run (a Results or its run directory) later, without re-sending its
    prompts. Judge and embedding calls go through the runner and are checkpointed in
    OUT/judge_records.jsonl: scoring killed half-way resumes where it stopped.

    scorers: built-in names ("exact", "f1", "judge:DEPLOYMENT", ...), Scorer objects, or
        functions decorated with @compare.scorer.
    score_with: the deployments judges and embedding scorers call when they are not among the
        compared ones: a Deployment, a list, a deployments file or a local endpoint.
    prompts: the prompt set, when the run directory has none (older runs).
    """
    from compare.runner.sync import run_sync

    return run_sync(lambda: ascore(results, scorers, score_with=score_with, prompts=prompts,
                                   concurrency=concurrency, max_attempts=max_attempts))

