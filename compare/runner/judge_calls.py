"""Scoring's model calls (judges, embeddings) through the runner: `RunnerScoringContext`.

Each call is a Job on the judge/embedding deployment's own `DeploymentRun`, so it is timed,
retried with backoff, paced by that deployment's limits (rpm, tpm, concurrency) and its errors are
our errors — the same path as the calls being judged. Every finished call is appended to
`OUT/judge_records.jsonl` (a record, plus the call's key and, for embeddings, the vectors): a
resumed run re-sends no finished call. Their cost is counted here, apart from the compared
deployments' rows.
"""

from __future__ import annotations

import asyncio
import base64
import math
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np

from compare.checkpoint import Checkpoint, read_checkpoint
from compare.deployments import Deployment
from compare.errors import ConfigError
from compare.prompts import Prompt
from compare.records import Record
from compare.run_dir import JUDGE_RECORDS_FILE
from compare.runner.attempt import Backoff, DeploymentRun
from compare.runner.limits import ConcurrencyLimit, deployment_limits
from compare.runner.measure import RecordMaker
from compare.runner.plan import DeploymentPlan, Job, Requests, build_request
from compare.scorers.base import JudgeReply, ScoringCallError

CALL_KEY: Final = "call_key"
VECTORS: Final = "vectors"  # base64 float32, one string per text
LOGPROBS: Final = "logprobs"  # a judge reply's token log probabilities, kept for replay
# Judge calls in flight per judge deployment when it sets no concurrency of its own.
DEFAULT_JUDGE_CONCURRENCY: Final = 8


def _pack(vectors: list[list[float]]) -> list[str]:
    return [base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode() for v in vectors]


def _unpack(packed: list[str]) -> list[list[float]]:
    return [np.frombuffer(base64.b64decode(p), dtype="<f4").astype(float).tolist()
            for p in packed]


