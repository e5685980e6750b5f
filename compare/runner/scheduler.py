"""The run: who sends what when, and where each finished record goes.

Each deployment gets its own pool of workers (its concurrency) pulling from its own job list, so
a slow, throttled or failing deployment only ever occupies its own workers and never starves the
others; a global limit caps the total in flight. Every finished record goes, at once, to the
checkpoint (`out/records.jsonl`), the column buffer behind the Results frame, the progress bar
and the `on_record` callback. `_close` always runs (also on cancel): the checkpoint is flushed
and what finished is saved. A batch deployment's keys go the batch path instead
(`compare.runner.batch`: JSONL files, one batch per file, polled, joined back by custom_id).

A shard of a sharded run (`compare.distributed`) is this same Run with a `shard` role: it sends
only the keys the role owns, through the role's shared limits, into the role's record file, and
hands its rows to the role (parquet parts) instead of saving the run directory's results.
"""

from __future__ import annotations

import asyncio
import logging
import random
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from compare.checkpoint import Checkpoint
from compare.deployments import Deployment
from compare.errors import CompareError, ConfigError
from compare.frame import ColumnBuffer
from compare.prompts import PromptSet
from compare.records import Record
from compare.results import Results
from compare.run_dir import RESULTS_FILE, package_versions, write_manifest
from compare.runner.attempt import Backoff, DeploymentRun
from compare.runner.batch import run_batch
from compare.runner.batch_ledger import Ledger
from compare.runner.frozen_heap import FrozenHeap
from compare.runner.limits import ConcurrencyLimit, capacity_group_limits, deployment_limits
from compare.runner.live_scoring import LiveScoring
from compare.runner.measure import RecordMaker
from compare.runner.plan import Key, Requests, plan_jobs, queueing_note
from compare.runner.probes import Probes
from compare.runner.progress import Progress
from compare.runner.resume import (
    Resumed,
    describe,
    load_finished,
    record_from_row,
    start_fresh,
)

log = logging.getLogger("compare.runner")


def new_run_id() -> str:
    """A sortable, human-readable run id: UTC time plus 4 random hex digits."""
    import secrets

    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


