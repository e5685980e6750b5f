"""The runner: fan a prompt set out to deployments, retry, time, checkpoint, collect records.

Scheduling. Each deployment gets its own pool of workers (its concurrency limit) pulling from its
own job list, so a slow, throttled or failing deployment only ever occupies its own workers and
never starves the others. A global limit caps the total in flight. A worker waits for pacing
(requests/min: evenly spaced; requests/min and tokens/min: booked against a mirror of the
service's sliding-window quota; and any Retry-After pause of its deployment) *before*
it takes a global slot, and sleeps for backoff *after* releasing it, so slots are only held while
a request is really on the wire. Timestamps are taken by the endpoint adapter just around the SDK
call, after the slot is held: queueing never leaks into ttft_s or latency_s.

Retries are ours (SDK retries are off): retryable errors (429, 408/5xx, transport, timeouts,
incomplete streams) are retried up to `max_attempts`, honouring the service's Retry-After, else
exponential backoff with full jitter. A refused key (401/403) stops that deployment at once: the
request's row says so, the rest of its rows are written as not sent, other deployments go on.

Each final record is appended to `out/records.jsonl` as it completes; running again with the
same `out` replays finished keys (status ok or content_filtered) as `cached` rows and sends only
the rest. Each checkpoint line also carries `request_hash` (deployment, messages, parameters): a
finished key whose request changed since (new prompt text under the same id, other parameters)
is sent again instead of replayed.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import math
import os
import queue
import random
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any, Final

import numpy as np

from compare.checkpoint import REQUEST_HASH_KEY, Checkpoint, latest_by_key
from compare.deployments import Deployment
from compare.deployments_file import load_deployments, local_deployments
from compare.endpoints.base import ChatRequest, Completion, Endpoint
from compare.errors import (
    AuthenticationError,
    CompareError,
    ConfigError,
    ContentFilterError,
    CredentialError,
    EndpointError,
    IncompleteStreamError,
)
from compare.prompts import Prompt, PromptSet, load_prompts
from compare.records import NAN, Record
from compare.results import (
    MANIFEST_FILE,
    RESULTS_FILE,
    ColumnBuffer,
    Results,
    package_versions,
    write_manifest,
)

# A checkpointed key with one of these statuses is finished: a rerun replays it. Anything else
# (errors, timeouts, throttling, incomplete streams) is sent again.
DONE_STATUSES: Final = frozenset({"ok", "content_filtered"})
REQUEST_PARAMS: Final = ("temperature", "max_tokens", "top_p", "seed", "stop")
OVERRIDE_PARAMS: Final = (*REQUEST_PARAMS, "system", "extra")
# Token estimate for tokens/min pacing when neither the call nor the deployment sets max_tokens.
DEFAULT_MAX_TOKENS_ESTIMATE: Final = 256
CHARS_PER_TOKEN: Final = 4
PROGRESS_POSTFIX_INTERVAL_S: Final = 0.25
# Per-minute quotas are enforced over short sliding windows (Azure: 10 s; the local endpoint's
# default too); client pacing mirrors one, widened by a little slack for send-time jitter.
RATE_WINDOW_S = 10.0
RATE_WINDOW_SLACK_S = 0.1


# -- pure parts: backoff, pacing, percentiles ----------------------------------------------------


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


class TokenBucket:
    """Pacing for one limit (requests or tokens per second), pay-as-you-go.

    `reserve(n)` returns how long the caller must wait before sending — until the debt left by
    earlier callers is paid back at `rate` — and then charges `n`, letting the level go negative.
    Concurrent callers are thus spaced at exactly `rate` in arrival order without a lock, a
    request larger than any burst waits its turn instead of forever, and in any window W at most
    rate·W is sent: what a service's sliding-window limit admits, so pacing causes no 429s.
    `capacity` is the credit an idle bucket may save up (a burst); 0 = perfectly smooth.
    `refund(n)` corrects an estimate once the real usage is known (negative n charges more).
    """

    def __init__(
        self, rate_per_s: float, capacity: float = 0.0, *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
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

    def __init__(
        self, per_minute: float, *, window_s: float = 10.0, slack_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
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


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default) of an already sorted list."""
    n = len(sorted_values)
    if n == 0:
        return NAN
    if n == 1:
        return sorted_values[0]
    pos = (n - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def estimate_prompt_tokens(request: ChatRequest) -> int:
    """Rough prompt size (characters / 4), corrected by usage once the answer is in."""
    chars = 0
    for m in request.messages:
        content = m.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(str(p.get("text", ""))) for p in content if isinstance(p, dict))
    return chars // CHARS_PER_TOKEN + 1


