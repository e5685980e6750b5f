"""The runner: fan a prompt set out to deployments; one timed, retried, checkpointed record each.

Where each step happens, by file:

- plan.py       the requests (built once: deployment defaults + run overrides + prompt), their
                fingerprints for resume, and each deployment's jobs
- limits.py     every limit on sending behind one interface: Retry-After pauses, requests/min
                and tokens/min pacing, shared and global concurrency
- attempt.py    one job → one record: retries with backoff → paced send → one adapter call
- measure.py    an attempt's outcome → the record's timing, tokens, cost and error fields
- scheduler.py  per-deployment workers, the checkpoint, progress, the Results at the end
- resume.py     what an earlier run in the same `out` already finished
- batch.py      batch deployments: keys as JSONL files through the batch API, polled, joined
                back (batch_input, batch_ledger, batch_part, batch_records)
- progress.py   the progress bar; sync.py: `run()` inside Jupyter's running loop
"""

from __future__ import annotations

import functools
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar

from compare.deployments_file import as_deployments
from compare.errors import ConfigError
from compare.prompts import load_prompts
from compare.runner.attempt import Backoff
from compare.runner.live_scoring import LiveScoring
from compare.runner.plan import check_overrides
from compare.runner.scheduler import Run, new_run_id
from compare.runner.sync import run_sync

if TYPE_CHECKING:
    from compare.deployments import Deployment
    from compare.endpoints import EndpointPool
    from compare.prompts import PromptSet
    from compare.records import Record
    from compare.results import Results
    from compare.scorers import Scorer

__all__ = ["Backoff", "arun", "new_run_id", "run"]

SharedLimits = Iterable[tuple[Iterable[str] | str, int]]
P = ParamSpec("P")
R = TypeVar("R")


# arun's parameters, appended to its docstring (so help(compare.run) shows them).
ARUN_PARAMETERS: Final = """Parameters:

prompts: a PromptSet, list of str/dict, DataFrame or .jsonl/.csv path (see load_prompts).
deployments: a Deployment, a list of them, a deployments YAML path or a local endpoint.
out: run directory; records are checkpointed to out/records.jsonl as they complete, and a
    rerun with the same `out` replays finished keys as cached rows and sends only the rest.
    results.parquet and manifest.json are written at the end (also when cancelled).
concurrency: global in-flight limit; each deployment's own limit is its `concurrency` field,
    else an equal share of the global limit.
max_attempts: attempts per request (1 = no retries); `backoff` tunes the waits.
on_record: called with every final Record as it completes (cached ones too).
pool: an EndpointPool to reuse (not closed here); by default one is made and closed.
shared_limits: [(deployment names, n), ...]: at most n requests in flight across those
    deployments together, for names that share one backend (e.g. two local deployments on
    one loaded model); waiting for it is queueing before the send, never part of ttft_s.
fresh: start over in `out` (its run files are removed) instead of resuming. Resuming into a
    directory that holds other deployments or another prompt set is refused.
fail_fast: each deployment's first request goes alone; when it shows the deployment cannot
    be used (refused key, no such deployment, no HTTP answer), raise
    DeploymentUnusableError naming every such deployment instead of warning and going on
    without it (the CLI fails fast).
scorers: score the answers (see compare.scorers: "exact", "f1", "judge:DEPLOYMENT", Scorer
    objects, @compare.scorer functions): score_<name> columns, Results.scores, the
    manifest's scorers. Judge and embedding scorers start as records arrive; their calls
    are timed, retried, paced and checkpointed in out/judge_records.jsonl, and cost apart.
score_with: the deployments those scorers call when they are not compared ones (a
    Deployment, a list, a deployments file or a local endpoint).
workers: run in N processes on this machine, the keys sharded among them by a stable hash
    (needs `out`; each shard appends its own record file there). Deployments' requests/min,
    tokens/min and concurrency, shared_limits and Retry-After pauses hold across all shards
    together; `concurrency` is split evenly among them. A killed worker is restarted and
    resumes. See compare.distributed.
ray: run the shards on a Ray cluster ("auto" or its address; the `compare[ray]` extra);
    `workers` is then the number of shards (default: the cluster's CPUs). `out` must be a
    directory every node can write.
cancel_batches_on_interrupt: a batch deployment's batches run on when the run is
    interrupted (a rerun with the same `out` collects them); True cancels them instead.
param_overrides: temperature, max_tokens, top_p, seed, stop, system, extra — override the
    deployments' defaults for this run.
"""


def _positive_int(value: Any, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}", field=name)


