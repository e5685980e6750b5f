"""Resume: what an earlier run in the same `out` directory already finished.

A checkpointed key whose status is finished (ok, content_filtered) is replayed as a `cached` row
and not sent again; anything else (errors, timeouts, throttling, incomplete streams) is sent
again. A finished key whose request fingerprint changed since (new prompt text under the same id,
other parameters) is sent again too, and counted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from compare.checkpoint import REQUEST_HASH_KEY, Checkpoint, latest_by_key
from compare.records import NAN, Record
from compare.results import MANIFEST_FILE
from compare.runner.plan import Key

DONE_STATUSES: Final = frozenset({"ok", "content_filtered"})
_IDENTITY: Final = ("run_id", "prompt_id", "deployment", "repeat", "endpoint_kind")


@dataclass
class Resumed:
    """What the run directory held: the finished rows by key, the earlier run's id, and how many
    finished keys are sent again because their request changed."""

    done: dict[Key, dict[str, Any]] = field(default_factory=dict)
    run_id: str | None = None
    changed: int = 0


def load_finished(
    checkpoint: Checkpoint,
    out: Path,
    current_hash: Callable[[str, str], str | None],
) -> Resumed:
    """The finished keys in `checkpoint`. `current_hash(prompt_id, deployment)` is this run's
    fingerprint of that request (None when unknown to this run): a different stored fingerprint
    means the request changed and the key is sent again. Rows without a stored fingerprint
    (older checkpoints) are kept."""
    rows = checkpoint.load()
    resumed = Resumed(run_id=_previous_run_id(out, rows))
    for key, row in latest_by_key(rows).items():
        if row.get("status") not in DONE_STATUSES:
            continue
        stored = row.get(REQUEST_HASH_KEY)
        if stored is not None:
            current = current_hash(key[0], key[1])
            if current is not None and current != stored:
                resumed.changed += 1
                continue
        resumed.done[key] = row
    return resumed


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


def record_from_row(row: Mapping[str, Any], *, cached: bool) -> Record:
    """A checkpoint row as a Record (for callbacks and progress of replayed keys)."""
    rec = Record(
        run_id=str(row.get("run_id") or ""),
        prompt_id=str(row["prompt_id"]),
        deployment=str(row["deployment"]),
        repeat=int(row["repeat"]),
        endpoint_kind=str(row.get("endpoint_kind") or ""),
    )
    for name, value in row.items():
        if name in _IDENTITY or name == "extra" or not hasattr(rec, name):
            continue
        if value is None and isinstance(getattr(rec, name), float):
            value = NAN
        setattr(rec, name, value)
    rec.cached = cached
    return rec
