"""One shard of a sharded run: the in-process runner on the keys this shard owns.

`ShardRole` is what the runner's `Run` asks when it runs as a shard: which keys are its own,
where its records go (its own record file; it reads them all to resume), which limits its
deployments pass (the shared ones, through the coordinator), and where its share of the results
goes (parquet parts under `parts/`, written every `PART_ROWS` rows so a shard never holds more
than that in memory). `run_shard` runs one shard to the end and returns its counts.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from compare.checkpoint import Checkpoint, shard_records_name
from compare.deployments import Deployment
from compare.distributed.client import (
    CoordinatorClient,
    SharedAdmission,
    SharedPause,
    Transport,
)
from compare.distributed.coordinator import Quota
from compare.distributed.shards import Shard
from compare.frame import ColumnBuffer
from compare.prompts import PromptSet
from compare.run_parts import PARTS_DIR
from compare.runner.attempt import Backoff
from compare.runner.limits import Limit

PART_ROWS: Final = 50_000


def part_prefix(shard: int) -> str:
    return f"part-s{shard:04d}-"


@dataclass
class ShardJob:
    """Everything one shard needs (picklable: it travels to a process or a Ray worker)."""

    prompts: PromptSet
    deployments: list[Deployment]
    out: Path
    stamp: str
    run_id: str
    shard: int
    count: int
    quotas: dict[str, Quota]
    repeats: int = 1
    stream: bool = True
    concurrency: int = 32
    max_attempts: int = 5
    backoff: Backoff = field(default_factory=Backoff)
    overrides: dict[str, Any] = field(default_factory=dict)


class ShardRole:
    """The runner's hooks when it runs one shard (see the module docstring)."""

    def __init__(self, job: ShardJob, client: CoordinatorClient) -> None:
        self.job = job
        self.client = client
        self.shard = Shard(job.shard, job.count)
        self.parts = job.out / PARTS_DIR
        self.written = 0

    def owns(self, prompt_id: str, deployment: str, repeat: int) -> bool:
        return self.shard.owns(prompt_id, deployment, repeat)

    def checkpoint(self, out: Path) -> Checkpoint:
        return Checkpoint(out, name=shard_records_name(self.job.stamp, self.job.shard),
                          keep=self.shard.owns_row)

    def limits(self, dep: Deployment, global_slots: Limit | None) -> list[Limit]:
        limits: list[Limit] = [SharedPause(self.client, dep.name)]
        if self.job.quotas[dep.name].admits:
            limits.append(SharedAdmission(self.client, dep.name))
        if global_slots is not None:
            limits.append(global_slots)
        return limits

    def start(self) -> None:
        """Remove the parts an earlier life of this shard wrote: it writes them all again."""
        self.parts.mkdir(parents=True, exist_ok=True)
        for old in self.parts.glob(part_prefix(self.job.shard) + "*.parquet"):
            old.unlink()

    def flush(self, buffer: ColumnBuffer, *, final: bool = False) -> ColumnBuffer:
        """Write the buffered rows as a part when there are enough (or at the end)."""
        if len(buffer) < (1 if final else PART_ROWS):
            return buffer
        name = f"{part_prefix(self.job.shard)}{self.written:05d}.parquet"
        tmp = self.parts / (name + ".tmp")
        buffer.frame().to_parquet(tmp, index=False)
        tmp.replace(self.parts / name)
        self.written += 1
        return ColumnBuffer()


async def run_shard(job: ShardJob, transport: Transport) -> dict[str, list[int]]:
    """Run one shard to the end; its [ok, failed, cached] counts per deployment. Stops (records
    kept) when the coordinator is lost."""
    from compare.runner.scheduler import Run

    main = asyncio.current_task()
    lost: list[BaseException] = []

    def on_lost(error: BaseException) -> None:
        lost.append(error)
        if main is not None:
            main.cancel()

    client = await CoordinatorClient(transport, job.shard, on_lost=on_lost).start()
    role = ShardRole(job, client)
    counts: dict[str, list[int]] = {}

    def count(rec: Any) -> None:
        client.count(rec)
        c = counts.setdefault(rec.deployment, [0, 0, 0])
        c[2 if rec.cached else 0 if rec.status == "ok" else 1] += 1

    run = Run(job.prompts, job.deployments, repeats=job.repeats, out=job.out, run_id=job.run_id,
              stream=job.stream, concurrency=job.concurrency, max_attempts=job.max_attempts,
              progress=False, on_record=count, backoff=job.backoff, pool=None,
              overrides=job.overrides, shared_limits=[], shard=role)
    try:
        await run.execute()
    except asyncio.CancelledError:
        if not lost:
            raise
        raise ConnectionError(f"shard {job.shard}: the run's coordinator is gone "
                              f"({lost[0]!r}); records so far are kept") from None
    finally:
        with contextlib.suppress(Exception):
            await client.close()
    return counts
