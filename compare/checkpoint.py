"""The run directory's `records.jsonl`: one JSON line per final record, appended as it completes.

Durability model: each record's line is written as the record finishes and handed to the OS at
the end of that turn of the event loop (one write for the burst of records a turn finishes; at
once when no loop runs). From there it survives the process being killed, SIGKILL included. So
a kill loses at most the records finished in the turn it lands in: their answers came back but
their lines never reached the file, and a resume sends those requests again (nothing is counted
twice). The file is fsync'ed in a background thread at most every `fsync_interval_s` and at close
(so it also survives a machine crash up to that window).
A process killed mid-write leaves a torn last line: `read_checkpoint` drops it (never fatal) and
`Checkpoint.open` truncates it away before appending, so the file stays one record per line.

One run directory may hold several record files: `records.jsonl` (the in-process runner), and
`records-<stamp>-s<shard>.jsonl` (one per shard of a sharded run; `<stamp>` is the UTC start of the
run invocation that wrote it). `record_files` lists them in write order — records.jsonl first,
then by stamp — so reading them one after the other keeps "a later row for a key supersedes an
earlier one" true across files. Once a stamped file exists, the in-process runner writes a new
stamped file too (`records-<stamp>.jsonl`) instead of appending to records.jsonl, which would put
its rows before the shards' in that order.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import threading
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from compare.records import RECORD_COLUMNS, Record

RECORDS_FILE: Final = "records.jsonl"
STAMPED_PREFIX: Final = "records-"
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


def run_stamp() -> str:
    """A sortable stamp for the record files of one run invocation (UTC, microseconds)."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def shard_records_name(stamp: str, shard: int) -> str:
    """The record file of one shard of a run invocation."""
    return f"{STAMPED_PREFIX}{stamp}-s{shard:04d}.jsonl"


def record_files(directory: str | os.PathLike[str]) -> list[Path]:
    """Every record file of a run directory, in write order (see the module docstring)."""
    d = Path(directory)
    first = [d / RECORDS_FILE] if (d / RECORDS_FILE).is_file() else []
    return first + sorted(d.glob(f"{STAMPED_PREFIX}*.jsonl"))


def _scan(data: bytes, source: str, *, warn_torn: bool = True
          ) -> tuple[list[dict[str, Any]], int]:
    """Parse lines; return the rows and the byte length of the intact prefix of the file."""
    rows: list[dict[str, Any]] = []
    good_end = 0
    bad = 0
    start = 0
    size = len(data)
    while start < size:
        nl = data.find(b"\n", start)
        if nl < 0:
            # No newline: the writer was killed mid-line (or, in another shard's file, is still
            # writing it). Dropped, and truncated when its own writer opens the file.
            if not warn_torn:
                break
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
    """Every intact row of a record file, in file order (a rerun may repeat a key; last wins).
    For a run directory: the rows of all its record files, in write order (`record_files`)."""
    p = Path(path)
    paths = record_files(p) if p.is_dir() else [p]
    rows: list[dict[str, Any]] = []
    for file in paths:
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            continue
        rows += _scan(data, str(file))[0]
    return rows


def latest_by_key(rows: list[dict[str, Any]]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """The last row per (prompt_id, deployment, repeat): a rerun's row supersedes the old one."""
    out: dict[tuple[str, str, int], dict[str, Any]] = {}
    for row in rows:
        out[(str(row["prompt_id"]), str(row["deployment"]), int(row["repeat"]))] = row
    return out


class Checkpoint:
    """Append-only writer of one record file of a run directory; reads all of them.

    `name`: the file to append to (default: records.jsonl, or a new stamped file once the
    directory has stamped ones). `keep(row)`: which rows `load()` returns (a shard reads only
    the keys it owns).
    """

    def __init__(self, directory: str | os.PathLike[str], *, fsync_interval_s: float = 1.0,
                 name: str | None = None,
                 keep: Callable[[dict[str, Any]], bool] | None = None) -> None:
        self.directory = Path(directory)
        if name is None:
            stamped = list(self.directory.glob(f"{STAMPED_PREFIX}*.jsonl"))
            name = f"{STAMPED_PREFIX}{run_stamp()}.jsonl" if stamped else RECORDS_FILE
        self.path = self.directory / name
        self.keep = keep
        self.fsync_interval_s = fsync_interval_s
        self._file: Any = None
        self._last_sync = 0.0
        self._syncing = False
        self._flush_pending = False
        self.written = 0

    def load(self) -> list[dict[str, Any]]:
        """Rows already in the directory's record files (in write order, filtered by `keep`);
        truncates a torn tail of this writer's own file so appends start on a fresh line. Other
        files are only read: their writers may be appending right now."""
        rows: list[dict[str, Any]] = []
        files = record_files(self.directory) if self.directory.is_dir() else []
        for file in files:
            own = file == self.path
            try:
                data = file.read_bytes()
            except FileNotFoundError:
                continue
            found, good_end = _scan(data, str(file), warn_torn=own)
            if own and good_end < len(data):
                self._truncate(good_end)
            keep = self.keep
            rows += found if keep is None else [r for r in found if keep(r)]
        return rows

    def _truncate(self, size: int) -> None:
        with open(self.path, "r+b") as f:
            f.truncate(size)

    def _cut_torn_tail(self) -> None:
        """Cut a torn line left by a killed writer of this file."""
        data = self.path.read_bytes()
        good_end = _scan(data, str(self.path))[1]
        if good_end < len(data):
            self._truncate(good_end)

    def open(self, *, loaded: bool = False) -> Checkpoint:
        """Open for appending. `loaded=True`: `load()` already ran (and cut any torn tail)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if not loaded and self.path.exists():
            self._cut_torn_tail()
        self._file = open(self.path, "ab")  # noqa: SIM115 - held open for the whole run
        self._last_sync = time.monotonic()
        return self

    def append(self, record: Record) -> None:
        f = self._file
        f.write(record_to_json(record))
        self.written += 1
        self._flush_soon()
        now = time.monotonic()
        if now - self._last_sync >= self.fsync_interval_s and not self._syncing:
            self._last_sync = now
            self._syncing = True
            # fsync can take milliseconds; off the event loop so it never skews chunk timestamps.
            threading.Thread(target=self._sync, args=(f.fileno(),), daemon=True).start()

    def _flush_soon(self) -> None:
        """Hand the lines to the OS (where they survive the process being killed) once the
        records finished in this turn of the event loop are all written: one write call for
        a burst of answers instead of one each (the write was 5 % of the client's CPU per
        non-streamed request at 16 in flight, profiled). Without a running loop, at once."""
        if self._flush_pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._file.flush()
            return
        self._flush_pending = True
        loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        if self._file is not None:
            self._file.flush()

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
