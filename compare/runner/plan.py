"""What a run will send: the requests (each built once), their fingerprints, and the jobs.

`build_request` is the one place where a deployment's defaults, a run's overrides and a prompt
become a `ChatRequest`: the runner builds each (deployment, prompt) request once, uses it for
every repeat and retry, and fingerprints the same object for resume (`request_hash`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from compare.deployments import REQUEST_PARAMS, Deployment
from compare.endpoints.base import ChatRequest, Completion
from compare.prompts import Prompt, PromptSet

OVERRIDE_PARAMS: Final = (*REQUEST_PARAMS, "system", "extra")
# Token estimate for tokens/min pacing when neither the call nor the deployment sets max_tokens.
DEFAULT_MAX_TOKENS_ESTIMATE: Final = 256
CHARS_PER_TOKEN: Final = 4

Key = tuple[str, str, int]  # (prompt_id, deployment, repeat): one record each


@dataclass(frozen=True)
class Job:
    """One request to send, and the identity of its record."""

    prompt_id: str
    repeat: int
    request: ChatRequest
    digest: str | None = None  # the request's fingerprint, kept in the checkpoint
    # Another call than chat on the same endpoint (scoring's embeddings); its Completion
    # carries the result.
    call: Callable[[Any], Awaitable[Completion]] | None = None


def check_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The run's parameter overrides, None dropped; a one-string `stop` becomes a list."""
    unknown = sorted(set(overrides) - set(OVERRIDE_PARAMS))
    if unknown:
        raise TypeError(
            f"unknown argument(s) {', '.join(unknown)}; request parameters are "
            f"{', '.join(OVERRIDE_PARAMS)} (service-specific ones go in extra={{...}})"
        )
    out = {k: v for k, v in overrides.items() if v is not None}
    if isinstance(out.get("stop"), str):
        out["stop"] = [out["stop"]]
    return out


def build_request(
    prompt: Prompt, dep: Deployment, overrides: Mapping[str, Any], stream: bool
) -> ChatRequest:
    """The request for one prompt on one deployment: run overrides win over the deployment's
    defaults; the deployment's system prompt goes first unless the prompt has its own; the
    service deployment name (not the display name) is what is sent."""
    params = dep.defaults()
    extra = dict(params.pop("extra", {}))
    extra.update(overrides.get("extra") or {})
    for name in REQUEST_PARAMS:
        if name in overrides:
            params[name] = overrides[name]
    messages = prompt.messages
    system = overrides.get("system", dep.system)
    if system and not any(m.get("role") in ("system", "developer") for m in messages):
        messages = [{"role": "system", "content": system}, *messages]
    return ChatRequest(
        deployment=dep.deployment or dep.name,
        messages=messages,
        stream=stream,
        extra=extra,
        **params,
    )


def request_hash(request: ChatRequest) -> str:
    """A short fingerprint of what decides the answer: deployment, messages and parameters.

    Stored with each record in the checkpoint (not a record column) so that a resumed run
    re-sends a key whose prompt text or parameters changed under the same id. `stream` is left
    out: it changes how the answer arrives, not the answer.
    """
    body = {
        "deployment": request.deployment, "messages": request.messages,
        "temperature": request.temperature, "max_tokens": request.max_tokens,
        "top_p": request.top_p, "seed": request.seed, "stop": request.stop,
        "extra": request.extra,
    }
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=repr)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def estimate_prompt_tokens(request: ChatRequest) -> int:
    """Rough prompt size (characters / 4), corrected by usage once the answer is in."""
    chars = 0
    for m in request.messages:
        content = m.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(str(p.get("text", ""))) for p in content if isinstance(p, dict))
    return chars // CHARS_PER_TOKEN + 1


def estimate_tokens(request: ChatRequest) -> int:
    """Tokens a request counts for against tokens/min, as Azure counts them at admission:
    prompt + max_tokens (a default when unset)."""
    return estimate_prompt_tokens(request) + (request.max_tokens or DEFAULT_MAX_TOKENS_ESTIMATE)


@dataclass
class Requests:
    """One deployment's requests, built on first use and kept: one build per prompt."""

    prompts: PromptSet
    deployment: Deployment
    overrides: Mapping[str, Any]
    stream: bool
    _built: dict[int, tuple[ChatRequest, str | None]] = field(default_factory=dict)

    def get(self, index: int) -> tuple[ChatRequest, str | None]:
        """(request, fingerprint) for the prompt at `index`. A request that cannot be
        fingerprinted (an unhashable oddity) has None: its key is never re-sent on resume."""
        found = self._built.get(index)
        if found is None:
            request = build_request(self.prompts[index], self.deployment, self.overrides,
                                    self.stream)
            try:
                digest: str | None = request_hash(request)
            except Exception:
                digest = None
            found = self._built[index] = (request, digest)
        return found


@dataclass
class DeploymentPlan:
    """One deployment's share of a run: its requests, its jobs, its concurrency."""

    deployment: Deployment
    requests: Requests
    jobs: list[tuple[int, int]]  # (prompt index, repeat), repeats outermost
    concurrency: int

    def iter_jobs(self) -> Iterator[Job]:
        """The jobs, each built when a worker takes it (requests are built once per prompt)."""
        ids = self.requests.prompts.ids
        for pidx, repeat in self.jobs:
            request, digest = self.requests.get(pidx)
            yield Job(ids[pidx], repeat, request, digest)


def plan_jobs(
    requests: Sequence[Requests], *, repeats: int, concurrency: int, done: Mapping[Key, Any]
) -> list[DeploymentPlan]:
    """A plan per deployment: every (prompt, repeat) not already `done`. Repeats outermost, so
    a deployment's repeats of one prompt are spread over the run. Without its own limit a
    deployment gets an equal share of the global one (so a slow deployment never holds every
    global slot), and no more than it is declared to serve at once."""
    share = max(1, math.ceil(concurrency / len(requests)))
    plans = []
    for reqs in requests:
        dep = reqs.deployment
        ids = reqs.prompts.ids
        jobs = [(p, r) for r in range(repeats) for p, pid in enumerate(ids)
                if (pid, dep.name, r) not in done]
        declared = dep.max_concurrent_requests
        default = min(share, declared) if declared else share
        plans.append(DeploymentPlan(dep, reqs, jobs, dep.concurrency or default))
    return plans


def queueing_note(plan: DeploymentPlan) -> str | None:
    """Why this deployment's TTFT will include waiting on the server, when it will."""
    declared = plan.deployment.max_concurrent_requests
    if declared is None or plan.concurrency <= declared:
        return None
    return (f"deployment {plan.deployment.name!r} serves {declared} request"
            f"{'s' if declared != 1 else ''} at once (as its endpoint declares) but this run "
            f"sends up to {plan.concurrency}: its TTFT and latency include waiting on the "
            f"server (set concurrency={declared} to measure the model alone)")
