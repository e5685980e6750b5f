"""`OUT/batches.jsonl`: which input files and batches a run made, so a killed run resumes them.

One JSON line per event, appended, flushed and fsync'ed before the run goes on (they are few):

    {"event": "uploaded", "part": P, "deployment": D, "file_id": F, "at": T, "bytes": N,
     "lines": [[custom_id, request fingerprint], ...]}
    {"event": "created", "part": P, "batch_id": B, "at": T}
    {"event": "ended", "part": P, "batch_id": B, "status": S, "at": T}

"uploaded" is written before the batch is created and "created" before polling starts, so a
run killed at any point resumes with the same file and the same batch (no second upload, no
second bill). "ended" is written once the part's records are in `records.jsonl`; a part
without it is pending. A torn last line (a kill mid-write) is cut away on open.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

LEDGER_FILE: Final = "batches.jsonl"


@dataclass
class LedgerPart:
    """One input file of a batch deployment and the batch made from it."""

    part: str
    deployment: str
    file_id: str
    uploaded_at: float
    lines: list[tuple[str, str | None]] = field(default_factory=list)
    size: int = 0
    batch_id: str | None = None
    ended: str | None = None  # the batch's final status, once its records are checkpointed


class Ledger:
    """The batches of a run directory (`directory` None: kept in memory for this run only)."""

    def __init__(self, directory: Path | None) -> None:
        self.path = directory / LEDGER_FILE if directory is not None else None
        self.parts: dict[str, LedgerPart] = {}

    def load(self) -> dict[str, LedgerPart]:
        """Read the file (cutting a torn last line); the parts by id."""
        if self.path is None or not self.path.exists():
            return self.parts
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            with open(self.path, "r+b") as f:
                f.truncate(end)
        bad = 0
        for raw in data[:end].splitlines():
            try:
                self._apply(json.loads(raw))
            except (ValueError, KeyError, TypeError):
                bad += 1
        if bad:
            warnings.warn(f"{self.path}: skipped {bad} unreadable line(s)", RuntimeWarning,
                          stacklevel=2)
        return self.parts

    def _apply(self, event: dict[str, Any]) -> None:
        kind, part_id = event["event"], str(event["part"])
        if kind == "uploaded":
            self.parts[part_id] = LedgerPart(
                part_id, str(event["deployment"]), str(event["file_id"]),
                float(event["at"]), [(str(c), d) for c, d in event["lines"]],
                int(event.get("bytes") or 0))
        elif part_id in self.parts:
            part = self.parts[part_id]
            if kind == "created":
                part.batch_id = str(event["batch_id"])
            elif kind == "ended":
                part.ended = str(event["status"])

    def _append(self, event: dict[str, Any]) -> None:
        self._apply(event)
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as f:
            f.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
                    + b"\n")
            f.flush()
            os.fsync(f.fileno())

    def uploaded(self, part_id: str, deployment: str, file_id: str,
                 lines: list[tuple[str, str | None]], size: int) -> LedgerPart:
        """Record an uploaded input file (before its batch is created)."""
        self._append({"event": "uploaded", "part": part_id, "deployment": deployment,
                      "file_id": file_id, "at": time.time(), "bytes": size,
                      "lines": [list(x) for x in lines]})
        return self.parts[part_id]

    def created(self, part: LedgerPart, batch_id: str) -> None:
        """Record the batch made from a part's file (before polling it)."""
        self._append({"event": "created", "part": part.part, "batch_id": batch_id,
                      "at": time.time()})

    def ended(self, part: LedgerPart, status: str) -> None:
        """Record that a part's batch ended and its records are in the checkpoint."""
        self._append({"event": "ended", "part": part.part, "batch_id": part.batch_id,
                      "status": status, "at": time.time()})

    def pending(self, deployment: str | None = None) -> list[LedgerPart]:
        """Parts whose records are not all in the checkpoint yet, oldest first."""
        return [p for p in self.parts.values()
                if p.ended is None and deployment in (None, p.deployment)]
