"""What every backend of the local endpoint offers: `GenParams` in, a `Generation` out.

A backend returns a `Generation`: an async iterator of text pieces (one model token each), plus
`prompt_tokens`, `completion_tokens` and `finish_reason` once the iteration ends. The HTTP layer
owns stop sequences, content filtering, faults and the wire format, so both backends stay small.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from compare.server.deployment_spec import DeploymentSpec
from compare.server.structured_output import ResponseFormat


@dataclass
class GenParams:
    """A request after validation and defaults, as a backend sees it."""

    messages: list[dict[str, Any]]
    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)  # pass-through parameters
    t0: float = 0.0  # loop.time() when the request arrived: simulated delays count from here
    response_format: ResponseFormat | None = None  # JSON the reply must be (None: free text)
    top_logprobs: int | None = None  # alternatives per token to report (None: no logprobs)


class Generation(Protocol):
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length", valid once iteration has ended
    done: bool  # the piece just yielded is known to be the last one
    headers: dict[str, str]
    # One OpenAI `logprobs.content` entry per yielded piece when the request asked for them
    # and the backend has them; None otherwise.
    logprobs: list[dict[str, Any]] | None

    def __aiter__(self) -> AsyncIterator[str]: ...

    async def aclose(self) -> None:
        """Stop generating (client gone, stop sequence, content filter)."""
        ...


class Backend(Protocol):
    spec: DeploymentSpec

    def unsupported_extra(self, extra: dict[str, Any]) -> list[str]:
        """Pass-through parameters this backend cannot honour (→ 422 naming them)."""
        ...

    def start(self, params: GenParams) -> Generation:
        """Begin generating; raises ValueError when the prompt cannot fit the model."""
        ...


class EmbeddingBackend(Protocol):
    spec: DeploymentSpec

    def embedding_dimensions(self) -> int:
        """Size of the vectors `embed` returns."""
        ...

    def count_input_tokens(self, texts: list[str]) -> int:
        """Tokens the inputs cost (reported as usage, counted against capacity)."""
        ...

    async def embed(self, texts: list[str], t0: float) -> list[list[float]]:
        """One L2-normalised vector per text; `t0` is when the request arrived."""
        ...


def message_text(message: dict[str, Any]) -> str:
    """Text of a message whose content is a string or a list of text parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content
                         if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def prompt_key(messages: list[dict[str, Any]]) -> str:
    """Stable identity of a prompt (used by seeded text and first-N-attempts faults)."""
    canon = json.dumps([[m.get("role"), message_text(m)] for m in messages], ensure_ascii=False)
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:16]
