"""`ray=ADDRESS`: the shards as Ray tasks, the coordinator as a Ray actor.

Why tasks running the in-process runner, not `ray.data.llm`: its HTTP stage sends one request at a
time per actor and ignores Retry-After; a shard here keeps its own event loop with many requests
in flight and the runner's retries, pacing and timing. The coordinator is one actor that takes no
CPU (`num_cpus=0`) and answers a shard's whole batch per call (a call costs about 0.65 ms, so
shards never call it per request). A shard whose worker dies is retried by Ray (`max_retries`);
the retry resumes from the shard's own record file and the coordinator frees what the dead one
held, so no finished key is sent again and no key gets a second record. When the driver exits,
Ray ends its tasks and actor.

`address`: "auto" (the cluster this machine belongs to), "ray://host:port" or "host:port", or
"local" for a one-machine cluster started here (object store capped at `LOCAL_OBJECT_STORE_MB`).
Every node must reach the deployments and write the run directory (a shared filesystem).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Any, Final

from compare.deployments import Deployment
from compare.distributed.coordinator import Coordinator, Exchange, Reply
from compare.distributed.worker import ShardJob, run_shard
from compare.errors import CompareError, ConfigError

MAX_RETRIES: Final = 3
POLL_S: Final = 0.25
LOCAL_OBJECT_STORE_MB: Final = 256


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("ray= needs Ray: pip install 'compare[ray]' (or run with workers=N "
                          "on this machine instead)", field="ray") from None
    return ray


class CoordinatorActor:
    """The run's `Coordinator` in an actor (methods run one at a time)."""

    def __init__(self, coordinator: Coordinator) -> None:
        self.coordinator = coordinator

    def hello(self, shard: int) -> None:
        self.coordinator.hello(shard)

    def exchange(self, msg: Exchange) -> Reply:
        return self.coordinator.exchange(msg)

    def totals(self) -> dict[str, list[int]]:
        return self.coordinator.totals()


class ActorTransport:
    """A shard's link to the coordinator actor (an ObjectRef is awaitable)."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    async def hello(self, shard: int) -> None:
        await self.actor.hello.remote(shard)

    async def exchange(self, msg: Exchange) -> Reply:
        reply: Reply = await self.actor.exchange.remote(msg)
        return reply


def shard_task(job: ShardJob, actor: Any) -> dict[str, list[int]]:
    """One shard in a Ray worker."""
    return asyncio.run(run_shard(job, ActorTransport(actor)))


def with_keys(deps: list[Deployment]) -> list[Deployment]:
    """Deployments whose key comes from an environment variable carry it resolved: Ray workers
    have the environment of the node they run on, not the driver's. (The key travels in the
    task's arguments, in memory; manifests never hold it.)"""
    out = []
    for dep in deps:
        if dep.auth == "key" and not dep.api_key:
            # No key anywhere: left as it is, the shard writes the rows that say so.
            with contextlib.suppress(CompareError):
                dep = dataclasses.replace(dep, api_key=dep.resolve_api_key())
        out.append(dep)
    return out


class RayEngine:
    """Run a sharded run's shards on a Ray cluster."""

    def __init__(self, address: str) -> None:
        self.ray = _ray()
        if not self.ray.is_initialized():
            if address == "local":
                self.ray.init(object_store_memory=LOCAL_OBJECT_STORE_MB * 2**20,
                              include_dashboard=False, log_to_driver=False)
            else:
                self.ray.init(address=address, log_to_driver=False)
        self.actor: Any = None

    def default_shards(self) -> int:
        return max(1, int(self.ray.cluster_resources().get("CPU", 1)))

    def totals(self, coordinator: Coordinator) -> dict[str, list[int]]:
        if self.actor is None:
            return {}
        totals: dict[str, list[int]] = self.ray.get(self.actor.totals.remote())
        return totals

    async def run(self, jobs: list[ShardJob], coordinator: Coordinator, on_tick: Any) -> None:
        ray = self.ray
        self.actor = ray.remote(num_cpus=0)(CoordinatorActor).remote(coordinator)
        task = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(shard_task)
        for job in jobs:
            job.deployments = with_keys(job.deployments)
        refs = [task.remote(job, self.actor) for job in jobs]
        try:
            await self._watch(refs, jobs, on_tick)
        finally:
            for ref in refs:
                ray.cancel(ref)
            ray.kill(self.actor)
            self.actor = None

    async def _watch(self, refs: list[Any], jobs: list[ShardJob], on_tick: Any) -> None:
        ray = self.ray
        pending = list(refs)
        loop = asyncio.get_running_loop()
        while pending:
            ready, pending = await loop.run_in_executor(
                None, lambda p=pending: ray.wait(p, num_returns=len(p), timeout=POLL_S))
            on_tick()
            for ref in ready:
                try:
                    ray.get(ref)
                except Exception as e:
                    shard = refs.index(ref)
                    raise CompareError(
                        f"shard {shard} of {len(jobs)} failed on Ray after {MAX_RETRIES} "
                        f"retries: {e}; finished records are kept in {jobs[shard].out} — rerun "
                        "with the same out to resume") from e
