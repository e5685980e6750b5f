"""The run directory's `records.jsonl`: one JSON line per final record, appended as it completes.

Durability model: every record is written and flushed to the OS at once (so it survives the
process being killed, SIGKILL included); the file is fsync'ed in a background thread at most
every `fsync_interval_s` and at close (so it also survives a machine crash up to that window).
A process killed mid-write leaves a torn last line: `read_checkpoint` drops it (never fatal) and
`Checkpoint.open` truncates it away before appending, so the file stays one record per line.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Final

from compare.records import RECORD_COLUMNS, Record

RECORDS_FILE: Final = "records.jsonl"
# Not a record column: the runner's fingerprint of the request (record.extra), kept in the
# checkpoint line only so a resume can tell that a prompt changed under the same id.
REQUEST_HASH_KEY: Final = "request_hash"
_COLUMNS: Final = RECORD_COLUMNS


def record_to_json(record: Record) -> bytes:
    """One JSON line for a record. NaN becomes null so the file is standard JSON."""
    row: dict[str, Any] = {}
    for name in _COLUMNS:
        value = getattr(record, name)
        if value.__class__ is float and math.isnan(value):
            value = None
        row[name] = value
    for key, value in record.extra.items():  # the request fingerprint, a scoring call's key
        row.setdefault(key, value)
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _scan(data: bytes, source: str) -> tuple[list[dict[str, Any]], int]:
    """Parse lines; return the rows and the byte length of the intact prefix of the file."""
    rows: list[dict[str, Any]] = []
    good_end = 0
    bad = 0
    start = 0
    size = len(data)
    while start < size:
        nl = data.find(b"\n", start)
        if nl < 0:
            # No newline: the writer was killed mid-line. Dropped, and truncated on open.
            warnings.warn(
                f"{source}: dropped a torn last line ({size - start} bytes) left by an "
                "interrupted run",
                RuntimeWarning,
                stacklevel=3,
            )
            break
        line = data[start:nl]
        start = nl + 1
        good_end = start
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(row, dict) and {"prompt_id", "deployment", "repeat"} <= row.keys():
            rows.append(row)
        else:
            bad += 1
    if bad:
        warnings.warn(f"{source}: skipped {bad} unreadable line(s)", RuntimeWarning, stacklevel=3)
    return rows, good_end


def read_checkpoint(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every intact row of a records.jsonl, in file order (a rerun may repeat a key; last wins)."""
    p = Path(path)
    if p.is_dir():
        p = p / RECORDS_FILE
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        return []
    return _scan(data, str(p))[0]


def latest_by_key(rows: list[dict[str, Any]]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """The last row per (prompt_id, deployment, repeat): a rerun's row supersedes the old one."""
    out: dict[tuple[str, str, int], dict[str, Any]] = {}
    for row in rows:
        out[(str(row["prompt_id"]), str(row["deployment"]), int(row["repeat"]))] = row
    return out


class Checkpoint:
    """Append-only writer of a run directory's records.jsonl."""

    def __init__(self, directory: str | os.PathLike[str], *, fsync_interval_s: float = 1.0,
                 file_name: str = RECORDS_FILE) -> None:
        self.directory = Path(directory)
        self.path = self.directory / file_name
        self.fsync_interval_s = fsync_interval_s
        self._file: Any = None
        self._last_sync = 0.0
        self._syncing = False
        self.written = 0

    def load(self) -> list[dict[str, Any]]:
        """Rows already in the file; truncates a torn tail so appends start on a fresh line."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        rows, good_end = _scan(data, str(self.path))
        if good_end < len(data):
            with open(self.path, "r+b") as f:
                f.truncate(good_end)
        return rows

    def open(self, *, loaded: bool = False) -> Checkpoint:
        """Open for appending. `loaded=True`: `load()` already ran (and cut any torn tail)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if not loaded and self.path.exists():
            self.load()  # truncates a torn line left by a killed writer
        self._file = open(self.path, "ab")  # noqa: SIM115 - held open for the whole run
        self._last_sync = time.monotonic()
        return self

    def append(self, record: Record) -> None:
        f = self._file
        f.write(record_to_json(record))
        f.flush()  # in the OS now: survives the process being killed
        self.written += 1
        now = time.monotonic()
        if now - self._last_sync >= self.fsync_interval_s and not self._syncing:
            self._last_sync = now
            self._syncing = True
            # fsync can take milliseconds; off the event loop so it never skews chunk timestamps.
            threading.Thread(target=self._sync, args=(f.fileno(),), daemon=True).start()

    def _sync(self, fd: int) -> None:
        try:
            os.fsync(fd)
        except OSError:
            pass  # the file was closed meanwhile; close() fsyncs itself
        finally:
            self._syncing = False

    def close(self) -> None:
        f = self._file
        if f is None:
            return
        self._file = None
        f.flush()
        try:
            os.fsync(f.fileno())
        finally:
            f.close()

    def __enter__(self) -> Checkpoint:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
