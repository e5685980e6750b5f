"""The batch path: one batch deployment's keys as JSONL files through the batch API.

`BatchRun.execute` does, for one deployment (azure-openai-batch / openai-batch):

1. adopt: parts an earlier run in the same `out` left pending (`OUT/batches.jsonl`) are taken
   up again — the same file (no second upload) and the same batch (no second bill; a batch
   whose create answer was lost is found by its input file). A batch found ended (cancelled,
   expired, refused for quota) gives its answered lines; the rest go into a new batch now.
2. submit: the other keys are written as input files (streamed, split at 100,000 lines /
   200 MB), uploaded, and a batch created for each; ids are in the ledger before polling.
3. follow: each batch is polled every `batch_poll_s` until it ends, then its output and error
   files are joined to the keys by custom_id: exactly one record per key. A batch refused
   because the enqueued-token quota is full is created again (same file) once one of this run's
   batches ends, or after a wait, up to `max_attempts` times.

Interrupted (Ctrl-C, a cancelled task), running batches keep running on the service and the
run says how to collect them; with `cancel_on_interrupt` they are cancelled instead (their
finished requests are collected on resume, the rest sent again in a new batch).
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from compare.endpoints.batch import BatchClient
from compare.endpoints.batch_state import BatchState
from compare.errors import CompareError, ConfigError, EndpointError
from compare.records import Record
from compare.runner.attempt import DeploymentRun
from compare.runner.batch_input import InputPart, built, custom_id, write_parts
from compare.runner.batch_ledger import Ledger
from compare.runner.batch_part import Part, collect, is_quota_failure, record_failure
from compare.runner.batch_records import BatchRecords
from compare.runner.measure import MAX_UNREACHABLE_IN_A_ROW, RecordMaker
from compare.runner.plan import Requests

log = logging.getLogger("compare.runner")
T = TypeVar("T")
Key = tuple[int, int, str | None]


class BatchRun:
    """One batch deployment in a run."""

    def __init__(self, run: DeploymentRun, pool: Any, ledger: Ledger, maker: RecordMaker,
                 sink: Callable[[Record], None], *, prompt_ids: list[str], run_id: str,
                 out: Path | None, cancel_on_interrupt: bool) -> None:
        self.run, self.dep, self.pool, self.ledger = run, run.dep, pool, ledger
        self.maker, self.sink, self.prompt_ids, self.run_id = maker, sink, prompt_ids, run_id
        self.out, self.cancel_on_interrupt = out, cancel_on_interrupt
        self.records = BatchRecords(run, maker)
        self.poll_s = float(self.dep.batch_poll_s or 60.0)
        self.client: BatchClient | None = None
        self.parts: list[Part] = []
        self.resubmitted = 0
        self.build_s = 0.0
        self.workdir = Path(".")
        self._part_ended = asyncio.Event()

    # -- the whole deployment ------------------------------------------------------------------

    async def execute(self, probed: Callable[[], Awaitable[None]]) -> None:
        """Adopt, submit, follow; `probed()` is awaited once the first batch exists (or could
        not be made): the scheduler's fail-fast check."""
        with tempfile.TemporaryDirectory(prefix="compare-batch-") as tmp:
            self.workdir = Path(tmp)
            try:
                await self._execute(probed)
            except asyncio.CancelledError:
                await self._interrupted()
                raise

    async def _execute(self, probed: Callable[[], Awaitable[None]]) -> None:
        wanted = {custom_id(self.prompt_ids[p], r): (p, r, None) for p, r in self.run.plan.jobs}
        try:
            self.client = self.pool.batch(self.dep)
        except CompareError as e:  # e.g. no key: every row says so
            self.run.abort = e
        except Exception as e:
            self.run.abort = ConfigError(f"cannot build a client for {self.dep.name!r}: {e}")
        if self.client is not None:
            await self._adopt(wanted)
        await self._submit(wanted, probed)
        await asyncio.gather(*(self._follow(p) for p in list(self.parts)
                               if p.state is not None and not _collected(p)))

    def _ended_signal(self) -> None:
        self._part_ended.set()
        self._part_ended = asyncio.Event()

    # -- adopt what an earlier run left running --------------------------------------------------

    async def _adopt(self, wanted: dict[str, Key]) -> None:
        digests: dict[int, str | None] = {}
        for pending in self.ledger.pending(self.dep.name):
            keys = _still_wanted(pending.lines, wanted, self.run.plan.requests, digests)
            if not keys:
                self.ledger.ended(pending, "unneeded")
                continue
            for cid in keys:
                del wanted[cid]
            part = Part(keys, ledger=pending, adopted=True, attempts=1)  # sent by an earlier run
            for cid in await self._resume(part):
                wanted[cid] = part.keys[cid]

    async def _resume(self, part: Part) -> list[str]:
        """Take up a pending part; the custom_ids to send again in a new batch."""
        assert part.ledger is not None and self.client is not None
        pending, client = part.ledger, self.client
        try:
            if pending.batch_id is None:
                found = await client.find_by_input(pending.file_id, pending.uploaded_at)
                if found is None:
                    await self._create(part)
                else:
                    part.state = found
                    self.ledger.created(pending, found.id)
            else:
                batch_id = pending.batch_id
                part.state = await retrying(self.run, lambda: client.retrieve(batch_id))
            if part.state is not None and part.state.status == "cancelling":
                await self._poll_until_ended(part)
            if part.state is not None and is_quota_failure(part.state):
                await self._create(part)
        except EndpointError as e:
            if e.http_status == 404:  # the batch (or file) is gone: send its keys anew
                self.ledger.ended(pending, "not_found")
                return list(part.keys)
            record_failure(part, e, self.records, self.sink)
            return []
        state = part.state
        assert state is not None
        log.info("resuming batch %s of %r: %s, %s", state.id, self.dep.name, state.status,
                 state.counts())
        self.parts.append(part)
        if not state.terminal:
            return []  # followed with the new ones
        return await self._collect(part, resubmit=True)

    # -- submit new parts ----------------------------------------------------------------------

    async def _submit(self, wanted: dict[str, Key],
                      probed: Callable[[], Awaitable[None]]) -> None:
        # Keys an earlier batch of this directory had (expired, cancelled, refused) that go
        # into a new one now: counted in the manifest.
        earlier = {cid for p in self.ledger.parts.values() if p.deployment == self.dep.name
                   for cid, _ in p.lines}
        self.resubmitted = sum(cid in earlier for cid in wanted)
        t0 = time.perf_counter()
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", f"{self.run_id}-{self.dep.name}")[:80]
        sources, refused = write_parts(((p, r) for p, r, _ in wanted.values()),
                                       self.run.plan.requests, self.prompt_ids, self.workdir,
                                       stem)
        self.build_s = time.perf_counter() - t0
        for bad in refused:
            self.sink(self.records.failed(bad.pidx, bad.repeat, bad.digest, bad.error, None, 0))
        first = True
        for source in sources:
            part = Part({cid: (wanted[cid][0], wanted[cid][1], digest)
                         for cid, digest in source.lines}, source=source)
            if self.run.abort is not None or self.client is None:
                for pidx, repeat, digest in part.keys.values():
                    self.sink(self.records.not_sent(pidx, repeat, digest))
            else:
                await self._upload_and_create(part)
            if first:
                first = False
                await probed()
        if first:
            await probed()

    async def _upload_and_create(self, part: Part) -> None:
        source = part.source
        assert source is not None and self.client is not None
        name = source.path.name
        client = self.client
        try:
            t0 = time.perf_counter()
            file_id = await retrying(self.run, lambda: client.upload(source.path, name))
            part.timings["upload"] = time.perf_counter() - t0
            part.ledger = self.ledger.uploaded(uuid.uuid4().hex[:12], self.dep.name, file_id,
                                               source.lines, source.size)
            await self._create(part)
        except EndpointError as e:
            record_failure(part, e, self.records, self.sink)
            return
        finally:
            _drop(source)
        self.parts.append(part)

    async def _create(self, part: Part) -> BatchState:
        """A batch from the part's uploaded file; a create whose answer was lost is found."""
        pending, client = part.ledger, self.client
        assert pending is not None and client is not None
        metadata = {"compare_run": self.run_id[:512], "compare_part": pending.part,
                    "compare_deployment": self.dep.name[:512]}

        async def create() -> BatchState:
            try:
                return await client.create(pending.file_id, metadata)
            except EndpointError as e:
                # The batch may exist though the answer was lost (a timeout, a reset).
                found = await client.find_by_input(pending.file_id, pending.uploaded_at) \
                    if e.retryable else None
                if found is None:
                    raise
                return found

        state = await retrying(self.run, create)
        self.ledger.created(pending, state.id)
        part.state, part.attempts = state, part.attempts + 1
        return state

    # -- follow each batch to its end ----------------------------------------------------------

    async def _follow(self, part: Part) -> None:
        assert part.ledger is not None
        try:
            while True:
                await self._poll_until_ended(part)
                state = part.state
                assert state is not None
                if not is_quota_failure(state) or not await self._quota_wait(part):
                    break
                await self._create(part)
            await self._collect(part, resubmit=False)
        except EndpointError as e:
            if e.http_status == 404:
                self.ledger.ended(part.ledger, "not_found")
            record_failure(part, _lost(e, part), self.records, self.sink)

    async def _poll_until_ended(self, part: Part) -> None:
        assert part.state is not None and self.client is not None
        failures = 0
        while not part.state.terminal:
            await asyncio.sleep(self.poll_s)
            try:
                state = await self.client.retrieve(part.state.id)
            except EndpointError as e:
                failures += 1
                if e.retryable and failures < MAX_UNREACHABLE_IN_A_ROW:
                    continue
                raise
            failures = 0
            if (state.status, state.completed) != (part.state.status, part.state.completed):
                log.info("batch %s of %r: %s, %s", state.id, self.dep.name, state.status,
                         state.counts())
            part.state = state

    async def _quota_wait(self, part: Part) -> bool:
        """Wait before creating a batch the quota refused: until another batch of this run
        ends, else a poll interval per attempt so far. False once attempts are used up."""
        others = [p for p in self.parts if p is not part and p.state is not None
                  and not p.state.terminal]
        if others:
            await self._part_ended.wait()
            return True
        if part.attempts >= self.run.max_attempts:
            return False
        await asyncio.sleep(self.poll_s * part.attempts)
        return True

    async def _collect(self, part: Part, *, resubmit: bool) -> list[str]:
        state = part.state
        assert state is not None and part.ledger is not None and self.client is not None
        leftovers = await collect(part, state, self.client, self.records, self.sink,
                                  self.workdir, resubmit=resubmit)
        self.ledger.ended(part.ledger, state.status)
        self._ended_signal()
        return leftovers

    # -- interrupted ---------------------------------------------------------------------------

    async def _interrupted(self) -> None:
        running = [p for p in self.parts if not _collected(p) and p.batch_id is not None]
        if not running:
            return
        cancelled = []
        if self.cancel_on_interrupt and self.client is not None:
            cancelled = await cancel_batches(self.client, running)
        print(interrupt_message(self.dep.name, running, cancelled, self.out), file=sys.stderr)

    def report(self) -> dict[str, Any]:
        """This deployment's batches, for the manifest."""
        return {"parts": [p.report() for p in self.parts], "build_s": round(self.build_s, 4),
                "resubmitted_lines": self.resubmitted, "poll_s": self.poll_s}


