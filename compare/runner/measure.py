"""From an attempt's outcome to its Record: measurements, identity, errors without secrets.

ttft_s, latency_s, decode_tps and inter-token gaps as `compare.records.METRICS` defines them
(from the Completion's raw perf_counter times; decode_tps counts usage tokens, else content
chunks, and `tokens_source` says which); request id, region and rate-limit state from the
response headers; cost from the deployment's prices (NaN, never a guess, when a price has no
usage to apply to). `RecordMaker` builds the ok / error / not-sent record of a job.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Final

from compare.checkpoint import REQUEST_HASH_KEY
from compare.deployments import Deployment
from compare.endpoints.base import Completion
from compare.errors import (
    AuthenticationError,
    ContentFilterError,
    CredentialError,
    EndpointError,
    TransportError,
)
from compare.records import NAN, Record

if TYPE_CHECKING:
    from compare.runner.attempt import DeploymentRun
    from compare.runner.plan import Job


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


def as_float(value: Any) -> float:
    """A header or status as a float; NaN when absent or not a number."""
    if value is None or value == "":
        return NAN
    try:
        return float(value)
    except (TypeError, ValueError):
        return NAN


def utc_iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="microseconds")


def json_text(value: Any) -> str | None:
    """`value` as JSON text for a string column (content filter results)."""
    if value is None:
        return None
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return json.dumps(str(value))


def tokens_counted(comp: Completion) -> tuple[str, int | None]:
    """(tokens_source, count) for the decode rate: usage when the service sent it, else the
    content chunks of a stream (many OpenAI-compatible servers stream no usage)."""
    if comp.completion_tokens is not None:
        return "usage", comp.completion_tokens
    if comp.streamed and comp.chunk_times:
        return "chunks", len(comp.chunk_times)
    return "none", None


def fill_timing(rec: Record, comp: Completion) -> None:
    """ttft_s, latency_s, decode_tps, content chunks and inter-token gaps of one attempt."""
    sent = comp.sent_at
    if comp.ended_at:
        rec.latency_s = comp.ended_at - sent
    if comp.streamed:
        rec.completion_chunks = float(len(comp.chunk_times))
    rec.tokens_source, count = tokens_counted(comp)
    if comp.first_token_at is not None:
        rec.ttft_s = comp.first_token_at - sent
        decode_s = rec.latency_s - rec.ttft_s
        if count is not None and count > 1 and decode_s > 0:
            rec.decode_tps = (count - 1) / decode_s
    times = comp.chunk_times
    if len(times) > 1:
        gaps = sorted(b - a for a, b in pairwise(times))
        rec.itl_p50_s = percentile(gaps, 50)
        rec.itl_p90_s = percentile(gaps, 90)


def fill_headers(rec: Record, headers: Mapping[str, str]) -> None:
    """Request id, region and the rate-limit state the service reported."""
    if not headers:
        return
    get = headers.get
    rec.request_id = get("apim-request-id") or get("x-request-id") or get("x-ms-request-id")
    rec.region = get("x-ms-region")
    rec.ratelimit_remaining_requests = as_float(get("x-ratelimit-remaining-requests"))
    rec.ratelimit_remaining_tokens = as_float(get("x-ratelimit-remaining-tokens"))


def cost(dep: Deployment, prompt_tokens: int | None, completion_tokens: int | None) -> float:
    """Cost from the deployment's per-1k-token prices; NaN without prices or without usage."""
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
        rec.content_filter = json_text(comp.content_filter)
    fill_headers(rec, comp.headers)
    fill_timing(rec, comp)
    rec.cost = cost(dep, comp.prompt_tokens, comp.completion_tokens)


# -- records of jobs ---------------------------------------------------------------------------

# Consecutive attempts without any HTTP answer (connection refused, DNS, TLS) after which a
# deployment is stopped instead of retrying every remaining row.
MAX_UNREACHABLE_IN_A_ROW: Final = 8

# Secrets shorter than this are not scrubbed from messages: they would be confused with prose
# (a key "wrong" would turn "wrong key" into "*** key"); real keys are far longer.
MIN_SECRET_LENGTH: Final = 8


@dataclass
class Tries:
    """A job's attempts so far."""

    attempts: int = 0
    backoff_s: float = 0.0
    first_sent: float | None = None


