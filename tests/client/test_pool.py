"""EndpointPool: one SDK client per endpoint URL + kind + auth, reuse, closing, Entra ID auth."""

from __future__ import annotations

import time
from typing import Any

import pytest
from azure.core.credentials import AccessToken, AccessTokenInfo

from compare.deployments import Deployment
from compare.endpoints import EndpointPool
from compare.endpoints.azure_inference import AzureInferenceClient, entra_scope
from compare.endpoints.azure_openai import AzureOpenAIClient
from compare.endpoints.base import ChatRequest
from compare.endpoints.openai_v1 import OpenAIV1Client
from compare.errors import AuthenticationError, BadRequestError, CredentialError
from compare.server.local import LocalEndpoint

from .conftest import KINDS, base_url

HELLO = [{"role": "user", "content": "hi"}]


def d(name: str, **kwargs: Any) -> Deployment:
    kwargs.setdefault("endpoint", "http://127.0.0.1:9")
    kwargs.setdefault("api_key", "k1")
    return Deployment(name=name, **kwargs)


async def test_one_client_per_endpoint_kind_auth_and_key() -> None:
    async with EndpointPool() as pool:
        a = pool.get(d("a"))
        b = pool.get(d("b", deployment="other"))
        assert a.client is b.client  # same URL, kind, key: one SDK client, one connection pool
        assert pool.get(d("a")) is a
        assert pool.get(d("c", endpoint="http://127.0.0.1:10")).client is not a.client
        assert pool.get(d("e", api_key="k2")).client is not a.client
        assert pool.get(d("f", api_version="2025-04-01")).client is not a.client
        assert isinstance(pool.get(d("g", kind="azure-openai")).client, AzureOpenAIClient)
        assert isinstance(pool.get(d("h", kind="openai")).client, OpenAIV1Client)
        assert isinstance(a.client, AzureInferenceClient)
        assert len(pool.clients) == 6
        assert "k1" not in repr(pool) and "k1" not in repr(a) and "k1" not in repr(a.client)
    assert pool.clients == []
    with pytest.raises(RuntimeError, match="closed"):
        pool.get(d("a"))


async def test_missing_key_raises_credential_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    async with EndpointPool() as pool:
        with pytest.raises(CredentialError, match="AZURE_OPENAI_API_KEY"):
            pool.get(Deployment(name="a", endpoint="https://x", kind="azure-openai"))


def test_entra_scopes() -> None:
    assert entra_scope("https://r.services.ai.azure.com/models").startswith(
        "https://cognitiveservices.azure.com"
    )
    assert entra_scope("https://m.eastus2.models.ai.azure.com") == "https://ml.azure.com/.default"


@pytest.mark.parametrize("kind", KINDS)
async def test_pool_reuses_connections_across_deployments(
    fault_endpoint: LocalEndpoint, kind: str
) -> None:
    async with EndpointPool() as pool:
        for name in ("ok", "timed", "ok", "comments", "crlf", "ok"):
            dep = Deployment(
                name=name,
                endpoint=base_url(fault_endpoint, kind),
                kind=kind,
                api_key=fault_endpoint.api_key,
            )
            c = await pool.get(dep).chat(ChatRequest(name, HELLO))
            assert c.finish_reason == "stop"
        assert len(pool.clients) == 1 and pool.connections_opened == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_pool_closes_its_client(fault_endpoint: LocalEndpoint, kind: str) -> None:
    dep = Deployment(
        name="ok",
        endpoint=base_url(fault_endpoint, kind),
        kind=kind,
        api_key=fault_endpoint.api_key,
    )
    async with EndpointPool() as pool:
        endpoint = pool.get(dep)
        assert (await endpoint.chat(ChatRequest("ok", HELLO))).finish_reason == "stop"
        client = endpoint.client
    assert client._sdk is None  # closed: a new call would build a fresh SDK client


class StaticTokenCredential:
    """An azure-core AsyncTokenCredential holding one token (here: the local server's key,
    which it accepts as a bearer token). Stands in for DefaultAzureCredential, which needs a
    real tenant; everything after the credential — policy, headers, SDKs — is real."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []
        self.closed = False

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)

    async def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        self.scopes.append(scopes)
        return AccessTokenInfo(self.token, int(time.time()) + 3600)

    async def close(self) -> None:
        self.closed = True

    async def __aenter__(self) -> StaticTokenCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_entra_token_auth(fault_endpoint: LocalEndpoint, kind: str) -> None:
    credential = StaticTokenCredential(fault_endpoint.api_key)
    dep = Deployment(name="ok", endpoint=base_url(fault_endpoint, kind), kind=kind, auth="entra")
    async with EndpointPool(credential=credential) as pool:
        c = await pool.get(dep).chat(ChatRequest("ok", HELLO))
        assert c.finish_reason == "stop"
    assert credential.scopes and all(s[0].endswith("/.default") for s in credential.scopes)
    assert not credential.closed  # the caller's credential is the caller's to close

    wrong = StaticTokenCredential("not-the-key")
    async with EndpointPool(credential=wrong) as pool:
        with pytest.raises(AuthenticationError):
            await pool.get(dep).chat(ChatRequest("ok", HELLO))


async def test_pool_creates_and_closes_default_credential() -> None:
    from azure.identity.aio import DefaultAzureCredential

    pool = EndpointPool()
    endpoint = pool.get(d("a", kind="azure-openai", auth="entra", api_key=None))
    credential = pool._credential
    assert isinstance(credential, DefaultAzureCredential)
    # One credential serves every Entra deployment of the pool.
    pool.get(d("b", kind="azure-inference", auth="entra", api_key=None))
    assert pool._credential is credential and endpoint.kind == "azure-openai"
    await pool.aclose()
    assert pool._credential is None


async def test_same_deployment_other_key_gets_other_client() -> None:
    async with EndpointPool() as pool:
        assert pool.get(d("a", api_key="k1")).client is not pool.get(d("a", api_key="k2")).client


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("extra", "messages"),
    [
        ({"x": {1, 2}}, HELLO),
        ({"x": float("nan")}, HELLO),
        ({}, [{"role": "user", "content": [{"type": "text", "text": "hi", "odd": {1}}]}]),
        ({}, [{"role": "user", "content": "hi \ud800"}]),  # a lone surrogate: not UTF-8
        ({"messages": [{"role": "user", "content": "other"}]}, HELLO),  # would replace the prompt
    ],
)
async def test_unsendable_request_is_a_bad_request_before_sending(
    fault_endpoint: LocalEndpoint, kind: str, extra: dict, messages: list
) -> None:
    # The SDKs raised TypeError/ValueError from their serialisers (not EndpointErrors), and
    # azure-ai-inference sent NaN as invalid JSON.
    dep = Deployment(
        name="ok",
        endpoint=base_url(fault_endpoint, kind),
        kind=kind,
        api_key=fault_endpoint.api_key,
    )
    before = fault_endpoint.stats()["ok"]["received"]
    async with EndpointPool() as pool:
        with pytest.raises(BadRequestError, match=r"cannot be sent as JSON|must not set") as info:
            await pool.get(dep).chat(ChatRequest("ok", messages, extra=extra))
    assert not info.value.retryable
    assert fault_endpoint.stats()["ok"]["received"] == before
