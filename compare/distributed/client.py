"""A shard's side of the coordinator: batched round trips, and the limits the runner passes.

`CoordinatorClient` queues what the shard's requests need from the shared state (admissions,
finished requests, pauses, progress) and sends it in one `exchange` at a time: every request
waiting while a round trip is under way goes in the next one. It polls every few milliseconds
while an admission waits (places free up in other shards) and every `PROGRESS_INTERVAL_S`
otherwise, for progress and pauses.

The two limits implement the runner's `Limit` interface, so `attempt.py` runs unchanged:
- `SharedPause` (every deployment): no send while the deployment is paused by a Retry-After any
  shard received; costs no round trip per request.
- `SharedAdmission` (deployments with requests/min, tokens/min, a concurrency or a shared_limits
  group): waits for its admission and the send time the coordinator booked, then reports back.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Final, Protocol

from compare.distributed.coordinator import Admit, Done, Exchange, Grant, Reply
from compare.endpoints.base import Completion
from compare.errors import EndpointError
from compare.records import Record
from compare.runner.limits import Outcome, Ticket, token_correction
from compare.runner.measure import as_float

PROGRESS_INTERVAL_S: Final = 0.25
ADMIT_POLL_S: Final = 0.004


class Transport(Protocol):
    async def hello(self, shard: int) -> None: ...

    async def exchange(self, msg: Exchange) -> Reply: ...


class CoordinatorClient:
    """One shard's batched link to the run's `Coordinator`."""

    def __init__(self, transport: Transport, shard: int, *,
                 on_lost: Callable[[BaseException], None] | None = None) -> None:
        self.transport = transport
        self.shard = shard
        self.on_lost = on_lost
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Grant]] = {}
        self._msg = Exchange(shard)
        self._paused_until: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> CoordinatorClient:
        await self.transport.hello(self.shard)
        self._task = asyncio.ensure_future(self._pump())
        return self

    async def close(self) -> None:
        """Send what is queued (the last progress) and stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task

    # -- what limits and the progress ask -------------------------------------------------------

    async def admit(self, deployment: str, tokens: int) -> Grant:
        admit = Admit(next(self._ids), deployment, tokens)
        future: asyncio.Future[Grant] = asyncio.get_running_loop().create_future()
        self._waiting[admit.id] = future
        self._msg.admits.append(admit)
        self._wake.set()
        try:
            return await future
        except asyncio.CancelledError:
            if self._waiting.pop(admit.id, None) is not None:
                self._msg.cancels.append(admit.id)
            elif future.done() and not future.cancelled():
                self.done(Done(admit.id, deployment))  # granted meanwhile: give it back
            raise

    def done(self, done: Done) -> None:
        self._msg.dones.append(done)
        if done.retry_after_s is not None:
            self._pause_locally(done.deployment, done.retry_after_s)
        self._wake.set()

    def pause(self, deployment: str, wait_s: float) -> None:
        self._pause_locally(deployment, wait_s)
        pauses = self._msg.pauses
        pauses[deployment] = max(pauses.get(deployment, 0.0), wait_s)
        self._wake.set()

    def paused_until(self, deployment: str) -> float:
        return self._paused_until.get(deployment, 0.0)

    def count(self, rec: Record) -> None:
        """Progress of one final record (replayed ones count as cached)."""
        c = self._msg.progress.setdefault(rec.deployment, [0, 0, 0])
        c[2 if rec.cached else 0 if rec.status == "ok" else 1] += 1

    def _pause_locally(self, deployment: str, wait_s: float) -> None:
        until = time.monotonic() + wait_s
        if until > self._paused_until.get(deployment, 0.0):
            self._paused_until[deployment] = until

    # -- the round trips -----------------------------------------------------------------------

    async def _pump(self) -> None:
        try:
            while True:
                timeout = ADMIT_POLL_S if self._waiting else PROGRESS_INTERVAL_S
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                self._wake.clear()
                msg, self._msg = self._msg, Exchange(self.shard)
                reply = await self.transport.exchange(msg)
                self._apply(reply)
                if self._closing and not self._waiting:
                    return
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # the coordinator is gone (the driver was stopped)
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(ConnectionError(f"coordinator lost: {e!r}"))
            if self.on_lost is not None:
                self.on_lost(e)

    def _apply(self, reply: Reply) -> None:
        now = time.monotonic()
        for name, left in reply.pauses.items():
            until = now + left
            if until > self._paused_until.get(name, 0.0):
                self._paused_until[name] = until
        for grant in reply.grants:
            future = self._waiting.pop(grant.id, None)
            if future is not None and not future.done():
                future.set_result(grant)


# -- the limits ----------------------------------------------------------------------------------


def _retry_after(outcome: Outcome) -> float | None:
    if isinstance(outcome, EndpointError) and outcome.retry_after_s is not None \
            and outcome.retry_after_s >= 0:
        return float(outcome.retry_after_s)
    return None


class SharedPause:
    """No send while any shard's Retry-After pause for this deployment lasts."""

    def __init__(self, client: CoordinatorClient, deployment: str) -> None:
        self.client = client
        self.deployment = deployment

    def reserve(self, ticket: Ticket, not_before: float) -> float:
        return max(not_before, self.client.paused_until(self.deployment))

    async def acquire(self) -> None:
        return None

    def release(self, ticket: Ticket, outcome: Outcome) -> None:
        wait = _retry_after(outcome)
        if wait is not None:
            self.client.pause(self.deployment, wait)


class SharedAdmission:
    """A place in flight and a send time, from the coordinator; reported back after the send."""

    def __init__(self, client: CoordinatorClient, deployment: str,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.client = client
        self.deployment = deployment
        self.sleep = sleep
        self._grants: dict[int, Grant] = {}  # id(ticket) → its grant, between acquire and release
        # acquire() takes no ticket: each attempt runs in its worker's task, which calls reserve()
        # first, so the task finds its ticket here.
        self._tickets: dict[asyncio.Task[object] | None, Ticket] = {}

    def reserve(self, ticket: Ticket, not_before: float) -> float:
        self._tickets[asyncio.current_task()] = ticket
        return not_before

    async def acquire(self) -> None:
        ticket = self._tickets.pop(asyncio.current_task())
        grant = await self.client.admit(self.deployment, ticket.tokens)
        try:
            if grant.delay_s > 0:
                await self.sleep(grant.delay_s)
        except asyncio.CancelledError:
            self.client.done(Done(grant.id, self.deployment, seq=grant.seq))
            raise
        self._grants[id(ticket)] = grant

    def release(self, ticket: Ticket, outcome: Outcome) -> None:
        grant = self._grants.pop(id(ticket))
        comp = outcome if isinstance(outcome, Completion) else getattr(outcome, "partial", None)
        headers = getattr(outcome, "headers", None) or (comp.headers if comp else None) or {}
        remaining_requests = as_float(headers.get("x-ratelimit-remaining-requests"))
        remaining_tokens = as_float(headers.get("x-ratelimit-remaining-tokens"))
        self.client.done(Done(
            grant.id, self.deployment,
            token_refund=float(token_correction(ticket, outcome)),
            retry_after_s=_retry_after(outcome),
            remaining_requests=None if remaining_requests != remaining_requests
            else remaining_requests,
            remaining_tokens=None if remaining_tokens != remaining_tokens else remaining_tokens,
            expected_requests=grant.expected_requests, expected_tokens=grant.expected_tokens,
            seq=grant.seq,
        ))