def key_hint(run: DeploymentRun) -> str:
    """What to check when a deployment's credentials failed."""
    dep = run.dep
    if dep.auth == "entra":
        return (f"check the Microsoft Entra ID credential (az login / AZURE_* variables) "
                f"for {dep.endpoint}")
    if dep.api_key:
        return f"check the api_key given for deployment {dep.name!r}"
    return f"check the key in the environment variable {dep.key_env}"


class RecordMaker:
    """Builds a job's final Record. `secrets` are replaced by *** in every message."""

    def __init__(self) -> None:
        self.run_id = ""
        # perf_counter → epoch, for started_at of each attempt.
        self.epoch_offset = time.time() - time.perf_counter()
        self._scrub: re.Pattern[str] | None = None

    def set_secrets(self, secrets: list[str]) -> None:
        # Exact secrets only, never inside a longer word: scrubbing must not eat prose.
        usable = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        if usable:
            self._scrub = re.compile(
                r"(?<![\w-])(?:" + "|".join(re.escape(s) for s in usable) + r")(?![\w-])")

    def scrub(self, text: str | None) -> str | None:
        if text and self._scrub is not None:
            return self._scrub.sub("***", text)
        return text

    def new(self, run: DeploymentRun, job: Job) -> Record:
        rec = Record(run_id=self.run_id, prompt_id=job.prompt_id, deployment=run.dep.name,
                     repeat=job.repeat, endpoint_kind=run.dep.kind, streamed=job.request.stream)
        if job.digest is not None:
            rec.extra[REQUEST_HASH_KEY] = job.digest
        return rec

    def ok(self, run: DeploymentRun, job: Job, comp: Completion, tries: Tries) -> Record:
        rec = self.new(run, job)
        fill_completion(rec, comp, run.dep)
        if comp.finish_reason == "content_filter":
            rec.status = "content_filtered"
        rec.attempts, rec.backoff_s = tries.attempts, tries.backoff_s
        rec.started_at = utc_iso(self.epoch_offset + comp.sent_at)
        rec.wall_s = comp.ended_at - (tries.first_sent or comp.sent_at)
        return rec

    def error(self, run: DeploymentRun, job: Job, err: BaseException, tries: Tries,
              sent: float, ended: float) -> Record:
        rec = self.new(run, job)
        if isinstance(err, EndpointError):
            rec.status = err.status
            rec.error_type = err.error_type
            rec.error_message = self.scrub(err.message)
            rec.http_status = as_float(err.http_status)
            if isinstance(err.partial, Completion):
                fill_completion(rec, err.partial, run.dep)
                ended = err.partial.ended_at or ended
            if err.headers:
                fill_headers(rec, err.headers)
            if isinstance(err, ContentFilterError) and err.content_filter is not None:
                rec.content_filter = json_text(err.content_filter)
            if isinstance(err, AuthenticationError):
                rec.error_message = self.scrub(f"{err.message} — {key_hint(run)}")
        else:
            rec.status = "error"
            rec.error_type = type(err).__name__
            rec.error_message = self.scrub(str(err)) or type(err).__name__
        rec.attempts, rec.backoff_s = tries.attempts, tries.backoff_s
        rec.started_at = utc_iso(self.epoch_offset + sent)
        rec.wall_s = ended - (tries.first_sent if tries.first_sent is not None else sent)
        return rec

    def not_sent(self, run: DeploymentRun, job: Job, tries: Tries) -> Record:
        rec = self.new(run, job)
        err = run.abort
        rec.status = "error"
        rec.error_type = str(getattr(err, "error_type", None) or type(err).__name__)
        rec.http_status = as_float(getattr(err, "http_status", None))
        why = self.scrub(err.message if isinstance(err, EndpointError) else str(err))
        if isinstance(err, AuthenticationError | CredentialError):
            reason = f"its credentials failed ({why}) — {key_hint(run)}"
        elif isinstance(err, TransportError):
            reason = (f"it gave no HTTP answer to {MAX_UNREACHABLE_IN_A_ROW} attempts in a row "
                      f"({why})")
        else:
            reason = f"its first request failed ({why})"
        rec.error_message = f"not sent: deployment {run.dep.name!r} was stopped after {reason}"
        rec.attempts, rec.backoff_s = tries.attempts, tries.backoff_s
        return rec
