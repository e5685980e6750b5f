"""The adapter contract: a request in, a `Completion` (or one of our errors) out.

Two protocols. `Endpoint` is what the runner calls: one deployment, `chat(request)`.
`SharedClient` is what an adapter implements (azure_inference.py, azure_openai.py, openai_v1.py):
one SDK client per endpoint URL, shared by every deployment on it, `chat(request, deployment)`.
An adapter sends exactly the request it is given (built once, with the deployment's defaults, by
`compare.runner.plan.build_request`), stamps raw perf_counter times, and raises only
`compare.errors.EndpointError` subclasses. It does not retry (SDK retries are off) and computes
no metrics: the runner owns retries, records and statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from compare.deployments import Deployment


@dataclass(frozen=True)
class ChatRequest:
    """One chat request, complete: `deployment` is the service's deployment name."""

    deployment: str
    messages: list[dict[str, Any]]
    stream: bool = True
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: list[str] | None = None
    # Parameters outside the common set, sent per the deployment's `extra-parameters` mode.
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self, model: str) -> dict[str, Any]:
        """The OpenAI-shaped JSON body: common parameters only (None omitted), `model` as the
        service's name for the deployment; each adapter adds `extra` per its API."""
        body: dict[str, Any] = {"model": model, "messages": list(self.messages)}
        if self.stream:
            body["stream"] = True
        for name in ("temperature", "max_tokens", "top_p", "seed"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        if self.stop:
            body["stop"] = list(self.stop)
        return body


@dataclass
class Completion:
    """What one attempt produced. Times are `time.perf_counter()` values."""

    sent_at: float
    ended_at: float = 0.0
    text: str = ""
    finish_reason: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    first_token_at: float | None = None
    chunk_times: list[float] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    content_filter: Any = None
    streamed: bool = True
    # An embeddings call's vectors, in input order (chat completions have none).
    embeddings: list[list[float]] | None = None
    # `choices[0].logprobs.content` when the request asked for logprobs and the service sent
    # them: one {"token", "logprob", "top_logprobs": [{"token", "logprob"}, ...]} per token.
    logprobs: list[dict[str, Any]] | None = None


@runtime_checkable
class Endpoint(Protocol):
    kind: str

    async def chat(self, request: ChatRequest) -> Completion:
        """One attempt. Raises `EndpointError` subclasses, never SDK exceptions."""
        ...

    async def model_info(self, deployment: str) -> dict[str, Any] | None:
        """What the service reports about a deployment (`/info`), or None where it has none."""
        ...

    async def embed(self, texts: list[str]) -> Completion:
        """One embeddings call: `Completion.embeddings` holds a vector per text."""
        ...

    async def aclose(self) -> None: ...


class SharedClient(Protocol):
    """What each adapter implements: one per endpoint URL + kind + auth (+ api-version, key)."""

    kind: str

    async def chat(self, request: ChatRequest, deployment: Deployment) -> Completion:
        """One attempt; `deployment` gives the per-deployment timeouts and extra-parameters."""
        ...

    async def model_info(self, deployment: str) -> dict[str, Any] | None: ...

    async def embed(self, texts: list[str], deployment: Deployment) -> Completion:
        """One embeddings call for `deployment` (its service name goes in `model`)."""
        ...

    async def aclose(self) -> None: ...

    @property
    def connections_opened(self) -> int: ...
