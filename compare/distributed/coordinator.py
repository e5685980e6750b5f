"""The state every shard of a run shares: each deployment's quota, pauses and progress.

One `Coordinator` per run lives in one place (the driver process for `workers=N`, an actor under
Ray); shards talk to it in batches (`exchange`), so one round trip serves every request a shard
has waiting. It books send times with the same pacing the in-process runner uses
(`compare.runner.limits`: requests/min evenly spaced and within the service's sliding window,
tokens/min within the window), so N shards on one deployment send as one runner would.

What it keeps per deployment:
- admissions: a request asks to be sent (`Admit`); it is granted, first come first served across
  shards, once the deployment (and its `shared_limits` group) has a place in flight, with a send
  time booked in the rate windows (`Grant.delay_s` from now);
- corrections: a finished request (`Done`) frees its place, gives back the tokens its booking
  over-estimated, starts a pause for everyone when the service sent Retry-After, and, when the
  service's `x-ratelimit-remaining-*` says less is left than our books expect (someone else uses
  the quota), books the difference so the shards slow down before they see 429s;
- progress: per shard and deployment, done / failed / replayed counts (a restarted shard reports
  its keys again, so its counts start over).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from compare.runner.limits import RateWindow, TokenBucket

# Our books count more than the service does (a slightly wider window, per-minute quotas not
# rounded up), so the service reports at least what we expect; a shortfall beyond this margin
# means the quota is used elsewhere.
REMAINING_MARGIN: Final = 0.02


@dataclass(frozen=True)
class Quota:
    """A deployment's limits that hold across all shards together."""

    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    max_in_flight: int | None = None
    group: str | None = None  # a shared_limits group (several deployments on one backend)

    @property
    def admits(self) -> bool:
        """Whether each send needs an admission (else only pauses and progress are shared)."""
        return bool(self.requests_per_minute or self.tokens_per_minute or self.max_in_flight
                    or self.group)


@dataclass(frozen=True)
class Admit:
    id: int
    deployment: str
    tokens: int = 0


@dataclass(frozen=True)
class Grant:
    id: int
    delay_s: float
    expected_requests: float = math.nan  # what x-ratelimit-remaining-requests should say
    expected_tokens: float = math.nan
    seq: int = 0  # order of grants: a correction covers what was granted before it


@dataclass(frozen=True)
class Done:
    """A granted request finished (or was given up): its place, booking and what it learned."""

    id: int
    deployment: str
    token_refund: float = 0.0
    retry_after_s: float | None = None
    remaining_requests: float | None = None
    remaining_tokens: float | None = None
    expected_requests: float = math.nan
    expected_tokens: float = math.nan
    seq: int = 0


@dataclass
class Exchange:
    """One shard's batch: new admissions, finished ones, pauses seen, progress since last."""

    shard: int
    admits: list[Admit] = field(default_factory=list)
    dones: list[Done] = field(default_factory=list)
    cancels: list[int] = field(default_factory=list)  # admissions no longer wanted
    pauses: dict[str, float] = field(default_factory=dict)  # deployment → Retry-After seconds
    progress: dict[str, list[int]] = field(default_factory=dict)  # → [ok, failed, cached] deltas


@dataclass
class Reply:
    grants: list[Grant] = field(default_factory=list)
    pauses: dict[str, float] = field(default_factory=dict)  # deployment → seconds still paused


class _Deployment:
    def __init__(self, quota: Quota, clock: Callable[[], float]) -> None:
        self.quota = quota
        rpm, tpm = quota.requests_per_minute, quota.tokens_per_minute
        self.bucket = TokenBucket.per_minute(rpm, clock=clock) if rpm else None
        self.requests = RateWindow(rpm, clock=clock) if rpm else None
        self.tokens = RateWindow(tpm, clock=clock) if tpm else None
        self.in_flight = 0
        self.pause_until = 0.0
        self.pending: deque[tuple[int, Admit]] = deque()
        # The grant sequence number at the last correction of each window: answers to requests
        # granted before it report a shortfall that correction already booked.
        self.corrected = {"requests": -1, "tokens": -1}