async def arun(
    prompts: PromptSet | list[Any] | str | os.PathLike[str] | Any,
    deployments: Deployment | Iterable[Deployment] | str | os.PathLike[str] | Any,
    *,
    repeats: int = 1,
    out: str | os.PathLike[str] | None = None,
    run_id: str | None = None,
    stream: bool = True,
    concurrency: int = 32,
    max_attempts: int = 5,
    progress: bool = True,
    on_record: Callable[[Record], Any] | None = None,
    backoff: Backoff | None = None,
    pool: EndpointPool | Any = None,
    shared_limits: SharedLimits | None = None,
    fresh: bool = False,
    fail_fast: bool = False,
    scorers: Sequence[Scorer | str] | None = None,
    score_with: Any = None,
    workers: int | None = None,
    ray: str | None = None,
    cancel_batches_on_interrupt: bool = False,
    **param_overrides: Any,
) -> Results:
    """Send every prompt to every deployment `repeats` times; one record per request."""
    _positive_int(repeats, "repeats")
    _positive_int(concurrency, "concurrency")
    _positive_int(max_attempts, "max_attempts")
    overrides = check_overrides(param_overrides)
    deps = as_deployments(deployments)
    if workers is not None or ray is not None:
        return await _arun_sharded(
            load_prompts(prompts), deps, out=out, workers=workers, ray=ray, repeats=repeats,
            run_id=run_id, stream=stream, concurrency=concurrency, max_attempts=max_attempts,
            progress=progress, backoff=backoff, overrides=overrides,
            shared_limits=_check_shared_limits(shared_limits, deps), fresh=fresh,
            fail_fast=fail_fast, on_record=on_record, pool=pool, scorers=scorers,
            score_with=score_with)
    run = Run(
        load_prompts(prompts), deps, repeats=repeats,
        out=Path(out) if out is not None else None, run_id=run_id, stream=stream,
        concurrency=concurrency, max_attempts=max_attempts, progress=progress,
        on_record=on_record, backoff=backoff or Backoff(), pool=pool, overrides=overrides,
        shared_limits=_check_shared_limits(shared_limits, deps), fresh=fresh,
        fail_fast=fail_fast, cancel_batches_on_interrupt=bool(cancel_batches_on_interrupt),
        scoring=LiveScoring(scorers, score_with) if scorers else None,
    )
    return await run.execute()


arun.__doc__ = f"{arun.__doc__}\n\n{ARUN_PARAMETERS}"


async def _arun_sharded(prompts: PromptSet, deps: list[Deployment], *, scorers: Any,
                        score_with: Any, **options: Any) -> Results:
    """A sharded run (`compare.distributed`), then its scoring in this process."""
    from compare.distributed.driver import arun_sharded

    results = await arun_sharded(prompts, deps, **options)
    if scorers:
        from compare.scoring import ascore

        results = await ascore(results, scorers, score_with=score_with, deployments=deps,
                               prompts=prompts, pool=options.get("pool"))
    return results


def _check_shared_limits(groups: SharedLimits | None, deps: list[Deployment]
                         ) -> list[tuple[frozenset[str], int]]:
    out: list[tuple[frozenset[str], int]] = []
    known = {d.name for d in deps}
    seen: set[str] = set()
    for group in groups or ():
        try:
            names, limit = group
            names = frozenset([names] if isinstance(names, str) else names)
        except (TypeError, ValueError):
            raise ConfigError(f"shared_limits: expected (names, n) pairs, got {group!r}",
                              field="shared_limits") from None
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ConfigError(f"shared_limits: the limit must be a positive integer, got "
                              f"{limit!r}", field="shared_limits")
        unknown = sorted(str(n) for n in names - known)
        if unknown:
            raise ConfigError(f"shared_limits: no deployment named {unknown[0]!r} in this run",
                              field="shared_limits")
        if names & seen:  # one limit per deployment keeps acquisition deadlock-free
            raise ConfigError(f"shared_limits: {sorted(names & seen)[0]!r} is in two groups",
                              field="shared_limits")
        seen |= names
        out.append((names, limit))
    return out


def synchronous(fn: Callable[P, Awaitable[R]]) -> Callable[P, R]:
    """The blocking twin of an async entry point, with the same typed parameters. Inside a
    running event loop (Jupyter) it runs on its own loop in a worker thread; Ctrl-C /
    interrupting the kernel cancels the run, keeping finished records."""

    @functools.wraps(fn)
    def blocking(*args: P.args, **kwargs: P.kwargs) -> R:
        return run_sync(lambda: fn(*args, **kwargs))

    blocking.__doc__ = f"Synchronous `{fn.__name__}` (same arguments).\n\n{fn.__doc__}"
    return blocking


run = synchronous(arun)
run.__name__ = run.__qualname__ = "run"
