"""`EndpointPool`: hands out an `Endpoint` per deployment, sharing one SDK client per endpoint.

    async with EndpointPool() as pool:
        endpoint = pool.get(deployment)          # a DeploymentEndpoint
        completion = await endpoint.chat(build_request(prompt, deployment, {}, stream=True))

One SDK client (and so one connection pool) per endpoint URL + kind + auth (+ api-version and key,
which the SDK clients fix at construction); every deployment on that endpoint shares it. The key
is read once per deployment, here. Entra ID auth uses one
`azure.identity.aio.DefaultAzureCredential` per pool unless you pass a credential; the pool closes
what it created.
"""

from __future__ import annotations

import hashlib
from typing import Any

from compare.batch_settings import CLIENT_KIND
from compare.deployments import Deployment
from compare.endpoints.base import SharedClient
from compare.endpoints.deployment_endpoint import DeploymentEndpoint

COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"


def _fingerprint(secret: str) -> str:
    # Tells clients with different keys apart without keeping the key in the pool's keys.
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


class EndpointPool:
    """Hands out `Endpoint`s for deployments, sharing one SDK client per endpoint.

    `credential`: an azure-core AsyncTokenCredential for deployments with `auth="entra"`
    (default: a `DefaultAzureCredential`, created on first use and closed by `aclose`).
    """

    def __init__(self, *, credential: Any = None) -> None:
        self._credential = credential
        self._owns_credential = False
        self._clients: dict[tuple[str, ...], SharedClient] = {}
        self._endpoints: dict[Deployment, DeploymentEndpoint] = {}
        self._secrets: set[str] = set()
        self._closed = False

    def __repr__(self) -> str:
        return f"EndpointPool({len(self._clients)} clients, {len(self._endpoints)} deployments)"

    @property
    def clients(self) -> list[SharedClient]:
        return list(self._clients.values())

    @property
    def connections_opened(self) -> int:
        """TCP connections the pool's clients have opened so far."""
        return sum(c.connections_opened for c in self._clients.values())

    def batch(self, deployment: Deployment) -> Any:
        """The `BatchClient` of a batch deployment (azure-openai-batch, openai-batch), over the
        shared client of its endpoint. Raises CredentialError when no key can be found."""
        from compare.endpoints.batch import BatchClient

        if self._closed:
            raise RuntimeError("this EndpointPool is closed")
        return BatchClient(self._client_for(deployment), deployment)

    def get(self, deployment: Deployment) -> DeploymentEndpoint:
        """The endpoint for `deployment`. Raises CredentialError when no key can be found."""
        if self._closed:
            raise RuntimeError("this EndpointPool is closed")
        endpoint = self._endpoints.get(deployment)
        if endpoint is None:
            endpoint = DeploymentEndpoint(self._client_for(deployment), deployment)
            self._endpoints[deployment] = endpoint
        return endpoint

    @property
    def secrets(self) -> list[str]:
        """The keys this pool's clients were built with, for scrubbing messages (never shown)."""
        return list(self._secrets)

    def _client_for(self, d: Deployment) -> SharedClient:
        assert d.endpoint is not None  # resolved by Deployment
        # The one read of the key: here, when the deployment's client is found or built.
        key = d.resolve_api_key() if d.auth == "key" else None
        if key:
            self._secrets.add(key)
        ident = (
            CLIENT_KIND.get(d.kind, d.kind),  # a batch kind shares its online kind's client
            d.endpoint,
            d.auth,
            d.api_version or "",
            _fingerprint(key) if key else "",
        )
        client = self._clients.get(ident)
        if client is None:
            client = self._build(d, key)
            self._clients[ident] = client
        return client

    def _entra_credential(self) -> Any:
        if self._credential is None:
            from azure.identity.aio import DefaultAzureCredential

            self._credential = DefaultAzureCredential()
            self._owns_credential = True
        return self._credential

    def _build(self, d: Deployment, key: str | None) -> SharedClient:
        assert d.endpoint is not None
        kind = CLIENT_KIND.get(d.kind, d.kind)
        if kind == "azure-inference":
            from compare.endpoints.azure_inference import AzureInferenceClient

            if key is not None:
                return AzureInferenceClient(d.endpoint, api_key=key, api_version=d.api_version)
            return AzureInferenceClient(
                d.endpoint, credential=self._entra_credential(), api_version=d.api_version
            )
        from azure.identity.aio import get_bearer_token_provider

        if kind == "azure-openai":
            from compare.endpoints.azure_openai import AzureOpenAIClient

            if key is not None:
                return AzureOpenAIClient(d.endpoint, api_key=key, api_version=d.api_version)
            provider = get_bearer_token_provider(self._entra_credential(), COGNITIVE_SERVICES_SCOPE)
            return AzureOpenAIClient(d.endpoint, token_provider=provider, api_version=d.api_version)
        from compare.endpoints.openai_v1 import OpenAIV1Client

        if key is not None:
            return OpenAIV1Client(d.endpoint, api_key=key)
        provider = get_bearer_token_provider(self._entra_credential(), COGNITIVE_SERVICES_SCOPE)
        return OpenAIV1Client(d.endpoint, api_key=provider)

    async def aclose(self) -> None:
        """Closes every client (and the credential the pool created). Safe to call twice."""
        self._closed = True
        clients = list(self._clients.values())
        self._clients.clear()
        self._endpoints.clear()
        for client in clients:
            await client.aclose()
        if self._owns_credential and self._credential is not None:
            credential, self._credential = self._credential, None
            await credential.close()

    async def __aenter__(self) -> EndpointPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
