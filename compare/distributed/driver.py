"""The driver of a sharded run: plan the shards, run them on an engine, one bar, one directory.

`arun_sharded` is what `compare.arun(..., workers=N)` and `(..., ray=ADDRESS)` call. It writes
the run directory's manifest (status running → complete / interrupted), removes results an
earlier invocation left (they are written again, as parquet parts, by the shards), starts one
`Coordinator`, gives every shard the same plan (`ShardJob`: the whole prompt set; each shard
keeps the keys it owns), feeds one progress bar from the coordinator's counts, and at the end
marks the parts complete and returns `Results.load(out)`.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

from compare.checkpoint import run_stamp
from compare.deployments import Deployment
from compare.distributed.coordinator import Coordinator, Quota
from compare.distributed.worker import ShardJob
from compare.errors import ConfigError
from compare.prompts import PromptSet
from compare.results import Results
from compare.run_dir import MANIFEST_FILE, PROMPTS_FILE, RESULTS_FILE, write_frame, write_manifest
from compare.run_parts import PARTS_DIR, parts_manifest, remove_shard_files
from compare.runner.attempt import Backoff
from compare.runner.progress import Progress
from compare.runner.resume import start_fresh
from compare.runner.scheduler import Run, _prompt_frame, new_run_id


def quotas(deps: list[Deployment], groups: list[tuple[frozenset[str], int]]
           ) -> tuple[dict[str, Quota], dict[str, int]]:
    """Each deployment's shared limits, and each shared_limits group's limit by group name."""
    group_of: dict[str, str] = {}
    limits: dict[str, int] = {}
    for names, n in groups:
        gname = "+".join(sorted(names))
        limits[gname] = n
        group_of.update(dict.fromkeys(names, gname))
    out = {d.name: Quota(d.requests_per_minute, d.tokens_per_minute, d.concurrency,
                         group_of.get(d.name)) for d in deps}
    return out, limits


class BarFeed:
    """One progress bar for the whole run, fed with the coordinator's totals."""

    def __init__(self, total: int, names: list[str], enabled: bool) -> None:
        self.progress = Progress(total, names, enabled)
        self.shown = 0

    def update(self, totals: dict[str, list[int]]) -> None:
        bar = self.progress.bar
        if bar is None:
            return
        done = sum(sum(c) for c in totals.values())
        if done != self.shown:
            bar.update(done - self.shown)
            self.shown = done
        for name, (ok, failed, cached) in totals.items():
            if name in self.progress.counts:
                self.progress.counts[name] = [ok + failed + cached, failed]
        bar.set_postfix_str(self.progress.postfix(), refresh=False)

    def close(self) -> None:
        self.progress.close()


def _manifest_run_id(directory: Path) -> str | None:
    """The run id of an earlier invocation in this directory: a resumed run keeps it."""
    try:
        found = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8")).get("run_id")
    except (OSError, ValueError, AttributeError):
        return None
    return str(found) if found else None


def _check(out: Any, workers: int | None, ray: str | None, on_record: Any, pool: Any,
           fail_fast: bool) -> Path:
    if out is None:
        raise ConfigError("workers= and ray= need out=DIR: every shard writes its records to the "
                          "run directory", field="out")
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool)
                                or workers < 1):
        raise ConfigError(f"workers must be a positive integer, got {workers!r}", field="workers")
    if on_record is not None:
        raise ConfigError("on_record is not available with workers= or ray= (records arrive in "
                          "other processes); read out/ with Results.load instead",
                          field="on_record")
    if pool is not None:
        raise ConfigError("pool= is not available with workers= or ray= (each shard opens its "
                          "own connections)", field="pool")
    if fail_fast:
        raise ConfigError("fail_fast is not available with workers= or ray=: each shard warns "
                          "about a deployment it cannot use and goes on without it",
                          field="fail_fast")
    if ray is not None and (not isinstance(ray, str) or not ray.strip()):
        raise ConfigError(f"ray must be a cluster address or 'auto', got {ray!r}", field="ray")
    return Path(out)


async def arun_sharded(prompts: PromptSet, deps: list[Deployment], *, out: Any,
                       workers: int | None, ray: str | None, repeats: int,
                       run_id: str | None, stream: bool, concurrency: int, max_attempts: int,
                       progress: bool, backoff: Backoff | None, overrides: dict[str, Any],
                       shared_limits: list[tuple[frozenset[str], int]], fresh: bool = False,
                       fail_fast: bool = False, on_record: Any = None, pool: Any = None
                       ) -> Results:
    """A run sharded over `workers` local processes or over a Ray cluster (`ray`)."""
    directory = _check(out, workers, ray, on_record, pool, fail_fast)
    backoff = backoff or Backoff()
    directory.mkdir(parents=True, exist_ok=True)
    if fresh:
        start_fresh(directory)
        remove_shard_files(directory)
    run_id = run_id or _manifest_run_id(directory) or new_run_id()
    engine: Any
    if ray is not None:
        from compare.distributed.ray_engine import RayEngine

        engine = RayEngine(ray)
        count = workers or engine.default_shards()
    else:
        from compare.distributed.local_engine import LocalEngine

        engine = LocalEngine()
        count = workers or 1
    quota, groups = quotas(deps, shared_limits)
    stamp = run_stamp()
    jobs = [ShardJob(prompts, deps, directory, stamp, run_id, i, count, quota, repeats=repeats,
                     stream=stream, concurrency=max(1, math.ceil(concurrency / count)),
                     max_attempts=max_attempts, backoff=backoff, overrides=overrides)
            for i in range(count)]
    # The manifest is the one a single-process run writes, plus how it was sharded.
    record = Run(prompts, deps, repeats=repeats, out=None, run_id=run_id, stream=stream,
                 concurrency=concurrency, max_attempts=max_attempts, progress=False,
                 on_record=None, backoff=backoff, pool=None, overrides=overrides,
                 shared_limits=shared_limits)
    engine_info = {"engine": "ray" if ray is not None else "processes", "shards": count,
                   "ray_address": ray, "stamp": stamp}

    def manifest(status: str) -> dict[str, Any]:
        return {**record.manifest(status), "sharding": engine_info}

    (directory / RESULTS_FILE).unlink(missing_ok=True)
    shutil.rmtree(directory / PARTS_DIR, ignore_errors=True)
    write_manifest(directory, manifest("running"))
    write_frame(_prompt_frame(prompts), directory / PROMPTS_FILE)
    coordinator = Coordinator(quota, groups, retry_after_cap_s=backoff.max_retry_after_s)
    feed = BarFeed(len(prompts) * len(deps) * repeats, [d.name for d in deps], progress)
    status = "interrupted"
    try:
        await engine.run(jobs, coordinator, lambda: feed.update(engine.totals(coordinator)))
        status = "complete"
    finally:
        feed.close()
        final = manifest(status)
        final.update(parts_manifest(directory, complete=status == "complete"))
        write_manifest(directory, final)
    return Results.load(directory)
