"""One part of a batch deployment's work: an input file, the batch made from it, and collecting
what it answered into records.

`collect` downloads the batch's output and error files to disk (streamed), reads them line by
line, joins each line to its key by custom_id and hands one record per key to the run. Lines of
keys this run does not want (finished meanwhile, changed since) and repeated custom_ids are
skipped, so a key never gets two records. What the batch did not answer is either returned (to
go into a new batch: a batch found ended when a run resumed) or recorded as an error saying why.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from compare.endpoints.batch import BatchClient
from compare.endpoints.batch_state import BatchState
from compare.errors import BatchCancelledError, EndpointError, RateLimitError
from compare.records import Record
from compare.runner.batch_input import InputPart
from compare.runner.batch_ledger import LedgerPart
from compare.runner.batch_records import BatchRecords

Key = tuple[int, int, str | None]  # (prompt index, repeat, request fingerprint)
# Hand the event loop back this often while parsing (Ctrl-C and other deployments stay live).
YIELD_EVERY: Final = 2000
QUOTA_CODE: Final = "token_limit_exceeded"


@dataclass
class Part:
    """A part while this run handles it."""

    keys: dict[str, Key]  # custom_id → key, for the lines this run wants
    ledger: LedgerPart | None = None  # set once uploaded
    source: InputPart | None = None  # the input file on disk, until uploaded
    state: BatchState | None = None
    attempts: int = 0  # batches created for it in this run
    adopted: bool = False  # pending from an earlier run
    stray_lines: int = 0  # lines of unknown or repeated custom_ids, not recorded
    recorded: set[str] = field(default_factory=set)  # custom_ids with a record in this run
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def batch_id(self) -> str | None:
        return self.ledger.batch_id if self.ledger is not None else None

    def report(self) -> dict[str, Any]:
        """The part in the manifest."""
        state = self.state
        out: dict[str, Any] = {
            "part": self.ledger.part if self.ledger else None, "batch_id": self.batch_id,
            "input_file_id": self.ledger.file_id if self.ledger else None,
            "lines": len(self.keys), "bytes": self.ledger.size if self.ledger else None,
            "status": state.status if state else None, "adopted": self.adopted,
            "batches_created": self.attempts, "stray_lines": self.stray_lines,
        }
        if state is not None:
            out["request_counts"] = {"total": state.total, "completed": state.completed,
                                     "failed": state.failed}
            out["created_at"], out["ended_at"] = state.created_at, state.ended_at
            out["turnaround_s"] = state.turnaround_s
        out.update({f"{k}_s": round(v, 4) for k, v in self.timings.items()})
        return out


def is_quota_failure(state: BatchState) -> bool:
    """A batch refused because the deployment's enqueued-token quota was full."""
    return state.status == "failed" and any(i.code == QUOTA_CODE for i in state.issues)


def unanswered_error(state: BatchState) -> EndpointError:
    """Why a key of this batch has no line, in words a user can act on."""
    again = "rerun with the same out to send it in a new batch"
    if state.status == "cancelled":
        return BatchCancelledError(f"not run: batch {state.id} was cancelled before this "
                                   f"request ran; {again}", code="batch_cancelled")
    if is_quota_failure(state):
        issue = next(i for i in state.issues if i.code == QUOTA_CODE)
        return RateLimitError(f"batch {state.id} was refused: the deployment's enqueued-token "
                              f"quota is full ({issue.message}); {again} once running batches "
                              "have finished", code=QUOTA_CODE)
    if state.status == "failed":
        shown = "; ".join(i.describe() for i in state.issues[:3]) or "no reason given"
        more = f" (and {len(state.issues) - 3} more)" if len(state.issues) > 3 else ""
        code = state.issues[0].code if state.issues else None
        return EndpointError(f"batch {state.id} failed validation: {shown}{more}"[:1000],
                             code=code)
    return EndpointError(f"batch {state.id} ended {state.status} without a line for this "
                         f"request; {again}", code="no_line")


def read_lines(path: Path) -> Iterator[dict[str, Any] | None]:
    """The JSON objects of a downloaded JSONL file, None for a line that is not one."""
    with open(path, "rb") as f:
        for raw in f:
            if not raw.strip():
                continue
            try:
                item = json.loads(raw)
            except ValueError:
                yield None
                continue
            yield item if isinstance(item, dict) else None


def _expired(item: dict[str, Any]) -> bool:
    error = item.get("error")
    return isinstance(error, dict) and error.get("code") == "batch_expired"


async def collect(part: Part, state: BatchState, client: BatchClient, records: BatchRecords,
                  sink: Callable[[Record], None], workdir: Path, *,
                  resubmit: bool) -> list[str]:
    """Records for the part's answered keys. Unanswered keys (expired, cancelled, never run):
    returned when `resubmit`, else recorded as errors. Raises EndpointError when a file cannot
    be downloaded (keys not read yet have no record; `part.recorded` says which have)."""
    for file_id in (state.output_file_id, state.error_file_id):
        if not file_id:
            continue
        path = workdir / f"{file_id}.jsonl"
        t0 = time.perf_counter()
        await client.download(file_id, path)
        part.timings["download"] = part.timings.get("download", 0.0) + time.perf_counter() - t0
        t0 = time.perf_counter()
        for n, item in enumerate(read_lines(path), start=1):
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            cid = item.get("custom_id") if item is not None else None
            key = part.keys.get(cid) if isinstance(cid, str) else None
            if item is None or key is None or cid in part.recorded:
                part.stray_lines += 1
                continue
            if resubmit and _expired(item):
                continue
            part.recorded.add(cid)  # type: ignore[arg-type]
            sink(records.answer(item, state, key[0], key[1], key[2], part.attempts))
        path.unlink(missing_ok=True)
        part.timings["parse"] = part.timings.get("parse", 0.0) + time.perf_counter() - t0
    if resubmit:
        return [cid for cid in part.keys if cid not in part.recorded]
    part.state = state
    record_failure(part, unanswered_error(state), records, sink)
    return []


def record_failure(part: Part, error: EndpointError, records: BatchRecords,
                   sink: Callable[[Record], None]) -> None:
    """An error record for every key of the part that has no record yet in this run (with
    the part's batch, when it has one)."""
    for cid, (pidx, repeat, digest) in part.keys.items():
        if cid not in part.recorded:
            part.recorded.add(cid)
            sink(records.failed(pidx, repeat, digest, error, part.state, part.attempts))