class Run:
    """One call of `arun`: set up, execute, close."""

    def __init__(self, prompts: PromptSet, deps: list[Deployment], *, repeats: int,
                 out: Path | None, run_id: str | None, stream: bool, concurrency: int,
                 max_attempts: int, progress: bool, on_record: Callable[[Record], Any] | None,
                 backoff: Backoff, pool: Any, overrides: dict[str, Any],
                 shared_limits: list[tuple[frozenset[str], int]], fresh: bool = False,
                 fail_fast: bool = False, scoring: LiveScoring | None = None,
                 shard: Any = None, cancel_batches_on_interrupt: bool = False) -> None:
        self.prompts, self.deps, self.repeats, self.out = prompts, deps, repeats, out
        self.stream, self.concurrency, self.max_attempts = stream, concurrency, max_attempts
        self.progress_enabled, self.on_record, self.backoff = progress, on_record, backoff
        self.own_pool, self.pool = pool is None, pool
        self.overrides, self.shared_limits = overrides, shared_limits
        self.fresh, self.fail_fast, self.scoring = fresh, fail_fast, scoring
        self.rng = random.Random()
        self.buffer = ColumnBuffer()
        self.shard = shard  # a compare.distributed.worker.ShardRole, or None
        self.checkpoint: Checkpoint | None = None
        if out is not None:
            self.checkpoint = shard.checkpoint(out) if shard is not None else Checkpoint(out)
        self.run_id = run_id
        self.started_at = datetime.now(UTC)
        self.records = RecordMaker()
        self.progress: Progress | None = None
        self.resumed = Resumed()
        # Each (deployment, prompt) request is built once, here, for resume and for sending.
        # Batch requests never stream.
        self.requests = [Requests(prompts, d, overrides, stream and not d.is_batch)
                         for d in deps]
        self._callback_failed = False
        self.probes = Probes(fail_fast)
        self.heap = FrozenHeap()
        self.ledger = Ledger(out)  # the batches made by this run directory
        self.batch_runs: dict[str, Any] = {}
        self.cancel_batches_on_interrupt = cancel_batches_on_interrupt

    def manifest(self, status: str) -> dict[str, Any]:
        return run_manifest(self, status)

    # -- setup ---------------------------------------------------------------------------------

    def _runs(self, done: Mapping[Key, Any]) -> list[DeploymentRun]:
        return deployment_runs(self, done)

    def _resume(self) -> None:
        if self.checkpoint is None or self.out is None:
            return
        if self.fresh:
            start_fresh(self.out)
        by_name = {r.deployment.name: r for r in self.requests}
        index = {pid: i for i, pid in enumerate(self.prompts.ids)}

        def current_hash(prompt_id: str, name: str) -> str | None:
            if prompt_id not in index or name not in by_name:
                return None
            return by_name[name].get(index[prompt_id])[1]

        self.resumed = load_finished(self.checkpoint, self.out, current_hash, self.deps,
                                     self.prompts.ids)
        self.ledger.load()

    def _open_endpoint(self, run: DeploymentRun) -> None:
        try:
            run.endpoint = self.pool.get(run.dep)
        except CompareError as e:  # e.g. no key: this deployment's rows say so
            run.abort = e
        except Exception as e:
            run.abort = ConfigError(f"cannot build a client for {run.dep.name!r}: {e}")

    # -- records -------------------------------------------------------------------------------

    def finish(self, rec: Record) -> None:
        """A final record: checkpoint it, keep its columns, tell progress and the callback."""
        if self.checkpoint is not None and not rec.cached:
            self.checkpoint.append(rec)
        self.buffer.add(rec)
        if self.scoring is not None:
            self.scoring.on_record(rec, self.prompts)
        if self.shard is not None:
            self.buffer = self.shard.flush(self.buffer)
        if self.progress is not None:
            self.progress.add(rec)
        if self.on_record is not None:
            try:
                self.on_record(rec)
            except Exception as e:  # a broken callback must not lose the run
                if not self._callback_failed:
                    self._callback_failed = True
                    warnings.warn(f"on_record raised {e!r}; ignored", RuntimeWarning, stacklevel=2)

    def replay(self) -> None:
        """Finished keys of this run from the checkpoint, as cached rows."""
        names = {d.name for d in self.deps}
        wanted = set(self.prompts.ids)
        for (pid, dep, r), row in self.resumed.done.items():
            if dep in names and pid in wanted and r < self.repeats:
                if self.on_record is not None or self.progress is not None:
                    self.finish(record_from_row(row, cached=True))
                else:
                    self.buffer.add_row(row, cached=True)
                    if self.shard is not None:
                        self.buffer = self.shard.flush(self.buffer)

    async def worker(self, run: DeploymentRun, jobs: Any, limit: int | None = None) -> None:
        """Send jobs from the deployment's shared iterator (at most `limit`)."""
        for done, job in enumerate(jobs, start=1):
            record = await run.send_with_retries(job)
            self.probes.first.setdefault(run.dep.name, record)
            self.finish(record)
            if limit is not None and done >= limit:
                return

    # -- execute -------------------------------------------------------------------------------

    async def execute(self) -> Results:
        self._resume()
        if self.run_id is None:
            self.run_id = self.resumed.run_id or new_run_id()
        self.records.run_id = self.run_id
        runs = self._runs(self.resumed.done)
        total = len(self.prompts) * len(self.deps) * self.repeats
        todo = sum(len(r.plan.jobs) for r in runs)
        if self.out is not None and (total - todo or self.resumed.changed):
            log.info(describe(self.out, total - todo, todo, self.resumed.changed))
        progress = Progress(total, [d.name for d in self.deps], self.progress_enabled,
                            initial=total - todo)
        self.progress = progress if progress.bar is not None else None
        if self.shard is not None:
            self.shard.start()
        self.replay()
        if self.checkpoint is not None and self.out is not None and self.shard is not None:
            self.checkpoint.open(loaded=True)  # the driver owns results and manifest
        elif self.checkpoint is not None and self.out is not None:
            self.checkpoint.open(loaded=True)
            # From the first new record on, a results.parquet of an earlier run is stale: remove
            # it so a run killed now leaves only the checkpoint, which Results.load rebuilds from.
            (self.out / RESULTS_FILE).unlink(missing_ok=True)
            write_manifest(self.out, self.manifest("running"))
        if self.pool is None:
            from compare.endpoints import EndpointPool

            self.pool = EndpointPool()
        return await self._execute(runs)

    async def _execute(self, runs: list[DeploymentRun]) -> Results:
        active = [run for run in runs if run.plan.jobs]
        for run in active:
            if not run.dep.is_batch:
                self._open_endpoint(run)
        self.records.set_secrets(getattr(self.pool, "secrets", []))
        self.probes.start(len(active))
        with self.heap:
            return await self._fan_out(active)

    async def _fan_out(self, active: list[DeploymentRun]) -> Results:
        status = "interrupted"
        tasks: list[asyncio.Task[None]] = []
        try:
            if self.scoring is not None:
                self.scoring.start(self.deps, self.pool, self.out, str(self.run_id))
            tasks = [asyncio.ensure_future(run_batch(self, run) if run.dep.is_batch
                                           else self._deployment(run)) for run in active]
            await asyncio.gather(*tasks)
            status = "complete"
        finally:
            for t in tasks:
                t.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            results = self._close(status)
            try:
                if self.scoring is not None and status == "complete":
                    results = await self.scoring.finish(results, self.prompts)
            finally:
                if self.scoring is not None:
                    await asyncio.shield(self.scoring.close())
                if self.own_pool and self.pool is not None:
                    await asyncio.shield(self.pool.aclose())
        return results

    async def _deployment(self, run: DeploymentRun) -> None:
        """The deployment's first request alone, then its workers. A deployment that cannot be
        used at all (refused key, no such deployment, no HTTP answer) is found before fanning
        out: its other rows are not sent, and a run failing fast stops (once every deployment's
        first request is in, so that the error names each one)."""
        jobs = run.plan.iter_jobs()
        workers: list[asyncio.Task[None]] = []
        try:
            await self.worker(run, jobs, limit=1)
            await self.probes.probed(run)
            self.heap.refreeze()  # the SDK modules and client the first request built
            n = min(run.plan.concurrency, len(run.plan.jobs) - 1)
            workers = [asyncio.ensure_future(self.worker(run, jobs)) for _ in range(n)]
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()

    def _close(self, status: str) -> Results:
        """Always runs (also on cancel): flush the checkpoint, build and save what we have."""
        if self.progress is not None:
            self.progress.close()
        if self.checkpoint is not None:
            self.checkpoint.close()
        if self.shard is not None:
            self.shard.flush(self.buffer, final=True)
            self.buffer = ColumnBuffer()
            return Results(self.buffer.frame(), manifest=self.manifest(status))
        frame = self.buffer.frame()
        self.buffer = ColumnBuffer()
        if len(frame):
            pos = {pid: i for i, pid in enumerate(self.prompts.ids)}
            dpos = {d.name: i for i, d in enumerate(self.deps)}
            order = np.lexsort((
                frame["repeat"].to_numpy(),
                frame["deployment"].map(dpos).to_numpy(),
                frame["prompt_id"].map(pos).to_numpy(),
            ))
            frame = frame.iloc[order].reset_index(drop=True)
        prompts = self.prompts.to_run_table()
        results = Results(frame, manifest=self.manifest(status), prompts=prompts)
        if self.out is not None:
            results.save(self.out)
        return results