def estimate_tokens(request: ChatRequest) -> int:
    """Tokens a request counts for against tokens/min, as Azure counts them at admission:
    prompt + max_tokens (a default when unset)."""
    return estimate_prompt_tokens(request) + (request.max_tokens or DEFAULT_MAX_TOKENS_ESTIMATE)


# -- records from completions --------------------------------------------------------------------


def _num(value: Any) -> float:
    if value is None or value == "":
        return NAN
    try:
        return float(value)
    except (TypeError, ValueError):
        return NAN


def _utc_iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="microseconds")


def fill_timing(rec: Record, comp: Completion) -> None:
    """ttft_s, latency_s, decode_tps and inter-token gaps of one attempt, per DESIGN.md."""
    sent = comp.sent_at
    if comp.ended_at:
        rec.latency_s = comp.ended_at - sent
    if comp.first_token_at is not None:
        rec.ttft_s = comp.first_token_at - sent
        ct = comp.completion_tokens
        decode_s = rec.latency_s - rec.ttft_s
        if ct is not None and ct > 1 and decode_s > 0:
            rec.decode_tps = (ct - 1) / decode_s
    times = comp.chunk_times
    if len(times) > 1:
        gaps = sorted(b - a for a, b in pairwise(times))
        rec.itl_p50_s = percentile(gaps, 50)
        rec.itl_p90_s = percentile(gaps, 90)


def fill_headers(rec: Record, headers: Mapping[str, str]) -> None:
    if not headers:
        return
    get = headers.get
    rec.request_id = get("apim-request-id") or get("x-request-id") or get("x-ms-request-id")
    rec.region = get("x-ms-region")
    rec.ratelimit_remaining_requests = _num(get("x-ratelimit-remaining-requests"))
    rec.ratelimit_remaining_tokens = _num(get("x-ratelimit-remaining-tokens"))


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return json.dumps(str(value))


def fill_completion(rec: Record, comp: Completion, dep: Deployment) -> None:
    """Output, usage, cost, headers and timing of a completion (final or partial)."""
    rec.output = comp.text
    rec.finish_reason = comp.finish_reason
    rec.model = comp.model
    rec.streamed = comp.streamed
    if comp.prompt_tokens is not None:
        rec.prompt_tokens = float(comp.prompt_tokens)
    if comp.completion_tokens is not None:
        rec.completion_tokens = float(comp.completion_tokens)
    if comp.content_filter is not None:
        rec.content_filter = _json_text(comp.content_filter)
    fill_headers(rec, comp.headers)
    fill_timing(rec, comp)
    rec.cost = cost(dep, comp.prompt_tokens, comp.completion_tokens)


def cost(dep: Deployment, prompt_tokens: int | None, completion_tokens: int | None) -> float:
    pin, pout = dep.price_input_per_1k, dep.price_output_per_1k
    if pin is None and pout is None:
        return NAN
    total = 0.0
    for price, tokens in ((pin, prompt_tokens), (pout, completion_tokens)):
        if price is not None:
            if tokens is None:
                return NAN  # a price without usage is unknown, never a guess
            total += price * tokens / 1000.0
    return total


# -- inputs --------------------------------------------------------------------------------------


def as_deployments(obj: Any) -> list[Deployment]:
    """A Deployment, a list of them, a deployments YAML path, or a local endpoint object."""
    if isinstance(obj, Deployment):
        deps = [obj]
    elif isinstance(obj, str | os.PathLike):
        deps = load_deployments(obj)
    elif hasattr(obj, "deployment_names") and hasattr(obj, "url"):
        deps = local_deployments(obj)
    elif isinstance(obj, Iterable):
        deps = list(obj)
        bad = [d for d in deps if not isinstance(d, Deployment)]
        if bad:
            raise ConfigError(
                f"deployments must be Deployment objects, got {type(bad[0]).__name__}",
                field="deployments",
            )
    else:
        raise ConfigError(
            "deployments: pass a Deployment, a list of them, a path to a deployments YAML file "
            f"or a local endpoint; got {type(obj).__name__}",
            field="deployments",
        )
    if not deps:
        raise ConfigError("no deployments to run", field="deployments")
    seen: set[str] = set()
    for d in deps:
        if d.name in seen:
            raise ConfigError(f"duplicate deployment name {d.name!r}", field="deployments")
        seen.add(d.name)
    return deps


def _check_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(overrides) - set(OVERRIDE_PARAMS))
    if unknown:
        raise TypeError(
            f"unknown argument(s) {', '.join(unknown)}; request parameters are "
            f"{', '.join(OVERRIDE_PARAMS)} (service-specific ones go in extra={{...}})"
        )
    out = {k: v for k, v in overrides.items() if v is not None}
    if isinstance(out.get("stop"), str):
        out["stop"] = [out["stop"]]
    return out


