"""A batch as the service reports it, normalised: `parse_batch(obj) -> BatchState`.

The batches API spec gives status in lower case and times as unix seconds, but some Azure REST
samples show capitalised statuses ("Completed", "InProgress") and ISO-8601 strings; both are
read. `request_counts` may be null while a batch validates. The openai SDK builds its `Batch`
model without validating, so these raw values reach us unchanged through its attributes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

ACTIVE: Final = frozenset({"validating", "in_progress", "finalizing", "cancelling"})
TERMINAL: Final = frozenset({"completed", "failed", "expired", "cancelled"})
# Statuses whose requests ran (some or all): their output and error files hold answers.
RAN: Final = frozenset({"completed", "expired", "cancelled"})
_STAMPS: Final = ("created_at", "in_progress_at", "finalizing_at", "completed_at", "failed_at",
                  "expired_at", "cancelling_at", "cancelled_at", "expires_at")
_CAMEL: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@dataclass(frozen=True)
class BatchIssue:
    """One entry of a failed batch's `errors.data`: why validation (or the quota) refused it."""

    code: str
    message: str
    line: int | None = None
    param: str | None = None

    def describe(self) -> str:
        where = f" (input line {self.line})" if self.line is not None else ""
        return f"{self.code}{where}: {self.message}"


@dataclass(frozen=True)
class BatchState:
    """The fields of a Batch the runner acts on; times are unix seconds (floats)."""

    id: str
    status: str
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    stamps: dict[str, float] = field(default_factory=dict)
    total: int | None = None
    completed: int | None = None
    failed: int | None = None
    issues: tuple[BatchIssue, ...] = ()

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def created_at(self) -> float | None:
        return self.stamps.get("created_at")

    @property
    def ended_at(self) -> float | None:
        """When the batch reached its terminal status (None while it runs)."""
        return self.stamps.get(f"{self.status}_at") if self.terminal else None

    @property
    def turnaround_s(self) -> float:
        """End − creation for a batch whose requests ran; NaN otherwise (failed, or running)."""
        created, ended = self.created_at, self.ended_at
        if self.status not in RAN or created is None or ended is None:
            return math.nan
        return max(0.0, ended - created)

    def counts(self) -> str:
        """'12/40 done, 1 failed' (or 'counts unknown' while validating)."""
        if self.total is None:
            return "counts unknown"
        return f"{self.completed or 0}/{self.total} done, {self.failed or 0} failed"


def normal_status(value: Any) -> str:
    """'Completed' → 'completed', 'InProgress' → 'in_progress', 'in_progress' unchanged."""
    return _CAMEL.sub("_", str(value or "").strip()).lower()


def parse_time(value: Any) -> float | None:
    """Unix seconds from an int/float or an ISO-8601 string (a trailing Z is UTC); None when
    absent or unreadable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.timestamp()
    return None


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _issues(errors: Any) -> tuple[BatchIssue, ...]:
    data = _get(errors, "data") if errors is not None else None
    out = []
    for item in data or ():
        code, message = _get(item, "code"), _get(item, "message")
        line = _get(item, "line")
        out.append(BatchIssue(str(code or "unknown"), str(message or ""),
                              line if isinstance(line, int) else None,
                              _get(item, "param") or None))
    return tuple(out)


def parse_batch(obj: Any) -> BatchState:
    """A BatchState from the SDK's `Batch` (or a dict of the wire form)."""
    counts = _get(obj, "request_counts")
    stamps = {name: t for name in _STAMPS if (t := parse_time(_get(obj, name))) is not None}
    return BatchState(
        id=str(_get(obj, "id")),
        status=normal_status(_get(obj, "status")),
        input_file_id=_get(obj, "input_file_id"),
        output_file_id=_get(obj, "output_file_id") or None,
        error_file_id=_get(obj, "error_file_id") or None,
        stamps=stamps,
        total=_count(_get(counts, "total")) if counts is not None else None,
        completed=_count(_get(counts, "completed")) if counts is not None else None,
        failed=_count(_get(counts, "failed")) if counts is not None else None,
        issues=_issues(_get(obj, "errors")),
    )
