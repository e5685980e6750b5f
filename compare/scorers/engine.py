"""Scoring a tidy frame of records: `score_frame(frame, prompts, scorers, ctx)`.

Returns `ScoredFrames`:

- `scores`: long, one row per input row × scorer, exact columns `SCORES_COLUMNS`
  (prompt_id, deployment, scorer as categoricals; value float64; passed nullable boolean);
- `columns`: the wide columns to add to the frame, aligned to its index: `score_<name>`
  (float64, binary as 0/1, NaN where not scored) and `pass_<name>` (nullable boolean, NA where
  not scored) for scorers with a threshold;
- `pairs`: the pairwise comparisons (exact columns `PAIRS_COLUMNS`) when a pairwise scorer ran;
- `metadata`: per scorer, what the run manifest records (kind, threshold, template sha256,
  judge deployment, unparsed and failed model calls, rows scored).

Scorers with a batch path score all their rows at once; model-based ones run row by row,
`concurrency` model calls at a time, through `ctx`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd

from compare.errors import ConfigError
from compare.prompts import PromptSet, load_prompts
from compare.scorers.base import Score, Scorer
from compare.scorers.judge_checks import length_bias, position_consistency
from compare.scorers.pairwise import PairwiseScorer
from compare.scorers.rows import FrameRows
from compare.scorers.spec import as_scorers

SCORES_COLUMNS: Final = (
    "prompt_id", "deployment", "repeat", "scorer", "value", "passed", "answer", "explanation",
)
DEFAULT_CONCURRENCY: Final = 8


@dataclass
class ScorerResult:
    """One scorer's values over all rows of the frame."""

    values: np.ndarray
    passed: pd.arrays.BooleanArray | list[bool | None]
    answers: np.ndarray | list[str | None]  # object arrays (batch) or lists (row by row)
    explanations: np.ndarray | list[str | None]


@dataclass
class ScoredFrames:
    """What `score_frame` returns (see the module doc)."""

    scores: pd.DataFrame
    columns: pd.DataFrame
    pairs: pd.DataFrame | None
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)


async def run_bounded(jobs: Iterable[Callable[[], Awaitable[None]]], limit: int) -> None:
    """Run the jobs with at most `limit` in flight (workers pull jobs, so 100k jobs never
    become 100k pending tasks)."""
    iterator = iter(jobs)

    async def worker() -> None:
        for job in iterator:
            await job()

    await asyncio.gather(*(worker() for _ in range(max(1, limit))))


def _passed_from_values(scorer: Scorer, values: np.ndarray) -> pd.arrays.BooleanArray:
    """Pass/fail per row from the threshold (binary: value 1); NA where there is no value or
    no notion of passing."""
    unknown = np.isnan(values)
    if scorer.threshold is None and scorer.kind != "binary":
        return pd.arrays.BooleanArray(np.zeros(len(values), dtype=bool),
                                      np.ones(len(values), dtype=bool))
    with np.errstate(invalid="ignore"):
        if scorer.threshold is None:
            hits = values == 1.0
        elif scorer.higher_is_better:
            hits = values >= scorer.threshold
        else:
            hits = values <= scorer.threshold
    return pd.arrays.BooleanArray(hits & ~unknown, unknown)


def _score_batch(scorer: Scorer, rows: FrameRows) -> ScorerResult:
    subset = rows.subset(scorer)
    index = subset.index
    values = np.full(rows.n, np.nan)
    answers = np.full(rows.n, None, dtype=object)
    explanations = np.array(subset.reasons, dtype=object)
    if len(index):
        result = scorer.score_batch(subset.outputs, subset.references, subset.prompts)
        if len(result.values) != len(index):
            raise RuntimeError(f"scorer {scorer.name!r} returned {len(result.values)} values "
                               f"for {len(index)} rows")
        values[index] = result.values
        for extra, target in ((result.answers, answers), (result.explanations, explanations)):
            if extra is not None:
                target[index] = np.array(extra, dtype=object)
    return ScorerResult(values, _passed_from_values(scorer, values), answers, explanations)


Ready = dict[tuple[str, str, str, int], "asyncio.Future[Score]"]