def build_request(
    prompt: Prompt, dep: Deployment, overrides: Mapping[str, Any], stream: bool
) -> ChatRequest:
    """The request for one prompt on one deployment: call overrides win over deployment defaults."""
    params = dep.defaults()
    extra = dict(params.pop("extra", {}))
    extra.update(overrides.get("extra") or {})
    for name in REQUEST_PARAMS:
        if name in overrides:
            params[name] = overrides[name]
    messages = prompt.messages
    system = overrides.get("system", dep.system)
    if system and not any(m.get("role") in ("system", "developer") for m in messages):
        messages = [{"role": "system", "content": system}, *messages]
    return ChatRequest(
        deployment=dep.deployment or dep.name,
        messages=messages,
        stream=stream,
        extra=extra,
        **params,
    )


def request_hash(request: ChatRequest) -> str:
    """A short fingerprint of what decides the answer: deployment, messages and parameters.

    Stored with each record in the checkpoint (not a record column) so that a resumed run
    re-sends a key whose prompt text or parameters changed under the same id. `stream` is left
    out: it changes how the answer arrives, not the answer.
    """
    body = {
        "deployment": request.deployment, "messages": request.messages,
        "temperature": request.temperature, "max_tokens": request.max_tokens,
        "top_p": request.top_p, "seed": request.seed, "stop": request.stop,
        "extra": request.extra,
    }
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=repr)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


# -- progress ------------------------------------------------------------------------------------


