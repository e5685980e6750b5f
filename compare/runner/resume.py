"""Resume: what an earlier run in the same `out` directory already finished.

A checkpointed key whose status is finished (ok, content_filtered) is replayed as a `cached` row
and not sent again; anything else (errors, timeouts, throttling, incomplete streams) is sent
again. A finished key whose request fingerprint changed since (new prompt text under the same id,
other parameters) is sent again too, and counted. Batch deployments also resume the batches an
earlier run left pending (`OUT/batches.jsonl`, `compare.runner.batch_ledger`): keys of a pending
batch are collected from it, not sent again.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from compare.checkpoint import REQUEST_HASH_KEY, Checkpoint, latest_by_key
from compare.deployments import Deployment
from compare.errors import ConfigError
from compare.records import NAN, Record
from compare.run_dir import MANIFEST_FILE, RUN_FILES, read_manifest
from compare.runner.batch_ledger import LEDGER_FILE, Ledger
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
    deployments: Sequence[Deployment],
    prompt_ids: Sequence[str],
) -> Resumed:
    """The finished keys in `checkpoint`. `current_hash(prompt_id, deployment)` is this run's
    fingerprint of that request (None when unknown to this run): a different stored fingerprint
    means the request changed and the key is sent again. Rows without a stored fingerprint
    (older checkpoints) are kept. Raises ConfigError when the directory holds another
    comparison (`check_same_run`)."""
    rows = checkpoint.load()
    latest = latest_by_key(rows)
    check_same_run(out, deployments, prompt_ids, latest)
    resumed = Resumed(run_id=_previous_run_id(out, rows))
    for key, row in latest.items():
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


# What must not change under one name when a run directory is resumed: where the deployment
# points (its parameters may change: changed requests are re-sent).
_TARGET: Final = ("kind", "endpoint", "deployment")
_FIX: Final = ("use a new out directory (CLI: --out), or start over in this one with fresh=True "
               "(CLI: --fresh)")


def check_same_run(out: Path, deployments: Sequence[Deployment], prompt_ids: Sequence[str],
                   keys: Iterable[Key]) -> None:
    """Refuse to resume into a run directory whose rows would be dropped or mixed up: rows of a
    deployment or prompt this run does not have, or a deployment name that now points elsewhere.
    Adding prompts, deployments or repeats extends the run."""
    names = {d.name: d for d in deployments}
    ids = set(prompt_ids)
    old_deps: dict[str, None] = {}
    old_ids: dict[str, None] = {}
    for pid, dep, _ in keys:
        old_deps.setdefault(dep)
        old_ids.setdefault(pid)
    gone = [d for d in old_deps if d not in names]
    if gone:
        raise ConfigError(f"holds rows of other deployments ({', '.join(gone[:5])}; this run: "
                          f"{', '.join(names)}) — {_FIX}", source=str(out))
    missing = [p for p in old_ids if p not in ids]
    if missing:
        raise ConfigError(
            f"holds rows of another prompt set ({len(missing)} of its prompts are not in this "
            f"one, e.g. {missing[0]!r}) — {_FIX}", source=str(out))
    for before in read_manifest(out).get("deployments") or ():
        now = names.get(str(before.get("name"))) if isinstance(before, Mapping) else None
        if now is not None:
            after = now.to_dict()
            if any(_same(k, before.get(k)) != _same(k, after.get(k)) for k in _TARGET):
                raise ConfigError(
                    f"holds rows of deployment {now.name!r} from another target "
                    f"({before.get('kind')} {before.get('endpoint')}, deployment "
                    f"{before.get('deployment')!r}) — {_FIX}", source=str(out))


def _same(key: str, value: object) -> object:
    """A target field as compared across runs: a loopback endpoint's port is left out (the
    local endpoint takes a free port each time it starts)."""
    if key != "endpoint" or not isinstance(value, str):
        return value
    parts = urlsplit(value)
    if parts.hostname in ("127.0.0.1", "localhost", "::1"):
        return parts._replace(netloc=parts.hostname).geturl()
    return value


def start_fresh(out: Path) -> None:
    """Remove a run directory's run files (fresh=True / --fresh); other files stay. Batches an
    earlier run left pending are named in a warning: they run on (and are billed) unless
    cancelled, and this directory no longer knows them."""
    ledger = Ledger(out)
    pending = [p.batch_id or f"(file {p.file_id}, no batch yet)" for p in ledger.load().values()
               if p.ended is None]
    if pending:
        warnings.warn(f"{out}: starting fresh forgets {len(pending)} batch(es) an earlier run "
                      f"left pending: {', '.join(pending[:10])} — they keep running on the "
                      "service unless cancelled there", RuntimeWarning, stacklevel=4)
    for name in (*RUN_FILES, LEDGER_FILE):
        (out / name).unlink(missing_ok=True)


def describe(out: Path, finished: int, to_send: int, changed: int) -> str:
    """The line a user reads when a run resumes."""
    text = f"resuming {out}: {finished} finished, {to_send} to send"
    if changed:
        text += f", {changed} re-sent because their request changed"
    return text
