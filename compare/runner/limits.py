"""Every limit on sending, behind one small interface (`Limit`: reserve, acquire, release).

A deployment's attempt passes its limits in a fixed order (`deployment_limits`):

1. pacing limits *book* a send time: `reserve(ticket, not_before)` returns the earliest time the
   request may go (the Retry-After pause the service asked for; requests/min evenly spaced and
   within the service's sliding-window quota; tokens/min within that quota). The attempt sleeps
   once, until the latest of them.
2. concurrency limits *hold* a place while the request is on the wire: `acquire()` (a limit
   shared with other deployments on one backend first, then the run's global slots, so waiting
   for a shared backend never holds a global slot).
3. `release(ticket, outcome)` after the attempt: free the place, correct a token booking by the
   usage the service reported, start a pause when the service sent Retry-After.

Waiting here happens before `sent_at`: queueing never leaks into ttft_s or latency_s.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from compare.deployments import Deployment
from compare.endpoints.base import ChatRequest, Completion
from compare.errors import EndpointError
from compare.runner.plan import DEFAULT_MAX_TOKENS_ESTIMATE, estimate_prompt_tokens

# Per-minute quotas are enforced over short sliding windows (Azure: 10 s; the local endpoint's
# default too); client pacing mirrors one, widened by a little slack for send-time jitter.
RATE_WINDOW_S: Final = 10.0
RATE_WINDOW_SLACK_S: Final = 0.1


@dataclass
class Ticket:
    """One request passing the limits: what it costs and what it booked."""

    prompt_tokens: int  # estimated (characters / 4), corrected by usage
    max_tokens: int | None  # what the request asks for; services charge it at admission
    bookings: dict[int, Any] = field(default_factory=dict)

    @classmethod
    def for_request(cls, request: ChatRequest) -> Ticket:
        return cls(estimate_prompt_tokens(request), request.max_tokens)

    @property
    def tokens(self) -> int:
        """Tokens it counts for against tokens/min, as Azure counts them at admission."""
        return self.prompt_tokens + (self.max_tokens or DEFAULT_MAX_TOKENS_ESTIMATE)


Outcome = Completion | BaseException


class Limit(Protocol):
    def reserve(self, ticket: Ticket, not_before: float) -> float:
        """Book the request; the earliest monotonic time ≥ not_before it may be sent."""
        ...

    async def acquire(self) -> None:
        """Hold a place while the request is in flight (concurrency limits only)."""
        ...

    def release(self, ticket: Ticket, outcome: Outcome) -> None:
        """After the attempt: free the place, correct the booking, note a Retry-After."""
        ...


class TokenBucket:
    """Pacing for one rate (requests or tokens per second), pay-as-you-go.

    `reserve(n)` returns how long the caller must wait before sending — until the debt left by
    earlier callers is paid back at `rate` — and then charges `n`, letting the level go negative.
    Concurrent callers are thus spaced at exactly `rate` in arrival order without a lock, a
    request larger than any burst waits its turn instead of forever, and in any window W at most
    rate·W is sent. `capacity` is the credit an idle bucket may save up (0 = perfectly smooth).
    """

    def __init__(self, rate_per_s: float, capacity: float = 0.0, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s <= 0 or capacity < 0:
            raise ValueError("rate must be positive and capacity non-negative")
        self.rate = rate_per_s
        self.capacity = capacity
        self.clock = clock
        self.level = capacity
        self.updated = clock()

    @classmethod
    def per_minute(cls, per_minute: float, **kwargs: Any) -> TokenBucket:
        return cls(per_minute / 60.0, **kwargs)

    def _refill(self) -> None:
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now

    def reserve(self, n: float = 1.0) -> float:
        self._refill()
        wait = -self.level / self.rate if self.level < 0 else 0.0
        self.level -= n
        return wait

    def refund(self, n: float) -> None:
        self._refill()
        self.level = min(self.capacity, self.level + n)


class RateWindow:
    """Client-side mirror of a service's sliding-window quota: at most `limit` (requests or
    tokens) in any `window_s`, the way Azure and the local endpoint evaluate per-minute quotas
    (over 10 s windows). `reserve(n, not_before)` books the earliest time ≥ not_before (and ≥
    every earlier booking, so callers keep their order) at which n more fits, and returns it
    with a handle; `refund(handle, n)` corrects a booking by usage. `slack_s` widens the window a
    little so a send that leaves a few ms late never meets a booking made for an earlier one.
    A single booking larger than the limit still goes (the service will say no): never a hang.
    """

    def __init__(self, per_minute: float, *, window_s: float | None = None,
                 slack_s: float = RATE_WINDOW_SLACK_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        window_s = RATE_WINDOW_S if window_s is None else window_s
        if per_minute <= 0 or window_s <= 0:
            raise ValueError("per_minute and window_s must be positive")
        self.limit = per_minute * window_s / 60.0
        self.span = window_s + slack_s
        self.clock = clock
        self.events: deque[list[Any]] = deque()  # [time, amount, live]
        self.total = 0.0
        self.last = -math.inf

    def _pop(self) -> None:
        entry = self.events.popleft()
        entry[2] = False
        self.total -= entry[1]

    def reserve(self, n: float, not_before: float | None = None) -> tuple[float, list[Any]]:
        now = self.clock()
        t = max(now, self.last, not_before if not_before is not None else now)
        events = self.events
        while events and events[0][0] <= t - self.span:
            self._pop()
        while events and self.total + n > self.limit:
            t = max(t, events[0][0] + self.span)  # when the oldest booking leaves the window
            self._pop()
        entry = [t, n, True]
        events.append(entry)
        self.total += n
        self.last = t
        return t, entry

    def refund(self, entry: list[Any], n: float) -> None:
        if entry[2]:
            n = min(n, entry[1])
            entry[1] -= n
            self.total -= n


# -- the limits ----------------------------------------------------------------------------------


class _Pacing:
    """Base of the limits that only book a time (nothing held while in flight)."""

    async def acquire(self) -> None:
        return None

    def release(self, ticket: Ticket, outcome: Outcome) -> None:
        return None


class RetryAfterPause(_Pacing):
    """No send before the pause a 429/503 asked for: the service asked the whole deployment to
    wait, not just the request that got the answer. Waits are capped at `cap_s`."""

    def __init__(self, cap_s: float) -> None:
        self.cap_s = cap_s
        self.until = 0.0

    def reserve(self, ticket: Ticket, not_before: float) -> float:
        return max(not_before, self.until)

    def release(self, ticket: Ticket, outcome: Outcome) -> None:
        wait = getattr(outcome, "retry_after_s", None) if isinstance(outcome, EndpointError) \
            else None
        if wait is not None and wait >= 0:
            self.until = max(self.until, time.monotonic() + min(float(wait), self.cap_s))


class RequestPacing(_Pacing):
    """Requests/min: evenly spaced (no burst a 1 s window would refuse) and within the
    service's sliding-window quota."""

    def __init__(self, per_minute: float) -> None:
        self.bucket = TokenBucket.per_minute(per_minute)
        self.window = RateWindow(per_minute)

    def reserve(self, ticket: Ticket, not_before: float) -> float:
        start = max(not_before, time.monotonic() + self.bucket.reserve(1))
        return self.window.reserve(1, start)[0]