def _model_jobs(
    scorer: Scorer, rows: FrameRows, reasons: list[str | None], ctx: Any, ready: Ready
) -> tuple[ScorerResult, list[Callable[[], Awaitable[None]]]]:
    """The result to fill, and one job per scorable row that fills its slot (awaiting the
    score already under way for that row, when the runner started it as the record arrived)."""
    result = ScorerResult(np.full(rows.n, np.nan), [None] * rows.n, [None] * rows.n,
                          list(reasons))

    def job(i: int) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            started = ready.get((scorer.name, rows.prompt_ids[i], rows.deployments[i],
                                 rows.repeats[i]))
            score: Score = await (started if started is not None else
                                  scorer.score(rows.prompts[i], rows.view(i), ctx))
            result.values[i] = score.value
            result.passed[i] = score.passed
            result.answers[i] = score.answer
            result.explanations[i] = score.explanation
        return run

    return result, [job(i) for i, why in enumerate(reasons) if why is None]


def check_scorers(scorers: Sequence[Scorer]) -> None:
    """Names are unique (they become column suffixes); model scorers have what they need."""
    seen: dict[str, Scorer] = {}
    for s in scorers:
        if not isinstance(s, Scorer):
            raise ConfigError(f"not a scorer: {s!r} (use a built-in name, a Scorer, or a "
                              "function decorated with @compare.scorer)", field="scorers")
        if s.name in seen:
            raise ConfigError(
                f"two scorers are named {s.name!r} ({seen[s.name]!r} and {s!r}); give one a "
                f"different name, e.g. name={s.name + '_2'!r}", field="scorers",
            )
        seen[s.name] = s


def _needs_ctx(scorers: Sequence[Scorer], ctx: Any) -> None:
    needing = [s.name for s in scorers if s.judge is not None or s.embed is not None]
    if needing and ctx is None:
        raise ConfigError(
            f"scorer(s) {', '.join(needing)} call a model and need a scoring context (ctx); "
            "run them through compare's runner, or pass a ScoringContext", field="ctx",
        )


async def score_frame(
    frame: pd.DataFrame,
    prompts: PromptSet | Any,
    scorers: Sequence[Scorer | str],
    ctx: Any = None,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    ready: Ready | None = None,
) -> ScoredFrames:
    """Score every row of `frame` (a Results.frame) with each scorer. See the module doc.

    `ready`: scores of model-based scorers already under way, by (scorer, prompt id,
    deployment, repeat) — the runner starts them as records arrive.

    `prompts` is the PromptSet of the run (references and tags come from it; None means no
    references). `scorers` are Scorer objects or spec strings ("exact", "judge:DEP", ...).
    Rows not ok, or without a needed reference, score NaN with the reason in `explanation`.
    """
    chosen = as_scorers(scorers)
    check_scorers(chosen)
    _needs_ctx(chosen, ctx)
    prompt_set = load_prompts(prompts) if prompts is not None else None
    rows = FrameRows(frame, prompt_set)
    if not ready:  # (scores under way have counted into them already)
        for s in chosen:
            s.unparsed = s.errors = 0
    results: dict[str, ScorerResult] = {}
    jobs: list[Callable[[], Awaitable[None]]] = []
    for s in chosen:
        if s.model_based and not isinstance(s, PairwiseScorer):
            results[s.name], scorer_jobs = _model_jobs(s, rows, rows.subset(s).reasons, ctx,
                                                       ready or {})
            jobs.extend(scorer_jobs)
    # Model calls wait on the network while the batch scorers use the CPU (on a thread).
    calls = asyncio.ensure_future(run_bounded(jobs, concurrency))
    try:
        for s in chosen:
            if not s.model_based:
                results[s.name] = await asyncio.to_thread(_score_batch, s, rows)
    except BaseException:
        calls.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await calls
        raise
    await calls
    pairs = await _pairwise(chosen, rows, ctx, concurrency, results)
    ordered = {s.name: results[s.name] for s in chosen}
    return ScoredFrames(
        scores=_long_frame(rows, ordered),
        columns=_wide_columns(frame.index, chosen, ordered),
        pairs=pairs,
        metadata={s.name: _judge_checks(describe(s, results[s.name]), s, rows,
                                        results[s.name], pairs) for s in chosen},
    )


def _judge_checks(meta: dict[str, Any], scorer: Scorer, rows: FrameRows, result: ScorerResult,
                  pairs: pd.DataFrame | None) -> dict[str, Any]:
    """A judge's entry gains its length bias; a pairwise judge's its position consistency."""
    if scorer.judge is None:
        return meta
    if isinstance(scorer, PairwiseScorer):
        mine = pairs[pairs["judge"].astype(str) == scorer.judge] if pairs is not None else None
        meta["position_consistency"] = position_consistency(mine)
    else:
        meta["length_bias"] = length_bias(result.values, rows.outputs)
    return meta


