"""The record: one row per prompt × deployment × repeat.

This module is the single place that names the columns, their dtypes and their meaning; the
runner fills records, `Results` reads them, charts and summaries label axes with `METRICS`.
Each field's docstring is its definition.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Final

STATUSES: Final = ("ok", "error", "content_filtered", "incomplete", "timeout", "rate_limited")
# Statuses of requests that failed. content_filtered is not one of them: the service answered
# with a filter verdict, which is a result about the deployment, not a failure of the client.
FAILED_STATUSES: Final = frozenset({"error", "incomplete", "timeout", "rate_limited"})

# Human definitions, used verbatim by summaries and chart labels.
METRICS: Final[dict[str, str]] = {
    "ttft_s": "TTFT (s): send → first content chunk",
    "latency_s": "latency (s): send → last chunk of the final attempt",
    "wall_s": "wall (s): first send → result, incl. retries and backoff",
    "decode_tps": "decode tokens/s: (completion_tokens − 1) / (latency_s − ttft_s)",
    "itl_p50_s": "inter-token gap p50 (s), TTFT excluded",
    "itl_p90_s": "inter-token gap p90 (s), TTFT excluded",
    "prompt_tokens": "prompt tokens (from usage)",
    "completion_tokens": "completion tokens (from usage)",
    "cost": "cost (from per-1k-token prices)",
    "attempts": "attempts (1 = no retry)",
    "backoff_s": "backoff (s) slept between attempts",
    "batch_turnaround_s": "batch turnaround (s): batch created → completed (whole seconds)",
}

NAN = math.nan


@dataclass
class Record:
    """One final result of one request (after its retries). Times are seconds; "send" is when
    the transport wrote the request to the socket."""

    run_id: str
    """The run that produced the record (kept across resumes of one run directory)."""
    prompt_id: str
    """The prompt's id in its prompt set."""
    deployment: str
    """The deployment's display name (`Deployment.name`)."""
    repeat: int
    """0-based repeat of this prompt on this deployment."""
    endpoint_kind: str
    """The deployment's kind: azure-inference, azure-openai, openai, or a batch kind
    (azure-openai-batch, openai-batch)."""
    status: str = "ok"
    """ok / error / content_filtered / incomplete / timeout / rate_limited."""
    model: str | None = None
    """The model name the service reported."""
    error_type: str | None = None
    """Our error class for anything not ok (e.g. RateLimitError)."""
    error_message: str | None = None
    """What went wrong and what to check; never contains a key."""
    http_status: float = NAN
    """HTTP status of the final attempt's error answer, NaN when there was none."""
    output: str | None = None
    """The answer's text (partial for incomplete streams)."""
    finish_reason: str | None = None
    """Why the answer ended (stop, length, content_filter, ...)."""
    prompt_tokens: float = NAN
    """From the service's usage; NaN (never a guess) when it gave none."""
    completion_tokens: float = NAN
    """From the service's usage; NaN (never a guess) when it gave none."""
    started_at: str | None = None
    """ISO-8601 UTC time of the final attempt's send (batch rows: when the batch was created)."""
    ttft_s: float = NAN
    """Send → first content chunk (streaming only; NaN for batch rows)."""
    latency_s: float = NAN
    """Send → last chunk of the final attempt (service time, no backoff; NaN for batch rows)."""
    wall_s: float = NAN
    """First send → result, including retries and backoff (NaN for batch rows)."""
    attempts: int = 0
    """Attempts taken (1 = no retry; 0 = never sent). Batch rows: batches the request was
    submitted in during this run (a batch refused for a full token quota and created again
    counts twice)."""
    backoff_s: float = 0.0
    """Time slept between attempts."""
    decode_tps: float = NAN
    """(completion_tokens − 1) / (latency_s − ttft_s)."""
    itl_p50_s: float = NAN
    """Median gap between content chunks, TTFT excluded."""
    itl_p90_s: float = NAN
    """90th percentile gap between content chunks, TTFT excluded."""
    request_id: str | None = None
    """The service's request id header (apim-request-id, x-request-id or x-ms-request-id);
    batch rows: the output line's `response.request_id`."""
    region: str | None = None
    """The x-ms-region header."""
    ratelimit_remaining_requests: float = NAN
    """The x-ratelimit-remaining-requests header."""
    ratelimit_remaining_tokens: float = NAN
    """The x-ratelimit-remaining-tokens header."""
    content_filter: str | None = None
    """JSON text of the content filter results, when present."""
    cost: float = NAN
    """From the deployment's per-1k-token prices (a batch deployment's own prices are its batch
    prices); NaN without prices or usage."""
    cached: bool = False
    """Replayed from a checkpoint; never counted in latency statistics."""
    streamed: bool = True
    """Whether the request asked for a stream (never for batch rows)."""
    batch_id: str | None = None
    """The batch that answered this row (batch deployments only)."""
    batch_turnaround_s: float = NAN
    """The batch's end − its creation, from the service's whole-second timestamps (completed_at,
    or expired_at / cancelled_at / failed_at); NaN for online rows. Batch rows have no
    latency: this is their time to an answer, never part of latency statistics."""
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    """Not a column: what the checkpoint line carries besides (the request fingerprint)."""

    def to_dict(self) -> dict[str, Any]:
        """The record's columns (without `extra`)."""
        row = asdict(self)
        row.pop("extra")
        return row


RECORD_COLUMNS: Final[tuple[str, ...]] = tuple(f.name for f in fields(Record) if f.name != "extra")
