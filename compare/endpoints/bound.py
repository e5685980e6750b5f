"""`DeploymentEndpoint`: one deployment's view of a shared SDK client (the `Endpoint` protocol).

SDK clients are per endpoint URL (connection pools are expensive and reused); what differs per
deployment — the service deployment name, default parameters, system prompt, extra-parameters
mode, timeouts — lives here and is applied to every request.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from compare.deployments import RESERVED_BODY_KEYS, Deployment
from compare.endpoints.base import ChatRequest, Completion
from compare.errors import BadRequestError


class SharedClient(Protocol):
    """What the adapters' shared clients offer (one per endpoint URL + kind + auth)."""

    kind: str

    async def chat(self, request: ChatRequest, deployment: Deployment) -> Completion: ...

    async def model_info(self, deployment: str) -> dict[str, Any] | None: ...

    async def aclose(self) -> None: ...

    @property
    def connections_opened(self) -> int: ...


def apply_defaults(request: ChatRequest, deployment: Deployment) -> ChatRequest:
    """The request with the deployment's defaults filled where the request leaves them unset.

    Idempotent, so a runner that already merged defaults gets the same request back. The request's
    `deployment` may be the display name (`Deployment.name`); it becomes the service name.
    """
    changes: dict[str, Any] = {}
    if request.deployment in ("", deployment.name):
        changes["deployment"] = deployment.deployment
    for name in ("temperature", "max_tokens", "top_p", "seed"):
        if getattr(request, name) is None and getattr(deployment, name) is not None:
            changes[name] = getattr(deployment, name)
    if request.stop is None and deployment.stop:
        changes["stop"] = list(deployment.stop)
    if deployment.extra:
        merged = {**deployment.extra, **request.extra}
        if merged != request.extra:
            changes["extra"] = merged
    if deployment.system and not any(
        m.get("role") in ("system", "developer") for m in request.messages
    ):
        changes["messages"] = [{"role": "system", "content": deployment.system}, *request.messages]
    return dataclasses.replace(request, **changes) if changes else request


def _check_sendable(request: ChatRequest) -> None:
    """A request whose parts JSON cannot carry (a set in `extra`, NaN, an object in a content
    part) fails here as a BadRequestError, the same for every adapter, instead of as the SDK's
    TypeError/ValueError from inside its serialiser (or, for one SDK, as invalid JSON sent)."""
    reserved = sorted(set(request.extra) & set(RESERVED_BODY_KEYS))
    if reserved:
        # Merged into the body last, they would replace the prompt, model or streaming.
        raise BadRequestError(
            f"request for {request.deployment!r}: extra must not set {', '.join(reserved)}",
            code="reserved_extra",
        )
    try:
        json.dumps(
            [request.messages, request.extra, request.stop], allow_nan=False, ensure_ascii=False
        ).encode("utf-8")  # lone surrogates: the openai SDK would raise UnicodeEncodeError
    except (TypeError, ValueError, RecursionError) as e:
        problem = "nested too deeply" if isinstance(e, RecursionError) else str(e)
        raise BadRequestError(
            f"request for {request.deployment!r} cannot be sent as JSON: {problem}",
            code="not_json",
        ) from None


class DeploymentEndpoint:
    """An `Endpoint` for one deployment over a shared client.

    Endpoints handed out by an `EndpointPool` leave closing to the pool (`aclose()` does nothing);
    `make_endpoint` sets a closer so a standalone endpoint closes its own client.
    """

    def __init__(self, client: SharedClient, deployment: Deployment) -> None:
        self.client = client
        self.deployment = deployment
        self.kind = client.kind
        self._closer: Callable[[], Awaitable[None]] | None = None

    def set_closer(self, closer: Callable[[], Awaitable[None]]) -> None:
        self._closer = closer

    def __repr__(self) -> str:
        return (
            f"DeploymentEndpoint({self.deployment.name!r}, kind={self.kind!r}, "
            f"endpoint={self.deployment.endpoint!r})"
        )

    async def chat(self, request: ChatRequest) -> Completion:
        request = apply_defaults(request, self.deployment)
        _check_sendable(request)
        return await self.client.chat(request, self.deployment)

    async def model_info(self, deployment: str | None = None) -> dict[str, Any] | None:
        name = deployment or self.deployment.deployment
        if name == self.deployment.name:
            name = self.deployment.deployment
        return await self.client.model_info(name)

    async def aclose(self) -> None:
        if self._closer is not None:
            closer, self._closer = self._closer, None
            await closer()

    async def __aenter__(self) -> DeploymentEndpoint:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
