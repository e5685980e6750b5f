"""`DeploymentEndpoint`: one deployment's view of a shared SDK client (the `Endpoint` protocol).

SDK clients are per endpoint URL (connection pools are expensive and reused); what differs per
deployment — timeouts, the extra-parameters mode — is passed with every request. The request
itself arrives complete (`compare.runner.plan.build_request` merged the deployment's defaults and
chose the service name once); here it is only checked to be sendable, the same for every adapter.
"""

from __future__ import annotations

import json
from typing import Any

from compare.deployments import RESERVED_BODY_KEYS, Deployment
from compare.endpoints.base import ChatRequest, Completion, SharedClient
from compare.errors import BadRequestError


def check_sendable(request: ChatRequest) -> None:
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
    """An `Endpoint` for one deployment over a shared client. The `EndpointPool` that handed it
    out owns the client and closes it."""

    def __init__(self, client: SharedClient, deployment: Deployment) -> None:
        self.client = client
        self.deployment = deployment
        self.kind = client.kind

    def __repr__(self) -> str:
        return (
            f"DeploymentEndpoint({self.deployment.name!r}, kind={self.kind!r}, "
            f"endpoint={self.deployment.endpoint!r})"
        )

    async def chat(self, request: ChatRequest) -> Completion:
        """One attempt with a complete request (see `compare.runner.plan.build_request`)."""
        check_sendable(request)
        return await self.client.chat(request, self.deployment)

    async def embed(self, texts: list[str]) -> Completion:
        """One embeddings call: `Completion.embeddings` holds a vector per text."""
        return await self.client.embed(list(texts), self.deployment)

    async def model_info(self, deployment: str | None = None) -> dict[str, Any] | None:
        """What the service reports about this deployment (`/info`), or None where it has none."""
        name = deployment or self.deployment.deployment
        if name == self.deployment.name:
            name = self.deployment.deployment
        return await self.client.model_info(str(name))

    async def aclose(self) -> None:
        """Nothing to close: the pool owns the client."""