class _Progress:
    """tqdm.auto bar (terminal or notebook) with done/error counts per deployment."""

    def __init__(self, total: int, names: list[str], enabled: bool, initial: int = 0) -> None:
        self.counts = {n: [0, 0] for n in names}
        self.bar: Any = None
        self._next_postfix = 0.0
        if enabled:
            make = _BAR_FACTORY.get()
            if make is None:
                from tqdm.auto import tqdm as make
            self.bar = make(total=total, initial=initial, desc="compare", unit="req",
                            dynamic_ncols=True)

    def add(self, rec: Record) -> None:
        c = self.counts[rec.deployment]
        c[0] += 1
        if rec.status != "ok":
            c[1] += 1
        bar = self.bar
        if bar is not None:
            if not rec.cached:
                bar.update(1)
            now = time.monotonic()
            if now >= self._next_postfix:
                self._next_postfix = now + PROGRESS_POSTFIX_INTERVAL_S
                bar.set_postfix_str(self.postfix(), refresh=False)

    def postfix(self) -> str:
        return " | ".join(f"{n} {d} done/{e} err" for n, (d, e) in self.counts.items())

    def close(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(self.postfix(), refresh=False)
            self.bar.close()
            self.bar = None


class _BarRelay:
    """A tqdm stand-in for a run on a worker thread: its calls are queued for the caller's thread.

    In Jupyter, `run()` runs the event loop on a worker thread, but a tqdm.auto bar is an
    ipywidget: it should be created (displayed in the cell) and updated from the kernel's main
    thread, which is the thread waiting in `run()`. So the worker only queues (method, args)
    here and the waiting thread creates the real bar and applies the calls (`pump`).
    """

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[tuple[str, tuple[Any, ...], dict[str, Any]]] = \
            queue.SimpleQueue()
        self._bar: Any = None

    def __call__(self, **kwargs: Any) -> _BarRelay:  # the factory: "create the bar"
        self._calls.put(("__init__", (), kwargs))
        return self

    def update(self, n: int = 1) -> None:
        self._calls.put(("update", (n,), {}))

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self._calls.put(("set_postfix_str", (s,), {"refresh": refresh}))

    def close(self) -> None:
        self._calls.put(("close", (), {}))

    def pump(self) -> None:
        """On the caller's thread: create the real bar / apply queued calls."""
        while True:
            try:
                name, args, kwargs = self._calls.get_nowait()
            except queue.Empty:
                return
            if name == "__init__":
                from tqdm.auto import tqdm

                self._bar = tqdm(**kwargs)
            elif self._bar is not None:
                getattr(self._bar, name)(*args, **kwargs)
                if name == "close":
                    self._bar = None


# Set on run()'s worker thread: progress bars are relayed to the thread that called run().
_BAR_FACTORY: contextvars.ContextVar[Callable[..., Any] | None] = contextvars.ContextVar(
    "compare_bar_factory", default=None)


# -- the run -------------------------------------------------------------------------------------


class _DeploymentRun:
    """Per-deployment state: its endpoint, job list, workers' limit, pacing, abort flag."""

    def __init__(self, dep: Deployment, index: int, limit: int) -> None:
        self.dep = dep
        self.index = index
        self.limit = limit
        self.endpoint: Endpoint | None = None
        self.jobs: Iterator[tuple[int, int]] = iter(())
        self.n_jobs = 0
        rpm, tpm = dep.requests_per_minute, dep.tokens_per_minute
        # Requests: evenly spaced (no burst a 1 s window would refuse) within the window quota.
        # Tokens: the window quota only; requests differ in size, and spacing them evenly as
        # well would waste the quota (measured ~5% slower in a simulation of the local limiter).
        self.requests = TokenBucket.per_minute(rpm) if rpm else None
        window = {"window_s": RATE_WINDOW_S, "slack_s": RATE_WINDOW_SLACK_S}
        self.request_window = RateWindow(rpm, **window) if rpm else None
        self.tokens = RateWindow(tpm, **window) if tpm else None
        self.paused_until = 0.0  # monotonic time before which no request is sent (Retry-After)
        self.abort: EndpointError | CompareError | None = None
        # A limit this deployment shares with others (one backend behind several names).
        self.shared: asyncio.Semaphore | None = None


class _Run:
    def __init__(
        self,
        prompts: PromptSet,
        deps: list[Deployment],
        *,
        repeats: int,
        out: Path | None,
        run_id: str | None,
        stream: bool,
        concurrency: int,
        max_attempts: int,
        progress: bool,
        on_record: Callable[[Record], Any] | None,
        backoff: Backoff,
        pool: Any,
        overrides: dict[str, Any],
        shared_limits: list[tuple[frozenset[str], int]] | None = None,
    ) -> None:
        self.shared_limits = shared_limits or []
        self.prompts = prompts
        self.deps = deps
        self.repeats = repeats
        self.out = out
        self.stream = stream
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.progress_enabled = progress
        self.on_record = on_record
        self.backoff = backoff
        self.own_pool = pool is None
        self.pool = pool
        self.overrides = overrides
        self.rng = random.Random()
        self.buffer = ColumnBuffer()
        self.checkpoint: Checkpoint | None = None
        self.run_id = run_id
        self.started_at = datetime.now(UTC)
        # perf_counter → epoch, for started_at of each attempt.
        self.epoch_offset = time.time() - time.perf_counter()
        self.global_slots: asyncio.Semaphore | None = None
        self.progress: _Progress | None = None
        self._secrets: list[str] = []
        self._callback_failed = False
        self._hashes: dict[tuple[str, int], str | None] = {}
        self.changed = 0  # finished keys re-sent because their request changed (resume)

    # -- setup ---------------------------------------------------------------------------------

    def _limits(self) -> list[int]:
        # Without an explicit per-deployment limit each gets an equal share of the global one, so
        # a slow deployment can never hold every global slot.
        share = max(1, math.ceil(self.concurrency / len(self.deps)))
        return [d.concurrency or share for d in self.deps]

    def _resume(self) -> dict[tuple[str, str, int], dict[str, Any]]:
        assert self.out is not None
        self.checkpoint = Checkpoint(self.out)
        rows = self.checkpoint.load()
        if self.run_id is None:
            self.run_id = _previous_run_id(self.out, rows)
        return {k: r for k, r in latest_by_key(rows).items() if r.get("status") in DONE_STATUSES}

    def _plan(self, done: Mapping[tuple[str, str, int], dict[str, Any]]) -> list[_DeploymentRun]:
        runs = []
        ids = self.prompts.ids
        for i, (dep, limit) in enumerate(zip(self.deps, self._limits(), strict=True)):
            dr = _DeploymentRun(dep, i, limit)
            # Repeats outermost: a deployment's repeats of one prompt are spread over the run.
            todo = [
                (p, r)
                for r in range(self.repeats)
                for p, pid in enumerate(ids)
                if (pid, dep.name, r) not in done
            ]
            dr.jobs = iter(todo)
            dr.n_jobs = len(todo)
            runs.append(dr)
        for names, limit in self.shared_limits:
            shared = asyncio.Semaphore(limit)
            for dr in runs:
                if dr.dep.name in names:
                    dr.shared = shared
        return runs

    def _collect_secrets(self) -> None:
        for d in self.deps:
            for s in (d.api_key, os.environ.get(d.key_env)):
                if s and len(s) >= 4:
                    self._secrets.append(s)

    def scrub(self, text: str | None) -> str | None:
        if text:
            for s in self._secrets:
                if s in text:
                    text = text.replace(s, "***")
        return text

    def manifest(self, status: str) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": status,
            "started_at": self.started_at.isoformat(),
            "finished_at": datetime.now(UTC).isoformat() if status != "running" else None,
            "config": {
                "repeats": self.repeats,
                "stream": self.stream,
                "concurrency": self.concurrency,
                "max_attempts": self.max_attempts,
                "backoff": asdict(self.backoff),
                "overrides": dict(self.overrides),
                "shared_limits": [[sorted(names), n] for names, n in self.shared_limits],
            },
            "prompts": {"source": self.prompts.source, "count": len(self.prompts)},
            # Resume: finished keys sent again because their prompt or parameters changed.
            "resent_changed_requests": self.changed,
            "deployments": [d.to_dict() for d in self.deps],
            "deployment_order": [d.name for d in self.deps],
            "packages": package_versions(),
        }

    # -- records -------------------------------------------------------------------------------

    def _new_record(self, dr: _DeploymentRun, pidx: int, repeat: int) -> Record:
        rec = Record(
            run_id=self.run_id or "",
            prompt_id=self.prompts[pidx].id,
            deployment=dr.dep.name,
            repeat=repeat,
            endpoint_kind=dr.dep.kind,
            streamed=self.stream,
        )
        digest = self._request_hash(dr.dep, pidx)
        if digest is not None:
            rec.extra[REQUEST_HASH_KEY] = digest
        return rec

    def _request_hash(self, dep: Deployment, pidx: int) -> str | None:
        key = (dep.name, pidx)
        if key not in self._hashes:
            try:
                request = build_request(self.prompts[pidx], dep, self.overrides, self.stream)
                self._hashes[key] = request_hash(request)
            except Exception:  # unhashable oddities: no fingerprint, the key is never re-sent
                self._hashes[key] = None
        return self._hashes[key]

    def _drop_changed(self, done: dict[tuple[str, str, int], dict[str, Any]]
                      ) -> dict[tuple[str, str, int], dict[str, Any]]:
        """Finished keys whose request changed (same id, other text or parameters) are undone.

        Rows without a stored fingerprint (checkpoints written before it existed) are kept.
        """
        pidx = {pid: i for i, pid in enumerate(self.prompts.ids)}
        deps = {d.name: d for d in self.deps}
        kept = {}
        for key, row in done.items():
            stored = row.get(REQUEST_HASH_KEY)
            pid, name, _ = key
            if stored is not None and pid in pidx and name in deps:
                current = self._request_hash(deps[name], pidx[pid])
                if current is not None and current != stored:
                    self.changed += 1
                    continue
            kept[key] = row
        return kept

    def finish(self, rec: Record) -> None:
        """A final record: checkpoint it, keep its columns, tell progress and the callback."""
        if self.checkpoint is not None and not rec.cached:
            self.checkpoint.append(rec)
        self.buffer.add(rec)
        if self.progress is not None:
            self.progress.add(rec)
        if self.on_record is not None:
            try:
                self.on_record(rec)
            except Exception as e:  # a broken callback must not lose the run
                if not self._callback_failed:
                    self._callback_failed = True
                    import warnings

                    warnings.warn(f"on_record raised {e!r}; ignored", RuntimeWarning, stacklevel=2)

    def _error_record(self, rec: Record, err: BaseException, dep: Deployment) -> None:
        if isinstance(err, EndpointError):
            rec.status = err.status
            rec.error_type = err.error_type
            rec.error_message = self.scrub(err.message)
            rec.http_status = _num(err.http_status)
            if isinstance(err.partial, Completion):
                fill_completion(rec, err.partial, dep)
            if err.headers:
                fill_headers(rec, err.headers)
            if isinstance(err, ContentFilterError) and err.content_filter is not None:
                rec.content_filter = _json_text(err.content_filter)
            if isinstance(err, AuthenticationError):
                rec.error_message = self.scrub(f"{err.message} — {_key_hint(dep)}")
        else:
            rec.status = "error"
            rec.error_type = type(err).__name__
            rec.error_message = self.scrub(str(err)) or type(err).__name__

    def _not_sent(self, dr: _DeploymentRun, pidx: int, repeat: int) -> Record:
        rec = self._new_record(dr, pidx, repeat)
        err = dr.abort
        rec.status = "error"
        rec.error_type = type(err).__name__
        if isinstance(err, EndpointError):
            rec.http_status = _num(err.http_status)
            why = self.scrub(err.message)
        else:
            why = self.scrub(str(err))
        rec.error_message = (
            f"not sent: deployment {dr.dep.name!r} was stopped after its credentials failed "
            f"({why}) — {_key_hint(dr.dep)}"
        )
        return rec

    # -- one request ---------------------------------------------------------------------------

    async def _pace(self, dr: _DeploymentRun, tokens: int) -> list[Any] | None:
        """Wait for the deployment's Retry-After pause and its pacing; returns the token booking
        (to correct by usage)."""
        now = time.monotonic()
        start = max(now, dr.paused_until)
        if dr.requests is not None and dr.request_window is not None:
            start = max(start, now + dr.requests.reserve(1))
            start = dr.request_window.reserve(1, start)[0]
        booking = None
        if dr.tokens is not None:
            start, booking = dr.tokens.reserve(tokens, start)
        if start > now:
            await asyncio.sleep(start - now)
        return booking

    async def one(self, dr: _DeploymentRun, pidx: int, repeat: int) -> Record:
        dep = dr.dep
        endpoint = dr.endpoint
        assert endpoint is not None
        request = build_request(self.prompts[pidx], dep, self.overrides, self.stream)
        estimate = estimate_tokens(request) if dr.tokens is not None else 0
        slots = self.global_slots
        attempts = 0
        backoff_s = 0.0
        first_sent: float | None = None
        perf = time.perf_counter
        while True:
            booking = None
            if dr.abort is None:
                booking = await self._pace(dr, estimate)
            if dr.abort is not None:
                rec = self._not_sent(dr, pidx, repeat)
                rec.attempts, rec.backoff_s = attempts, backoff_s
                return rec
            attempts += 1
            comp: Completion | None = None
            err: BaseException | None = None
            # The shared limit first: waiting for it must not hold a global slot.
            if dr.shared is not None:
                await dr.shared.acquire()
            try:
                if slots is not None:
                    await slots.acquire()
                t_send = perf()
                try:
                    comp = await endpoint.chat(request)
                except EndpointError as e:
                    err = e
                except Exception as e:  # an adapter bug must cost one row, never the run
                    err = e
                finally:
                    if slots is not None:
                        slots.release()
            finally:
                if dr.shared is not None:
                    dr.shared.release()
            t_end = perf()
            if comp is not None:
                sent = comp.sent_at
                if comp.finish_reason is None:
                    err = IncompleteStreamError(
                        "the response ended without finish_reason", partial=comp
                    )
            else:
                partial = getattr(err, "partial", None)
                sent = partial.sent_at if isinstance(partial, Completion) else t_send
            if first_sent is None:
                first_sent = sent
            if dr.tokens is not None:
                self._correct_tokens(dr, request, booking, comp if comp is not None else err)
            if err is None:
                assert comp is not None
                return self._ok(dr, pidx, repeat, comp, attempts, backoff_s, first_sent)
            retryable = isinstance(err, EndpointError) and err.retryable
            if isinstance(err, AuthenticationError | CredentialError) and dr.abort is None:
                dr.abort = err  # stop this deployment at once; others go on
            if not retryable or attempts >= self.max_attempts or dr.abort is not None:
                rec = self._new_record(dr, pidx, repeat)
                self._error_record(rec, err, dep)
                rec.attempts, rec.backoff_s = attempts, backoff_s
                rec.started_at = _utc_iso(self.epoch_offset + sent)
                end = comp.ended_at if comp is not None and comp.ended_at else t_end
                rec.wall_s = end - first_sent
                return rec
            assert isinstance(err, EndpointError)
            delay = self.backoff.delay(attempts, err.retry_after_s, self.rng)
            if err.retry_after_s is not None:
                # The service asked the whole deployment to wait, not just this request.
                dr.paused_until = max(dr.paused_until, time.monotonic() + delay)
            backoff_s += delay
            await asyncio.sleep(delay)

    def _correct_tokens(
        self, dr: _DeploymentRun, request: ChatRequest, booking: Any, outcome: Any
    ) -> None:
        """Correct the booking by usage, never below what the service itself counts at admission:
        the completion part when max_tokens was unset (services charge max_tokens when it is set,
        so do we), and the prompt part only upwards (services estimate prompts their own way,
        roughly characters / 4; a smaller reported usage does not free their quota).
        """
        comp = outcome if isinstance(outcome, Completion) else getattr(outcome, "partial", None)
        if not isinstance(comp, Completion) or dr.tokens is None or booking is None:
            return
        delta = 0
        if comp.prompt_tokens is not None:
            delta += min(0, estimate_prompt_tokens(request) - comp.prompt_tokens)
        if request.max_tokens is None and comp.completion_tokens is not None:
            delta += DEFAULT_MAX_TOKENS_ESTIMATE - comp.completion_tokens
        if delta:
            dr.tokens.refund(booking, delta)

    def _ok(
        self,
        dr: _DeploymentRun,
        pidx: int,
        repeat: int,
        comp: Completion,
        attempts: int,
        backoff_s: float,
        first_sent: float,
    ) -> Record:
        rec = self._new_record(dr, pidx, repeat)
        fill_completion(rec, comp, dr.dep)
        if comp.finish_reason == "content_filter":
            rec.status = "content_filtered"
        rec.attempts = attempts
        rec.backoff_s = backoff_s
        rec.started_at = _utc_iso(self.epoch_offset + comp.sent_at)
        rec.wall_s = comp.ended_at - first_sent
        return rec

    # -- workers -------------------------------------------------------------------------------

    async def worker(self, dr: _DeploymentRun) -> None:
        for pidx, repeat in dr.jobs:  # the iterator is shared by the deployment's workers
            if dr.abort is not None:
                self.finish(self._not_sent(dr, pidx, repeat))
            else:
                self.finish(await self.one(dr, pidx, repeat))

    async def _open_endpoint(self, dr: _DeploymentRun) -> None:
        try:
            dr.endpoint = self.pool.get(dr.dep)
        except CompareError as e:  # e.g. no key: this deployment's rows say so
            dr.abort = e
        except Exception as e:
            dr.abort = ConfigError(f"cannot build a client for {dr.dep.name!r}: {e}")

    def replay(self, done: Mapping[tuple[str, str, int], dict[str, Any]]) -> int:
        """Finished keys of this run from the checkpoint, as cached rows."""
        n = 0
        names = {d.name for d in self.deps}
        wanted = set(self.prompts.ids)
        for (pid, dep, r), row in done.items():
            if dep in names and pid in wanted and r < self.repeats:
                if self.on_record is not None or self.progress is not None:
                    self.finish(_record_from_row(row, cached=True))
                else:
                    self.buffer.add_row(row, cached=True)
                n += 1
        return n

    async def execute(self) -> Results:
        self._collect_secrets()
        done: dict[tuple[str, str, int], dict[str, Any]] = {}
        if self.out is not None:
            done = self._drop_changed(self._resume())
        if self.run_id is None:
            self.run_id = new_run_id()
        runs = self._plan(done)
        total = len(self.prompts) * len(self.deps) * self.repeats
        self.progress = _Progress(
            total, [d.name for d in self.deps], self.progress_enabled,
            initial=total - sum(dr.n_jobs for dr in runs),
        )
        if self.progress.bar is None:
            self.progress = None
        self.replay(done)
        if self.out is not None:
            assert self.checkpoint is not None
            self.checkpoint.open(loaded=True)
            # From the first new record on, a results.parquet of an earlier run is stale: remove
            # it so a run killed now leaves only the checkpoint, which Results.load rebuilds from.
            (self.out / RESULTS_FILE).unlink(missing_ok=True)
            write_manifest(self.out, self.manifest("running"))
        if self.pool is None:
            from compare.endpoints import EndpointPool

            self.pool = EndpointPool()
        workers_total = sum(min(dr.limit, dr.n_jobs) for dr in runs)
        if workers_total > self.concurrency:
            self.global_slots = asyncio.Semaphore(self.concurrency)
        status = "interrupted"
        tasks: list[asyncio.Task[None]] = []
        try:
            for dr in runs:
                if dr.n_jobs:
                    await self._open_endpoint(dr)
                    tasks += [
                        asyncio.ensure_future(self.worker(dr))
                        for _ in range(min(dr.limit, dr.n_jobs))
                    ]
            await asyncio.gather(*tasks)
            status = "complete"
        finally:
            for t in tasks:
                t.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            results = self._close(status)
            if self.own_pool and self.pool is not None:
                await asyncio.shield(self.pool.aclose())
        return results

    def _close(self, status: str) -> Results:
        """Always runs (also on cancel): flush the checkpoint, build and save what we have."""
        if self.progress is not None:
            self.progress.close()
        if self.checkpoint is not None:
            self.checkpoint.close()
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
        prompts = _prompt_frame(self.prompts)
        results = Results(frame, manifest=self.manifest(status), prompts=prompts)
        if self.out is not None:
            results.save(self.out)
        return results