def run_manifest(run: Run, status: str) -> dict[str, Any]:
    """manifest.json of a run: its config, deployments (no keys), versions, state."""
    return {
        "run_id": run.run_id,
        "status": status,
        "started_at": run.started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat() if status != "running" else None,
        "config": {
            "repeats": run.repeats,
            "stream": run.stream,
            "concurrency": run.concurrency,
            "max_attempts": run.max_attempts,
            "backoff": asdict(run.backoff),
            "overrides": dict(run.overrides),
            "shared_limits": [[sorted(names), n] for names, n in run.shared_limits],
        },
        "prompts": {"source": run.prompts.source, "count": len(run.prompts)},
        # Resume: finished keys sent again because their prompt or parameters changed.
        "resent_changed_requests": run.resumed.changed,
        "deployments": [d.to_dict() for d in run.deps],
        "deployment_order": [d.name for d in run.deps],
        "packages": package_versions(),
        **({"batches": {name: b.report() for name, b in run.batch_runs.items()}}
           if run.batch_runs else {}),
    }


def deployment_runs(run: Run, done: Mapping[Key, Any]) -> list[DeploymentRun]:
    """Each deployment's jobs (not `done`, and owned by this shard) with its limits: its own
    pacing, the shared and declared-capacity groups, the run's global slots."""
    plans = plan_jobs(run.requests, repeats=run.repeats, concurrency=run.concurrency,
                      done=done)
    if run.shard is not None:
        ids, owns = run.prompts.ids, run.shard.owns
        for p in plans:
            name = p.deployment.name
            p.jobs = [(i, r) for i, r in p.jobs if owns(ids[i], name, r)]
    workers = sum(min(p.concurrency, len(p.jobs)) for p in plans)
    global_slots = ConcurrencyLimit(run.concurrency) if workers > run.concurrency else None
    shared = {}
    for names, n in run.shared_limits:
        limit = ConcurrencyLimit(n)  # one per group: a deployment is in one group at most
        shared.update(dict.fromkeys(names, limit))
    shared.update(capacity_group_limits(run.deps, set(shared)))
    for plan in plans:
        note = queueing_note(plan)
        if note is not None and plan.jobs:
            warnings.warn(note, RuntimeWarning, stacklevel=4)
    return [
        DeploymentRun(
            plan,
            run.shard.limits(plan.deployment, global_slots) if run.shard is not None else
            deployment_limits(plan.deployment, retry_after_cap_s=run.backoff.max_retry_after_s,
                              shared=shared.get(plan.deployment.name),
                              global_slots=global_slots),
            run.records, max_attempts=run.max_attempts, backoff=run.backoff, rng=run.rng,
        )
        for plan in plans
    ]
