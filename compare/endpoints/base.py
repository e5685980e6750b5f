"""The one small async protocol every endpoint adapter implements.

An adapter turns a `ChatRequest` into a `Completion` with raw perf_counter timestamps, or raises
one of `compare.errors.EndpointError`'s subclasses. It does not retry (SDK retries are off) and
does not compute metrics: the runner owns retries, records and statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class ChatRequest:
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


@runtime_checkable
class Endpoint(Protocol):
    kind: str

    async def chat(self, request: ChatRequest) -> Completion:
        """One attempt. Raises `EndpointError` subclasses, never SDK exceptions."""
        ...

    async def model_info(self, deployment: str) -> dict[str, Any] | None:
        """What the service reports about a deployment (`/info`), or None where it has none."""
        ...

    async def aclose(self) -> None: ...
