"""The record: one row per prompt × deployment × repeat, as ../DESIGN.md defines it.

This module is the single place that names the columns, their dtypes and their meaning; the
runner fills records, `Results` reads them, charts and summaries label axes with `METRICS`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Final

STATUSES: Final = ("ok", "error", "content_filtered", "incomplete", "timeout", "rate_limited")

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
}

NAN = math.nan


@dataclass
class Record:
    run_id: str
    prompt_id: str
    deployment: str
    repeat: int
    endpoint_kind: str
    status: str = "ok"
    model: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    http_status: float = NAN
    output: str | None = None
    finish_reason: str | None = None
    prompt_tokens: float = NAN
    completion_tokens: float = NAN
    started_at: str | None = None  # ISO-8601 UTC of the final attempt's send
    ttft_s: float = NAN
    latency_s: float = NAN
    wall_s: float = NAN
    attempts: int = 0
    backoff_s: float = 0.0
    decode_tps: float = NAN
    itl_p50_s: float = NAN
    itl_p90_s: float = NAN
    request_id: str | None = None
    region: str | None = None
    ratelimit_remaining_requests: float = NAN
    ratelimit_remaining_tokens: float = NAN
    content_filter: str | None = None  # JSON text
    cost: float = NAN
    cached: bool = False
    streamed: bool = True
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row.pop("extra")
        return row

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.prompt_id, self.deployment, self.repeat)


RECORD_COLUMNS: Final[tuple[str, ...]] = tuple(f.name for f in fields(Record) if f.name != "extra")
