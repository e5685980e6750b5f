"""An in-process implementation of our own Endpoint protocol, for the runner's pure logic.

Tests of behaviour against real services use the local endpoint over HTTP (see the other test
modules); this fake exists so scheduling, retry and checkpoint logic can be tested exactly and
fast, with scripted outcomes per prompt.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from compare.deployments import Deployment
from compare.endpoints.base import ChatRequest, Completion

Outcome = Exception | Completion | None


class FakeEndpoint:
    """Streams a fixed answer with scripted delays; `script(request, attempt)` may raise."""

    kind = "fake"

    def __init__(
        self,
        *,
        ttft_s: float = 0.0,
        gap_s: float = 0.0,
        chunks: int = 4,
        script: Callable[[ChatRequest, int], Any] | None = None,
        finish_reason: str | None = "stop",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.ttft_s = ttft_s
        self.gap_s = gap_s
        self.chunks = chunks
        self.script = script
        self.finish_reason = finish_reason
        self.headers = headers or {}
        self.calls: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.closed = False

    async def chat(self, request: ChatRequest) -> Completion:
        prompt = request.messages[-1]["content"]
        self.calls[prompt] += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            comp = Completion(sent_at=time.perf_counter(), streamed=request.stream)
            if self.script is not None:
                outcome = self.script(request, self.calls[prompt])
                if isinstance(outcome, Exception):
                    await asyncio.sleep(0)
                    raise outcome
            if self.ttft_s:
                await asyncio.sleep(self.ttft_s)
            parts = []
            for i in range(self.chunks):
                if i and self.gap_s:
                    await asyncio.sleep(self.gap_s)
                now = time.perf_counter()
                if comp.first_token_at is None:
                    comp.first_token_at = now
                comp.chunk_times.append(now)
                parts.append(f"w{i} ")
            comp.text = "".join(parts)
            comp.ended_at = time.perf_counter()
            comp.finish_reason = self.finish_reason
            comp.model = "fake-model"
            comp.prompt_tokens = len(prompt.split())
            comp.completion_tokens = self.chunks
            comp.headers = dict(self.headers)
            return comp
        finally:
            self.in_flight -= 1

    async def model_info(self, deployment: str) -> dict[str, Any] | None:
        return None

    async def aclose(self) -> None:
        self.closed = True


class FakePool:
    """`get(deployment)` → the FakeEndpoint registered under the deployment's name."""

    def __init__(self, endpoints: dict[str, FakeEndpoint]) -> None:
        self.endpoints = endpoints
        self.closed = False
        self.secrets: list[str] = []

    def get(self, deployment: Deployment) -> FakeEndpoint:
        # As EndpointPool does: the key is read when the deployment's client is found.
        if deployment.auth == "key":
            self.secrets.append(deployment.resolve_api_key())
        return self.endpoints[deployment.name]

    async def aclose(self) -> None:
        self.closed = True


def deployments(*names: str, **fields: Any) -> list[Deployment]:
    return [
        Deployment(name=n, endpoint="http://127.0.0.1:9", kind="openai", api_key="sk-fake-secret",
                   **fields)
        for n in names
    ]
