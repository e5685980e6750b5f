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

import asyncio
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compare.deployments_file import as_deployments
from compare.errors import ConfigError
from compare.prompts import load_prompts
from compare.runner.attempt import Backoff
from compare.runner.plan import check_overrides
from compare.runner.scheduler import Run, new_run_id
from compare.runner.sync import run_in_thread

if TYPE_CHECKING:
    from compare.deployments import Deployment
    from compare.endpoints import EndpointPool
    from compare.prompts import PromptSet
    from compare.records import Record
    from compare.results import Results

__all__ = ["Backoff", "arun", "new_run_id", "run"]

SharedLimits = Iterable[tuple[Iterable[str] | str, int]]


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
    cancel_batches_on_interrupt: bool = False,
    **param_overrides: Any,
) -> Results:
    """Send every prompt to every deployment `repeats` times; one record per request.

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
    cancel_batches_on_interrupt: a batch deployment's batches run on when the run is
        interrupted (a rerun with the same `out` collects them); True cancels them instead.
    param_overrides: temperature, max_tokens, top_p, seed, stop, system, extra — override the
        deployments' defaults for this run.
    """
    _positive_int(repeats, "repeats")
    _positive_int(concurrency, "concurrency")
    _positive_int(max_attempts, "max_attempts")
    overrides = check_overrides(param_overrides)
    deps = as_deployments(deployments)
    run = Run(
        load_prompts(prompts), deps, repeats=repeats,
        out=Path(out) if out is not None else None, run_id=run_id, stream=stream,
        concurrency=concurrency, max_attempts=max_attempts, progress=progress,
        on_record=on_record, backoff=backoff or Backoff(), pool=pool, overrides=overrides,
        shared_limits=_check_shared_limits(shared_limits, deps), fresh=fresh,
        fail_fast=fail_fast, cancel_batches_on_interrupt=bool(cancel_batches_on_interrupt),
    )
    return await run.execute()


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


def run(
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
    cancel_batches_on_interrupt: bool = False,
    **param_overrides: Any,
) -> Results:
    """Synchronous `arun` (same arguments). Inside a running event loop (Jupyter) it runs on its
    own loop in a worker thread; Ctrl-C / interrupting the kernel cancels the run, keeping
    finished records."""
    kwargs = dict(repeats=repeats, out=out, run_id=run_id, stream=stream,
                  concurrency=concurrency, max_attempts=max_attempts, progress=progress,
                  on_record=on_record, backoff=backoff, pool=pool, shared_limits=shared_limits,
                  fresh=fresh, fail_fast=fail_fast,
                  cancel_batches_on_interrupt=cancel_batches_on_interrupt, **param_overrides)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(arun(prompts, deployments, **kwargs))
    return run_in_thread(lambda: arun(prompts, deployments, **kwargs))
