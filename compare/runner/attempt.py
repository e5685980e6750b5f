"""One job (prompt × deployment × repeat) → one Record, in three layers, like httpx's send:

- `DeploymentRun.send_with_retries`: attempts until success, a final error, or the deployment is
  stopped; waits `Backoff` between attempts (the service's Retry-After wins).
- `DeploymentRun.send_paced`: through the deployment's limits (`limits.py`): book a send time,
  sleep, hold the concurrency places, send once, release.
- `DeploymentRun.send_once`: the adapter call; an answer without finish_reason becomes an
  IncompleteStreamError and an adapter bug costs one row, never the run.

The runner owns retries (SDK retries are off): retryable errors (429, 408/5xx, transport,
timeouts, incomplete streams) are retried up to `max_attempts`. A refused key (401/403, or no
key) stops that deployment at once, and so do repeated connection failures with no HTTP answer
in between: the rest of its rows are written as not sent, other deployments go on.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from compare.endpoints.base import Completion, Endpoint
from compare.errors import (
    AuthenticationError,
    CredentialError,
    EndpointError,
    IncompleteStreamError,
    TransportError,
)
from compare.records import Record
from compare.runner.limits import Limit, Outcome, Ticket
from compare.runner.measure import MAX_UNREACHABLE_IN_A_ROW, RecordMaker, Tries
from compare.runner.plan import DeploymentPlan, Job


@dataclass(frozen=True)
class Backoff:
    """Wait before retry n (n = 1 after the first failed attempt).

    The service's Retry-After (capped at `max_retry_after_s`) wins; otherwise full jitter:
    uniform(0, min(cap_s, base_s · 2^(n−1))).
    """

    base_s: float = 0.5
    cap_s: float = 30.0
    max_retry_after_s: float = 120.0

    def delay(
        self, retry: int, retry_after_s: float | None, rng: random.Random | None = None
    ) -> float:
        if retry_after_s is not None and retry_after_s >= 0:
            return min(float(retry_after_s), self.max_retry_after_s)
        ceiling = min(self.cap_s, self.base_s * (2 ** (retry - 1)))
        return (rng or random).uniform(0.0, ceiling)


class DeploymentRun:
    """One deployment in a run: its endpoint, limits and plan, and whether it was stopped."""

    def __init__(self, plan: DeploymentPlan, limits: list[Limit], records: RecordMaker, *,
                 max_attempts: int, backoff: Backoff, rng: random.Random) -> None:
        self.plan = plan
        self.dep = plan.deployment
        self.limits = limits
        self.records = records
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.rng = rng
        self.endpoint: Endpoint | None = None
        self.abort: BaseException | None = None  # why this deployment was stopped
        self._unreachable = 0

    async def send_with_retries(self, job: Job) -> Record:
        """The final Record of one job."""
        ticket = Ticket.for_request(job.request)
        tries = Tries()
        last: tuple[BaseException, float, float] | None = None
        while True:
            if self.abort is not None:
                if last is not None:  # sent before the deployment was stopped: its own error
                    return self.records.error(self, job, last[0], tries, *last[1:])
                return self.records.not_sent(self, job, tries)
            outcome, sent, ended = await self.send_paced(job, ticket)
            if outcome is None:  # stopped while waiting for a send time
                continue
            tries.attempts += 1
            if tries.first_sent is None:
                tries.first_sent = sent
            self._note(outcome)
            if isinstance(outcome, Completion):
                return self.records.ok(self, job, outcome, tries)
            retryable = isinstance(outcome, EndpointError) and outcome.retryable
            if not retryable or tries.attempts >= self.max_attempts or self.abort is not None:
                return self.records.error(self, job, outcome, tries, sent, ended)
            assert isinstance(outcome, EndpointError)
            last = (outcome, sent, ended)
            delay = self.backoff.delay(tries.attempts, outcome.retry_after_s, self.rng)
            tries.backoff_s += delay
            await asyncio.sleep(delay)

    async def send_paced(self, job: Job, ticket: Ticket) -> tuple[Outcome | None, float, float]:
        """(outcome, sent_at, ended_at) of one attempt through the limits; outcome None when the
        deployment was stopped while waiting."""
        now = time.monotonic()
        start = now
        for limit in self.limits:
            start = limit.reserve(ticket, start)
        if start > now:
            await asyncio.sleep(start - now)
        if self.abort is not None:
            return None, 0.0, 0.0
        held: list[Limit] = []
        outcome: Outcome = asyncio.CancelledError()  # what a cancelled attempt tells its limits
        sent = 0.0
        try:
            for limit in self.limits:
                await limit.acquire()
                held.append(limit)
            outcome, sent = await self.send_once(job)
        finally:
            ended = time.perf_counter()
            for limit in reversed(held):
                limit.release(ticket, outcome)
        return outcome, sent, ended

    async def send_once(self, job: Job) -> tuple[Outcome, float]:
        """(Completion or error, sent_at) of one adapter call."""
        assert self.endpoint is not None
        t_send = time.perf_counter()
        try:
            if job.call is not None:
                comp = await job.call(self.endpoint)
            else:
                comp = await self.endpoint.chat(job.request)
        except EndpointError as e:
            partial = e.partial
            return e, partial.sent_at if isinstance(partial, Completion) else t_send
        except Exception as e:  # an adapter bug must cost one row, never the run
            return e, t_send
        if comp.finish_reason is None:
            return IncompleteStreamError("the response ended without finish_reason",
                                         partial=comp), comp.sent_at
        return comp, comp.sent_at

    def _note(self, outcome: Outcome) -> None:
        """Stop the deployment on a refused key or when it keeps giving no HTTP answer."""
        if isinstance(outcome, AuthenticationError | CredentialError) and self.abort is None:
            self.abort = outcome
        if isinstance(outcome, TransportError):
            self._unreachable += 1
            if self._unreachable >= MAX_UNREACHABLE_IN_A_ROW and self.abort is None:
                self.abort = outcome
        else:
            self._unreachable = 0