class RunnerScoringContext:
    """A `compare.scorers.ScoringContext` whose calls go through the runner (see the module doc).

    `deployments`: the deployments scorers may call, by name. `pool`: the EndpointPool to use.
    `out`: the run directory for judge_records.jsonl (None: nothing is kept).
    """

    def __init__(self, deployments: Mapping[str, Deployment], pool: Any, *,
                 out: Path | None = None, run_id: str = "", max_attempts: int = 5,
                 backoff: Backoff | None = None) -> None:
        self.deployments = dict(deployments)
        self.pool = pool
        self.max_attempts = max_attempts
        self.backoff = backoff or Backoff()
        self.records = RecordMaker()
        self.records.run_id = run_id
        self.records.set_secrets(getattr(pool, "secrets", []))
        self._runs: dict[str, DeploymentRun] = {}
        self._rng = random.Random()
        self.checkpoint: Checkpoint | None = None
        self._done: dict[str, dict[str, Any]] = {}
        self.stats: dict[str, dict[str, float]] = {}
        if out is not None:
            self._done = {str(row[CALL_KEY]): row
                          for row in read_checkpoint(Path(out) / JUDGE_RECORDS_FILE)
                          if row.get(CALL_KEY) and row.get("status") == "ok"}
            self.checkpoint = Checkpoint(out, name=JUDGE_RECORDS_FILE).open()
            for row in self._done.values():
                self._count(str(row["deployment"]), row.get("cost"), cached=True)

    def _run(self, name: str) -> DeploymentRun:
        run = self._runs.get(name)
        if run is not None:
            return run
        dep = self.deployments.get(name)
        if dep is None:
            known = ", ".join(self.deployments) or "none"
            raise ScoringCallError(
                f"no deployment {name!r} to score with (known: {known}); pass it with "
                "score_with=[Deployment(...)] (CLI: name it in --deployments or give it the same "
                "endpoint as the run)")
        plan = DeploymentPlan(dep, Requests(_no_prompts(), dep, {}, False), [],
                              dep.concurrency or DEFAULT_JUDGE_CONCURRENCY)
        limits = deployment_limits(dep, retry_after_cap_s=self.backoff.max_retry_after_s,
                                   global_slots=ConcurrencyLimit(plan.concurrency))
        run = DeploymentRun(plan, limits, self.records, max_attempts=self.max_attempts,
                            backoff=self.backoff, rng=self._rng)
        run.endpoint = self.pool.get(dep)
        self.records.set_secrets(getattr(self.pool, "secrets", []))
        self._runs[name] = run
        return run

    async def _send(self, name: str, job: Job) -> Record:
        record = await self._run(name).send_with_retries(job)
        record.extra[CALL_KEY] = job.prompt_id
        self._count(name, record.cost, cached=False)
        return record

    def _keep(self, record: Record) -> None:
        if record.status == "ok" and self.checkpoint is not None:
            self.checkpoint.append(record)

    async def chat(self, deployment: str, messages: list[dict[str, Any]], *, call_key: str,
                   temperature: float = 0.0, seed: int | None = 0,
                   max_tokens: int | None = None, response_format: dict[str, Any] | None = None,
                   top_logprobs: int | None = None) -> JudgeReply:
        """One judge call (not streamed); a finished call of an earlier run is replayed.
        `response_format` and `top_logprobs` (which also asks for logprobs) go in the body."""
        done = self._done.get(call_key)
        if done is not None:
            return JudgeReply(str(done.get("output") or ""), logprobs=done.get(LOGPROBS))
        dep = self._deployment(deployment)
        extra: dict[str, Any] = {"response_format": response_format} if response_format else {}
        if top_logprobs is not None:
            extra.update(logprobs=True, top_logprobs=top_logprobs)
        overrides = {"temperature": temperature, "seed": seed, "max_tokens": max_tokens,
                     "extra": extra}
        request = build_request(Prompt(call_key, messages), dep, overrides, stream=False)
        logprobs: list[Any] = []

        async def call(endpoint: Any) -> Any:
            comp = await endpoint.chat(request)
            logprobs[:] = comp.logprobs or []
            return comp

        record = await self._send(deployment, Job(call_key, 0, request, call=call))
        if logprobs:
            record.extra[LOGPROBS] = logprobs
        self._keep(record)
        if record.status != "ok":
            return JudgeReply(None, record.status, record.error_message)
        return JudgeReply(record.output or "", logprobs=logprobs or None)

    async def embed(self, deployment: str, texts: list[str], *, call_key: str
                    ) -> list[list[float]]:
        """One embeddings call; raises ScoringCallError when it fails for good."""
        done = self._done.get(call_key)
        if done is not None and done.get(VECTORS):
            return _unpack(done[VECTORS])
        dep = self._deployment(deployment)
        request = build_request(Prompt(call_key, [{"role": "user", "content": "\n".join(texts)}]),
                                dep, {}, stream=False)
        vectors: list[list[float]] = []

        async def call(endpoint: Any) -> Any:
            comp = await endpoint.embed(texts)
            vectors[:] = comp.embeddings or []
            return comp

        record = await self._send(deployment, Job(call_key, 0, request, call=call))
        if record.status != "ok":
            raise ScoringCallError(f"embeddings from {deployment!r} failed: "
                                   f"{record.error_type}: {record.error_message}")
        record.extra[VECTORS] = _pack(vectors)
        self._keep(record)
        return vectors

    def _deployment(self, name: str) -> Deployment:
        return self._run(name).dep

    def _count(self, name: str, cost: Any, *, cached: bool) -> None:
        entry = self.stats.setdefault(name, {"calls": 0, "cached": 0, "cost": 0.0})
        entry["calls"] += 1
        entry["cached"] += int(cached)
        if isinstance(cost, float | int) and not math.isnan(cost):
            entry["cost"] += float(cost)

    def summary(self) -> dict[str, Any]:
        """For the manifest: calls, replayed calls and cost per scoring deployment."""
        total = sum(e["cost"] for e in self.stats.values())
        return {"by_deployment": {k: dict(v) for k, v in self.stats.items()},
                "calls": int(sum(e["calls"] for e in self.stats.values())),
                "cost": total}

    async def aclose(self) -> None:
        if self.checkpoint is not None:
            await asyncio.to_thread(self.checkpoint.close)


def _no_prompts() -> Any:
    from compare.prompts import PromptSet

    return PromptSet([])


def scoring_deployments(needed: set[str], compared: list[Deployment], score_with: Any
                        ) -> dict[str, Deployment]:
    """The deployments scorers call, by name: among `score_with` (a Deployment, a list, a
    deployments file or a local endpoint), else among the compared ones."""
    found = {d.name: d for d in compared if d.name in needed}
    if score_with is not None:
        from compare.deployments_file import as_deployments, local_deployments

        if hasattr(score_with, "deployment_names") and hasattr(score_with, "url"):
            extra = local_deployments(score_with, names=sorted(needed - set(found)))
        else:
            extra = as_deployments(score_with)
        found.update({d.name: d for d in extra if d.name in needed})
    missing = sorted(needed - set(found))
    if missing:
        raise ConfigError(
            f"scorers call deployment(s) {', '.join(missing)}, which are neither compared nor "
            "given in score_with=...; pass their Deployment(s) (or a deployments file / local "
            "endpoint) as score_with", field="score_with")
    return found