def _key_hint(dep: Deployment) -> str:
    if dep.auth == "entra":
        return (
            f"check the Microsoft Entra ID credential (az login / AZURE_* variables) "
            f"for {dep.endpoint}"
        )
    if dep.api_key:
        return f"check the api_key given for deployment {dep.name!r}"
    return f"check the key in the environment variable {dep.key_env}"


def _previous_run_id(out: Path, rows: list[dict[str, Any]]) -> str | None:
    mpath = out / MANIFEST_FILE
    if mpath.exists():
        try:
            rid = json.loads(mpath.read_text(encoding="utf-8")).get("run_id")
            if rid:
                return str(rid)
        except ValueError:
            pass
    return str(rows[-1]["run_id"]) if rows and rows[-1].get("run_id") else None


def _record_from_row(row: Mapping[str, Any], *, cached: bool) -> Record:
    rec = Record(
        run_id=str(row.get("run_id") or ""),
        prompt_id=str(row["prompt_id"]),
        deployment=str(row["deployment"]),
        repeat=int(row["repeat"]),
        endpoint_kind=str(row.get("endpoint_kind") or ""),
    )
    for name, value in row.items():
        if name in ("run_id", "prompt_id", "deployment", "repeat", "endpoint_kind"):
            continue
        if hasattr(rec, name) and name != "extra":
            current = getattr(rec, name)
            if value is None and isinstance(current, float):
                value = NAN
            setattr(rec, name, value)
    rec.cached = cached
    return rec


