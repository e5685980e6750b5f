"""Batch jobs: the state of each (status, timestamps, counts, errors, files) and its `Batch`
body, and the book of all jobs (listing, the enqueued-token quota per deployment)."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")
TERMINAL = ("failed", "completed", "expired", "cancelled")


@dataclass
class BatchFailure(Exception):
    """Why a job failed validation: one entry of the Batch's `errors.data`."""

    code: str
    message: str
    line: int | None = None
    param: str | None = None

    def body(self) -> dict[str, Any]:
        """The BatchErrorData object (absent fields left out rather than null)."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.param is not None:
            out["param"] = self.param
        if self.line is not None:
            out["line"] = self.line
        return out


@dataclass
class BatchJob:
    """One batch, from `validating` to a terminal status."""

    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    created_at: int
    expires_at: int
    window_s: float
    created_s: float  # created_at with its fraction: the expiry deadline counts from here
    metadata: dict[str, str] | None = None
    status: str = "validating"
    deployment: str | None = None  # set once validation found it
    tokens: int = 0  # estimated input tokens, counted against the enqueued-token quota
    total: int | None = None
    completed: int = 0
    failed: int = 0
    errors: list[BatchFailure] = field(default_factory=list)
    output_file_id: str | None = None
    error_file_id: str | None = None
    stamps: dict[str, int] = field(default_factory=dict)  # in_progress_at, completed_at, ...
    task: asyncio.Task[None] | None = None

    @classmethod
    def new(cls, input_file_id: str, endpoint: str, window_s: float,
            metadata: dict[str, str] | None) -> BatchJob:
        """A job created now, expiring `window_s` seconds later."""
        now = time.time()
        return cls(id=f"batch_{uuid.uuid4()}", input_file_id=input_file_id, endpoint=endpoint,
                   completion_window="24h", created_at=int(now),
                   expires_at=int(now + window_s), window_s=window_s, created_s=now,
                   metadata=metadata)

    def move_to(self, status: str) -> None:
        """Change status and stamp `<status>_at` with the current unix time."""
        self.status = status
        self.stamps[f"{status}_at"] = int(time.time())

    def body(self) -> dict[str, Any]:
        """The `Batch` object of the batches API; fields with no value yet are left out."""
        out: dict[str, Any] = {
            "id": self.id, "object": "batch", "endpoint": self.endpoint,
            "input_file_id": self.input_file_id, "completion_window": self.completion_window,
            "status": self.status, "created_at": self.created_at, "expires_at": self.expires_at,
            **self.stamps,
        }
        if self.total is not None:  # unknown while validating
            out["request_counts"] = {"total": self.total, "completed": self.completed,
                                     "failed": self.failed}
        if self.errors:
            out["errors"] = {"object": "list", "data": [e.body() for e in self.errors]}
        for key in ("output_file_id", "error_file_id", "metadata"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


class BatchBook:
    """Every job of this endpoint, in creation order."""

    def __init__(self) -> None:
        self.jobs: dict[str, BatchJob] = {}

    def add(self, job: BatchJob) -> None:
        """Record a new job."""
        self.jobs[job.id] = job

    def get(self, batch_id: str) -> BatchJob | None:
        """The job `batch_id`, if any."""
        return self.jobs.get(batch_id)

    def page(self, after: str | None, limit: int) -> tuple[list[BatchJob], bool]:
        """Newest first, starting after the job `after`; (page, whether more follow)."""
        newest = list(reversed(self.jobs.values()))
        if after is not None:
            ids = [j.id for j in newest]
            newest = newest[ids.index(after) + 1:] if after in ids else []
        return newest[:limit], len(newest) > limit

    def enqueued_tokens(self, deployment: str, besides: BatchJob) -> int:
        """Input tokens of the deployment's unfinished jobs other than `besides`."""
        return sum(j.tokens for j in self.jobs.values()
                   if j is not besides and j.deployment == deployment and j.status in ACTIVE)

    def cancel_all(self) -> None:
        """Stop every running job (server shutdown)."""
        for job in self.jobs.values():
            if job.task is not None and not job.task.done():
                job.task.cancel()
