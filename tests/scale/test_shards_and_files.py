"""Pure logic of sharded runs: the stable key hash, and one run directory of several record files
(written in order, read as one, each writer truncating only its own torn tail)."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from compare.checkpoint import (
    RECORDS_FILE,
    Checkpoint,
    latest_by_key,
    read_checkpoint,
    record_files,
    shard_records_name,
)
from compare.distributed.shards import Shard, key_hash
from compare.records import Record


def test_key_hash_is_the_same_in_another_process() -> None:
    # Python's hash() is salted per process; the shard of a key must not be.
    code = ("from compare.distributed.shards import key_hash; "
            "print(key_hash('prompt-7', 'gpt-4o', 2))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={"PYTHONHASHSEED": "123",
                                            "PYTHONPATH": str(Path(__file__).parents[2])})
    assert int(other.stdout) == key_hash("prompt-7", "gpt-4o", 2)


def test_every_key_has_exactly_one_shard_and_shards_are_even() -> None:
    shards = [Shard(i, 4) for i in range(4)]
    owners = Counter()
    for p in range(2000):
        for dep in ("a", "b"):
            for r in range(3):
                owning = [s.index for s in shards if s.owns(f"p{p}", dep, r)]
                assert len(owning) == 1
                owners[owning[0]] += 1
    assert sum(owners.values()) == 12_000
    assert all(abs(n - 3000) < 3000 * 0.05 for n in owners.values()), owners


def test_owns_agrees_with_key_hash_and_rejects_a_bad_index() -> None:
    s = Shard(1, 3)
    for r in range(10):
        assert s.owns("x", "y", r) == (key_hash("x", "y", r) % 3 == 1)
    with pytest.raises(ValueError, match=r"not in 0\.\.2"):
        Shard(3, 3)


def _rec(pid: str, status: str = "ok", repeat: int = 0) -> Record:
    return Record(run_id="r", prompt_id=pid, deployment="d", repeat=repeat,
                  endpoint_kind="openai", status=status)


def test_record_files_in_write_order_and_read_as_one(tmp_path: Path) -> None:
    with Checkpoint(tmp_path) as ck:  # an in-process run first: records.jsonl
        ck.append(_rec("a", "error"))
        ck.append(_rec("b"))
    assert ck.path.name == RECORDS_FILE
    for shard in (1, 0):  # a sharded invocation: one stamped file per shard
        with Checkpoint(tmp_path, name=shard_records_name("20260101T000000000000Z", shard)) as c:
            c.append(_rec("a") if shard == 0 else _rec("c"))
    later = Checkpoint(tmp_path)  # an in-process rerun after it must sort after the shards
    assert later.path.name.startswith("records-2") and later.path.name > "records-20260101"
    with later:
        later.append(_rec("c", "timeout"))
    names = [p.name for p in record_files(tmp_path)]
    assert names[0] == RECORDS_FILE and names[1:3] == sorted(names[1:3]) and \
        names[3] == later.path.name
    latest = latest_by_key(read_checkpoint(tmp_path))
    assert {k[0]: v["status"] for k, v in latest.items()} == \
        {"a": "ok", "b": "ok", "c": "timeout"}


def test_load_filters_and_truncates_only_its_own_torn_tail(tmp_path: Path) -> None:
    mine, other = shard_records_name("s", 0), shard_records_name("s", 1)
    with Checkpoint(tmp_path, name=other) as c:
        c.append(_rec("x"))
    with Checkpoint(tmp_path, name=mine) as c:
        c.append(_rec("y"))
    for name in (mine, other):
        with open(tmp_path / name, "ab") as f:
            f.write(b'{"prompt_id": "torn')  # a writer killed (or still writing) mid-line
    ck = Checkpoint(tmp_path, name=mine, keep=lambda row: row["prompt_id"] != "x")
    with pytest.warns(RuntimeWarning, match="torn last line"):
        rows = ck.load()
    assert [r["prompt_id"] for r in rows] == ["y"]
    assert (tmp_path / mine).read_bytes().endswith(b"\n")
    assert (tmp_path / other).read_bytes().endswith(b'"torn')  # another writer's file: untouched