async def cancel_batches(client: BatchClient, parts: list[Part]) -> list[Part]:
    """Ask the service to cancel each part's batch (15 s each at most); the ones it accepted."""
    cancelled = []
    for part in parts:
        try:
            await asyncio.wait_for(client.cancel(str(part.batch_id)), 15)
            cancelled.append(part)
        except (EndpointError, TimeoutError) as e:
            log.warning("could not cancel batch %s: %s", part.batch_id, e)
    return cancelled


async def retrying(run: DeploymentRun, call: Callable[[], Awaitable[T]]) -> T:
    """`call()`, again after retryable errors, up to the run's attempts, with its backoff."""
    for attempt in range(1, run.max_attempts + 1):
        try:
            return await call()
        except EndpointError as e:
            if not e.retryable or attempt == run.max_attempts:
                raise
            await asyncio.sleep(run.backoff.delay(attempt, e.retry_after_s, run.rng))
    raise AssertionError("unreachable")


def _still_wanted(lines: list[tuple[str, str | None]], wanted: dict[str, Key],
                  requests: Requests, digests: dict[int, str | None]) -> dict[str, Key]:
    """The lines of an earlier part this run still wants: keys not finished, whose request
    did not change since (a changed one is sent anew). `digests` caches this run's."""
    keys: dict[str, Key] = {}
    for cid, stored in lines:
        key = wanted.get(cid)
        if key is None:
            continue
        if key[0] not in digests:
            digests[key[0]] = built(requests, key[0])[1]
        current = digests[key[0]]
        if stored is None or current is None or stored == current:
            keys[cid] = (key[0], key[1], stored)
    return keys