def _prompt_frame(prompts: PromptSet) -> Any:
    import pandas as pd

    return pd.DataFrame(
        {
            "id": pd.Series([p.id for p in prompts], dtype="string"),
            "prompt": pd.Series([p.text for p in prompts], dtype="string"),
            "reference": pd.Series([p.reference for p in prompts], dtype="string"),
        }
    )


# -- public entry points -------------------------------------------------------------------------


async def arun(
    prompts: Any,
    deployments: Any,
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
    pool: Any = None,
    shared_limits: Iterable[tuple[Iterable[str], int]] | None = None,
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
    param_overrides: temperature, max_tokens, top_p, seed, stop, system, extra — override the
        deployments' defaults for this run.
    """
    if not isinstance(repeats, int) or repeats < 1:
        raise ConfigError(f"repeats must be a positive integer, got {repeats!r}", field="repeats")
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigError(
            f"concurrency must be a positive integer, got {concurrency!r}", field="concurrency"
        )
    if not isinstance(max_attempts, int) or max_attempts < 1:
        raise ConfigError(
            f"max_attempts must be a positive integer, got {max_attempts!r}", field="max_attempts"
        )
    overrides = _check_overrides(param_overrides)
    deps = as_deployments(deployments)
    runner = _Run(
        load_prompts(prompts),
        deps,
        repeats=repeats,
        out=Path(out) if out is not None else None,
        run_id=run_id,
        stream=stream,
        concurrency=concurrency,
        max_attempts=max_attempts,
        progress=progress,
        on_record=on_record,
        backoff=backoff or Backoff(),
        pool=pool,
        overrides=overrides,
        shared_limits=_check_shared_limits(shared_limits, deps),
    )
    return await runner.execute()


def _check_shared_limits(groups: Iterable[tuple[Iterable[str], int]] | None,
                         deps: list[Deployment]) -> list[tuple[frozenset[str], int]]:
    out: list[tuple[frozenset[str], int]] = []
    if not groups:
        return out
    known = {d.name for d in deps}
    seen: set[str] = set()
    for group in groups:
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
        if names & seen:  # one semaphore per deployment keeps acquisition deadlock-free
            raise ConfigError(f"shared_limits: {sorted(names & seen)[0]!r} is in two groups",
                              field="shared_limits")
        seen |= names
        out.append((names, limit))
    return out


def run(prompts: Any, deployments: Any, **kwargs: Any) -> Results:
    """Synchronous `arun`. Inside a running event loop (Jupyter) it runs on its own loop in a
    worker thread; Ctrl-C / interrupting the kernel cancels the run, keeping finished records."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(arun(prompts, deployments, **kwargs))
    return _run_in_thread(lambda: arun(prompts, deployments, **kwargs))


def _run_in_thread(make: Callable[[], Any]) -> Results:
    box: dict[str, Any] = {}
    started = threading.Event()
    finished = threading.Event()
    relay = _BarRelay()

    def target() -> None:
        _BAR_FACTORY.set(relay)  # this thread's context; the run's task copies it
        loop = asyncio.new_event_loop()
        try:
            task = loop.create_task(make())
            box["loop"], box["task"] = loop, task
            started.set()
            box["result"] = loop.run_until_complete(task)
        except BaseException as e:  # handed to the calling thread
            box["error"] = e
        finally:
            started.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                finished.set()

    thread = threading.Thread(target=target, name="compare-run", daemon=True)
    thread.start()
    try:
        # Short waits on an Event (not Thread.join, whose lock a KeyboardInterrupt can break)
        # keep the calling thread responsive to Ctrl-C / "interrupt kernel".
        # The same wake-ups draw the progress bar here, on the calling (kernel main) thread.
        while not finished.wait(0.05):
            relay.pump()
    except KeyboardInterrupt:
        started.wait()
        loop, task = box.get("loop"), box.get("task")
        if loop is not None and task is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)
        # The run writes its checkpoint, results and manifest, then stops.
        while not finished.wait(0.05):
            relay.pump()
        relay.pump()
        raise
    finally:
        relay.pump()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]