class Coordinator:
    """Shared limits and progress of one run (pure state; see the module docstring)."""

    def __init__(self, quotas: dict[str, Quota], groups: dict[str, int] | None = None, *,
                 retry_after_cap_s: float = 120.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.cap_s = retry_after_cap_s
        self.deps = {name: _Deployment(q, clock) for name, q in quotas.items()}
        self.group_limit = dict(groups or {})
        self.group_in_flight = dict.fromkeys(self.group_limit, 0)
        self.outbox: dict[int, list[Grant]] = {}
        self.bookings: dict[tuple[int, int], list[Any] | None] = {}  # (shard, id) → token booking
        self.held: dict[tuple[int, int], str] = {}  # (shard, id) → deployment holding a place
        self.progress: dict[int, dict[str, list[int]]] = {}
        self.seq = 0

    # -- shards --------------------------------------------------------------------------------

    def hello(self, shard: int) -> None:
        """A shard (re)starts: whatever an earlier life of it held is freed, its counts reset
        (it reports each of its keys again)."""
        self.forget(shard)
        self.progress.pop(shard, None)

    def forget(self, shard: int) -> None:
        """A shard is gone (ended or killed): free its places, drop its bookings and requests."""
        for key in [k for k in self.held if k[0] == shard]:
            self._free(key)
        for key in [k for k in self.bookings if k[0] == shard]:
            del self.bookings[key]
        for dep in self.deps.values():
            dep.pending = deque(p for p in dep.pending if p[0] != shard)
        self.outbox.pop(shard, None)

    def exchange(self, msg: Exchange) -> Reply:
        """Apply a shard's batch; its grants so far and the current pauses."""
        now = self.clock()
        for done in msg.dones:
            self._done(msg.shard, done, now)
        for dep_name, wait in msg.pauses.items():
            self._pause(dep_name, wait, now)
        cancelled = set(msg.cancels)
        for admit in msg.admits:
            if admit.id not in cancelled:
                self.deps[admit.deployment].pending.append((msg.shard, admit))
        if cancelled:
            for dep in self.deps.values():
                dep.pending = deque(p for p in dep.pending
                                    if p[0] != msg.shard or p[1].id not in cancelled)
        counts = self.progress.setdefault(msg.shard, {})
        for dep_name, delta in msg.progress.items():
            c = counts.setdefault(dep_name, [0, 0, 0])
            for i, n in enumerate(delta):
                c[i] += n
        self._grant(now)
        pauses = {n: d.pause_until - now for n, d in self.deps.items() if d.pause_until > now}
        return Reply(self.outbox.pop(msg.shard, []), pauses)

    def totals(self) -> dict[str, list[int]]:
        """[ok, failed, cached] per deployment over all shards."""
        out: dict[str, list[int]] = {}
        for counts in self.progress.values():
            for dep_name, c in counts.items():
                t = out.setdefault(dep_name, [0, 0, 0])
                for i, n in enumerate(c):
                    t[i] += n
        return out

    # -- admissions ----------------------------------------------------------------------------

    def _has_place(self, dep: _Deployment) -> bool:
        q = dep.quota
        if q.max_in_flight is not None and dep.in_flight >= q.max_in_flight:
            return False
        return q.group is None or self.group_in_flight[q.group] < self.group_limit[q.group]

    def _grant(self, now: float) -> None:
        for dep in self.deps.values():
            while dep.pending and self._has_place(dep):
                shard, admit = dep.pending.popleft()
                self.outbox.setdefault(shard, []).append(self._book(shard, dep, admit, now))

    def _book(self, shard: int, dep: _Deployment, admit: Admit, now: float) -> Grant:
        start = max(now, dep.pause_until)
        expected_requests = expected_tokens = math.nan
        if dep.bucket is not None and dep.requests is not None:
            start = dep.requests.reserve(1, max(start, now + dep.bucket.reserve(1)))[0]
            expected_requests = dep.requests.limit - dep.requests.total
        booking = None
        if dep.tokens is not None:
            start, booking = dep.tokens.reserve(admit.tokens, start)
            expected_tokens = dep.tokens.limit - dep.tokens.total
        dep.in_flight += 1
        if dep.quota.group is not None:
            self.group_in_flight[dep.quota.group] += 1
        self.held[(shard, admit.id)] = admit.deployment
        self.bookings[(shard, admit.id)] = booking
        self.seq += 1
        return Grant(admit.id, start - now, expected_requests, expected_tokens, self.seq)

    def _free(self, key: tuple[int, int]) -> None:
        name = self.held.pop(key, None)
        if name is None:
            return
        dep = self.deps[name]
        dep.in_flight -= 1
        if dep.quota.group is not None:
            self.group_in_flight[dep.quota.group] -= 1

    # -- corrections ---------------------------------------------------------------------------

    def _done(self, shard: int, done: Done, now: float) -> None:
        key = (shard, done.id)
        self._free(key)
        booking = self.bookings.pop(key, None)
        dep = self.deps[done.deployment]
        if booking is not None and dep.tokens is not None and done.token_refund:
            dep.tokens.refund(booking, done.token_refund)
        if done.retry_after_s is not None:
            self._pause(done.deployment, done.retry_after_s, now)
        for kind, window, expected, reported in (
                ("requests", dep.requests, done.expected_requests, done.remaining_requests),
                ("tokens", dep.tokens, done.expected_tokens, done.remaining_tokens)):
            if done.seq > dep.corrected[kind] and self._correct(window, expected, reported, now):
                dep.corrected[kind] = self.seq

    def _pause(self, name: str, wait: float, now: float) -> None:
        dep = self.deps.get(name)
        if dep is not None and wait >= 0:
            dep.pause_until = max(dep.pause_until, now + min(wait, self.cap_s))

    @staticmethod
    def _correct(window: RateWindow | None, expected: float, reported: float | None,
                 now: float) -> bool:
        """Book what the service says is used beyond our books (someone else's traffic)."""
        if window is None or reported is None or math.isnan(expected):
            return False
        shortfall = expected - reported
        if shortfall < max(1.0, REMAINING_MARGIN * window.limit):
            return False
        window.reserve(shortfall, now)
        return True