async def _pairwise(chosen: Sequence[Scorer], rows: FrameRows, ctx: Any, concurrency: int,
                    results: dict[str, ScorerResult]) -> pd.DataFrame | None:
    """Run the pairwise scorers over every pair of deployments; their verdicts as one frame."""
    from compare.scorers.tournament import run_pairwise

    frames = []
    for s in chosen:
        if isinstance(s, PairwiseScorer):
            values, summaries, pair_frame = await run_pairwise(s, rows, ctx, concurrency)
            results[s.name] = ScorerResult(values, _passed_from_values(s, values),
                                           [None] * rows.n, summaries)
            frames.append(pair_frame)
    return pd.concat(frames, ignore_index=True) if frames else None


def describe(scorer: Scorer, result: ScorerResult) -> dict[str, Any]:
    """A scorer's entry in the run manifest."""
    meta: dict[str, Any] = {
        "kind": scorer.kind,
        "higher_is_better": scorer.higher_is_better,
        "needs_reference": scorer.needs_reference,
        "threshold": scorer.threshold,
        "unparsed": scorer.unparsed,
        "errors": scorer.errors,
        "scored": int(np.count_nonzero(~np.isnan(result.values))),
    }
    if scorer.tags is not None:
        meta["tags"] = sorted(scorer.tags)
    if scorer.template is not None:
        meta["template_sha256"] = scorer.template_sha256
    if scorer.judge is not None:
        meta["judge"] = scorer.judge
    if scorer.embed is not None:
        meta["embed"] = scorer.embed
    return meta


def _long_frame(rows: FrameRows, results: dict[str, ScorerResult]) -> pd.DataFrame:
    k = len(results)
    names = list(results)
    prompt_ids = pd.Categorical(rows.prompt_ids)
    deployments = pd.Categorical(rows.deployments)
    data = {
        "prompt_id": pd.Categorical.from_codes(np.tile(prompt_ids.codes, k),
                                               prompt_ids.categories),
        "deployment": pd.Categorical.from_codes(np.tile(deployments.codes, k),
                                                deployments.categories),
        "repeat": np.tile(np.asarray(rows.repeats, dtype="int64"), k),
        "scorer": pd.Categorical.from_codes(np.repeat(np.arange(k), rows.n),
                                            pd.Index(names, dtype="object")),
        "value": np.concatenate([r.values for r in results.values()]) if k
        else np.empty(0),
        "passed": _concat_passed([r.passed for r in results.values()]),
        "answer": _concat_objects([r.answers for r in results.values()]),
        "explanation": _concat_objects([r.explanations for r in results.values()]),
    }
    return pd.DataFrame(data, columns=list(SCORES_COLUMNS))


def _concat_objects(parts: list[np.ndarray | list[str | None]]) -> pd.Series:
    arrays = [np.asarray(p, dtype=object) for p in parts]
    return pd.Series(np.concatenate(arrays) if arrays else np.empty(0, dtype=object),
                     dtype="object")


def _concat_passed(parts: list[pd.arrays.BooleanArray | list[bool | None]]
                   ) -> pd.arrays.BooleanArray:
    arrays = [p if isinstance(p, pd.arrays.BooleanArray) else pd.array(p, dtype="boolean")
              for p in parts]
    if not arrays:
        return pd.array([], dtype="boolean")
    values = np.concatenate([a.to_numpy(dtype=bool, na_value=False) for a in arrays])
    return pd.arrays.BooleanArray(values, np.concatenate([np.asarray(a.isna()) for a in arrays]))


def _wide_columns(
    index: pd.Index, scorers: Sequence[Scorer], results: dict[str, ScorerResult]
) -> pd.DataFrame:
    columns: dict[str, Any] = {}
    for s in scorers:
        result = results[s.name]
        columns[f"score_{s.name}"] = pd.Series(result.values, index=index, dtype="float64")
        if s.threshold is not None:
            columns[f"pass_{s.name}"] = pd.Series(
                pd.array(result.passed, dtype="boolean"), index=index
            )
    return pd.DataFrame(columns, index=index)


def score_frame_sync(
    frame: pd.DataFrame,
    prompts: PromptSet | Any,
    scorers: Sequence[Scorer | str],
    ctx: Any = None,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> ScoredFrames:
    """`score_frame` for code without an event loop. Inside one (a notebook cell), it runs on a
    worker thread with its own loop, so `ctx` must not be tied to the caller's loop there."""
    coroutine = score_frame(frame, prompts, scorers, ctx, concurrency=concurrency)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