def _collected(part: Part) -> bool:
    return part.ledger is not None and part.ledger.ended is not None


def _drop(source: InputPart) -> None:
    source.path.unlink(missing_ok=True)


def _lost(error: EndpointError, part: Part) -> EndpointError:
    """A polling or download error, said in terms of the batch (which may still be running)."""
    if part.batch_id is None or error.http_status == 404:
        return error
    return type(error)(f"lost contact with batch {part.batch_id} ({error.message}); it may "
                       "still be running on the service: rerun with the same out to collect "
                       "it", http_status=error.http_status, code=error.code)


def interrupt_message(name: str, running: list[Part], cancelled: list[Part],
                      out: Path | None) -> str:
    """What an interrupted run tells the user about its batches, and how to go on."""
    ids = ", ".join(str(p.batch_id) for p in running)
    n = len(running)
    them = "it" if n == 1 else "them"
    if cancelled:
        head = (f"batch deployment {name!r}: cancelled {len(cancelled)} batch"
                f"{'es' if len(cancelled) > 1 else ''} ({ids}); finished requests are kept by "
                "the service")
        todo = "collect what finished and send the rest in a new batch"
    else:
        head = (f"batch deployment {name!r}: {n} batch{'es' if n > 1 else ''} still running "
                f"on the service ({ids})")
        todo = f"collect {them} without sending anything again"
    if out is None:
        return (f"{head}. This run has no out directory, so compare cannot take "
                f"{them} up again: fetch the results with the batch ids, and pass out=DIR "
                "next time.")
    tail = "" if cancelled else (" To cancel batches on interrupt instead, pass "
                                 "cancel_batches_on_interrupt=True (CLI: "
                                 "--cancel-batches-on-interrupt).")
    return (f"{head}. Run the same call again with out={str(out)!r} (CLI: the same command "
            f"with --out {out}) to {todo}.{tail}")