class TokenPacing(_Pacing):
    """Tokens/min: the window quota only (requests differ in size; spacing them evenly as well
    would waste the quota — measured ~5 % slower against the local limiter), booked by estimate
    and corrected by usage."""

    def __init__(self, per_minute: float) -> None:
        self.window = RateWindow(per_minute)

    def reserve(self, ticket: Ticket, not_before: float) -> float:
        start, booking = self.window.reserve(ticket.tokens, not_before)
        ticket.bookings[id(self)] = booking
        return start

    def release(self, ticket: Ticket, outcome: Outcome) -> None:
        booking = ticket.bookings.pop(id(self), None)
        delta = token_correction(ticket, outcome)
        if booking is not None and delta:
            self.window.refund(booking, delta)


def token_correction(ticket: Ticket, outcome: Outcome | None) -> int:
    """Tokens a booking over-estimated (negative: under-estimated), by the usage the service
    reported — never below what the service itself counts at admission: the completion part
    when max_tokens was unset (services charge max_tokens when it is set, so do we), and the
    prompt part only upwards (services estimate prompts their own way, roughly characters / 4;
    a smaller reported usage does not free their quota)."""
    comp = outcome if isinstance(outcome, Completion) else getattr(outcome, "partial", None)
    if not isinstance(comp, Completion):
        return 0
    delta = 0
    if comp.prompt_tokens is not None:
        delta += min(0, ticket.prompt_tokens - comp.prompt_tokens)
    if ticket.max_tokens is None and comp.completion_tokens is not None:
        delta += DEFAULT_MAX_TOKENS_ESTIMATE - comp.completion_tokens
    return delta


class ConcurrencyLimit:
    """At most n requests in flight among those that share this limit."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._slots = asyncio.Semaphore(n)

    def reserve(self, ticket: Ticket, not_before: float) -> float:
        return not_before

    async def acquire(self) -> None:
        await self._slots.acquire()

    def release(self, ticket: Ticket, outcome: Outcome) -> None:
        self._slots.release()


def deployment_limits(
    dep: Deployment,
    *,
    retry_after_cap_s: float,
    shared: ConcurrencyLimit | None = None,
    global_slots: ConcurrencyLimit | None = None,
) -> list[Limit]:
    """A deployment's limits in the order an attempt passes them (see the module docstring)."""
    limits: list[Limit] = [RetryAfterPause(retry_after_cap_s)]
    if dep.requests_per_minute:
        limits.append(RequestPacing(dep.requests_per_minute))
    if dep.tokens_per_minute:
        limits.append(TokenPacing(dep.tokens_per_minute))
    limits += [limit for limit in (shared, global_slots) if limit is not None]
    return limits


def capacity_group_limits(deployments: list[Deployment], taken: set[str]
                          ) -> dict[str, ConcurrencyLimit]:
    """Deployments declared to share one capacity (`capacity_group`: one loaded model) get one
    limit of its size, unless `taken` (placed by shared_limits already). Waiting for it is
    queueing before the send, never part of ttft_s."""
    groups: dict[str, list[Deployment]] = {}
    for d in deployments:
        if d.capacity_group and d.name not in taken:
            groups.setdefault(d.capacity_group, []).append(d)
    out: dict[str, ConcurrencyLimit] = {}
    for members in groups.values():
        sizes = [d.max_concurrent_requests for d in members if d.max_concurrent_requests]
        if len(members) > 1 and sizes:
            limit = ConcurrencyLimit(min(sizes))
            out.update({d.name: limit for d in members})
    return out
