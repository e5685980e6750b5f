"""Helpers for the sharded-run tests: simulated deployments, record files, shard processes."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import psutil

from compare.checkpoint import read_checkpoint, record_files

DONE = ("ok", "content_filtered")


def sim(ttft_ms: float = 2, tokens: int = 4, seed: int = 1, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"backend": "simulated",
                            "simulated": {"seed": seed, "output_tokens": tokens,
                                          "ttft_ms": ttft_ms, "itl_ms": 0}}
    spec.update(extra)
    return spec


def resent_after_finished(out: Path) -> list[tuple[str, str, int]]:
    """Keys that have any row after a finished one, over every record file in write order."""
    finished: set[tuple[str, str, int]] = set()
    bad = []
    for row in read_checkpoint(out):
        key = (str(row["prompt_id"]), str(row["deployment"]), int(row["repeat"]))
        if key in finished:
            bad.append(key)
        if row["status"] in DONE:
            finished.add(key)
    return bad


def rows_per_key(out: Path) -> dict[tuple[str, str, int], int]:
    counts: dict[tuple[str, str, int], int] = defaultdict(int)
    for row in read_checkpoint(out):
        counts[(str(row["prompt_id"]), str(row["deployment"]), int(row["repeat"]))] += 1
    return counts


def lines_written(out: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in record_files(out))


def shard_processes(root: psutil.Process | None = None) -> list[psutil.Process]:
    root = root or psutil.Process()
    found = []
    for p in root.children(recursive=True):
        try:
            if "compare.distributed.local_engine" in " ".join(p.cmdline()):
                found.append(p)
        except psutil.Error:
            continue
    return found


async def wait_for_lines(out: Path, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while lines_written(out) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {n} records in {out} after {timeout} s")
        await asyncio.sleep(0.05)
