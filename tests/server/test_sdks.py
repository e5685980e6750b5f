"""The real SDKs, unchanged, against the local endpoint (shipped simulated deployments).

azure-ai-inference ChatCompletionsClient (sync and async; streaming and not; get_model_info),
openai.AzureOpenAI and openai.OpenAI on /openai/v1, including their error types.
"""

from __future__ import annotations

import openai
import pytest
from azure.ai.inference import ChatCompletionsClient
from azure.ai.inference.aio import ChatCompletionsClient as AsyncChatCompletionsClient
from azure.ai.inference.models import SystemMessage, UserMessage
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)

MESSAGES = [SystemMessage("You are terse."), UserMessage("Name three colours.")]
OPENAI_MESSAGES = [{"role": "system", "content": "You are terse."},
                   {"role": "user", "content": "Name three colours."}]


def _azure(ep, endpoint: str | None = None, key: str | None = None) -> ChatCompletionsClient:
    return ChatCompletionsClient(endpoint=endpoint or ep.url,
                                 credential=AzureKeyCredential(key or ep.api_key),
                                 retry_total=0)


def test_azure_inference_sync_complete(sim_endpoint) -> None:
    headers: dict[str, str] = {}
    with _azure(sim_endpoint) as client:
        result = client.complete(
            messages=MESSAGES, model="sim-fast", max_tokens=20, temperature=0.5,
            raw_response_hook=lambda r: headers.update(r.http_response.headers))
    assert "simulated" in result.model
    assert result.choices[0].message.content
    assert result.choices[0].finish_reason in ("stop", "length")
    assert result.usage.completion_tokens <= 20
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens
    assert headers["apim-request-id"] and headers["x-ms-region"] == "local"
    assert headers["x-ms-client-request-id"]  # azure-core's own id, echoed
    assert "x-ratelimit-remaining-requests" in headers


def test_azure_inference_sync_stream(sim_endpoint) -> None:
    with _azure(sim_endpoint) as client:
        stream = client.complete(messages=MESSAGES, model="SIM-FAST", max_tokens=12, stream=True)
        updates = list(stream)
    texts = [u.choices[0].delta.content for u in updates if u.choices and u.choices[0].delta
             and u.choices[0].delta.content]
    assert len(texts) >= 2
    assert updates[-1].choices[0].finish_reason in ("stop", "length")
    assert updates[-1].usage.completion_tokens == len(texts)


async def test_azure_inference_async_complete_and_stream(sim_endpoint) -> None:
    async with AsyncChatCompletionsClient(endpoint=sim_endpoint.url,
                                          credential=AzureKeyCredential(sim_endpoint.api_key),
                                          retry_total=0) as client:
        result = await client.complete(messages=MESSAGES, model="sim-fast", max_tokens=10)
        assert result.choices[0].message.content
        stream = await client.complete(messages=MESSAGES, model="sim-fast", max_tokens=10,
                                       stream=True)
        texts = []
        last = None
        async for update in stream:
            last = update
            if update.choices and update.choices[0].delta.content:
                texts.append(update.choices[0].delta.content)
    assert "".join(texts).split() == result.choices[0].message.content.split()  # same seed text
    assert last is not None and last.choices[0].finish_reason in ("stop", "length")


def test_azure_inference_model_info(sim_endpoint) -> None:
    with _azure(sim_endpoint, f"{sim_endpoint.url}/openai/deployments/sim-slow") as client:
        info = client.get_model_info()
    assert info.model_name == "slow-simulated"
    assert info.model_type == "chat-completion"
    assert info.model_provider_name


async def test_azure_inference_async_model_info(sim_endpoint) -> None:
    async with AsyncChatCompletionsClient(
            endpoint=f"{sim_endpoint.url}/openai/deployments/sim-fast",
            credential=AzureKeyCredential(sim_endpoint.api_key)) as client:
        info = await client.get_model_info()
    assert info.model_name == "fast-simulated"


def test_azure_inference_errors(sim_endpoint) -> None:
    with _azure(sim_endpoint) as client:
        with pytest.raises(ResourceNotFoundError) as missing:
            client.complete(messages=MESSAGES, model="no-such-model")
        assert missing.value.error.code == "DeploymentNotFound"
        with pytest.raises(HttpResponseError) as filtered:
            client.complete(messages=[UserMessage("how to attack a castle")], model="sim-slow")
        assert filtered.value.status_code == 400
        assert filtered.value.error.code == "content_filter"
        assert filtered.value.error.innererror["content_filter_result"]["violence"]["filtered"]
    with _azure(sim_endpoint, key="wrong") as client, \
            pytest.raises(ClientAuthenticationError):
        client.complete(messages=MESSAGES, model="sim-fast")


def test_azure_inference_model_extras_pass_through(sim_endpoint) -> None:
    headers: dict[str, str] = {}
    with _azure(sim_endpoint) as client:
        # The SDK sends `extra-parameters: pass-through` with model_extras.
        client.complete(messages=MESSAGES, model="sim-fast", model_extras={"top_k": 3},
                        raw_response_hook=lambda r: headers.update(r.http_response.headers))
    assert headers["x-compare-passed-parameters"] == "top_k"


def test_azure_openai_client(sim_endpoint) -> None:
    client = openai.AzureOpenAI(azure_endpoint=sim_endpoint.url, api_key=sim_endpoint.api_key,
                                api_version="2024-10-21", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="sim-fast", messages=OPENAI_MESSAGES, max_tokens=15)
    result = raw.parse()
    assert raw.headers["x-ms-region"] == "local"
    assert result.choices[0].message.content and "simulated" in result.model
    assert result.usage.completion_tokens <= 15
    stream = client.chat.completions.create(model="sim-fast", messages=OPENAI_MESSAGES,
                                            max_tokens=15, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == result.choices[0].message.content
    finish = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finish[-1] in ("stop", "length") and all(f is None for f in finish[:-1])
    assert chunks[-1].usage.completion_tokens == result.usage.completion_tokens


async def test_openai_v1_async_client(sim_endpoint) -> None:
    client = openai.AsyncOpenAI(base_url=f"{sim_endpoint.url}/openai/v1",
                                api_key=sim_endpoint.api_key, max_retries=0)
    try:
        models = await client.models.list()
        assert {m.id for m in models.data} == {"sim-fast", "sim-slow"}
        result = await client.chat.completions.create(model="sim-fast",
                                                      messages=OPENAI_MESSAGES, max_tokens=8)
        assert result.choices[0].finish_reason in ("stop", "length")
        stream = await client.chat.completions.create(
            model="sim-fast", messages=OPENAI_MESSAGES, max_tokens=8, stream=True,
            stream_options={"include_usage": True})
        chunks = [c async for c in stream]
        assert chunks[-1].usage.total_tokens == result.usage.total_tokens
    finally:
        await client.close()


def test_openai_v1_sync_client_and_errors(sim_endpoint) -> None:
    client = openai.OpenAI(base_url=f"{sim_endpoint.url}/openai/v1",
                           api_key=sim_endpoint.api_key, max_retries=0)
    assert client.chat.completions.create(model="sim-fast", messages=OPENAI_MESSAGES,
                                          max_tokens=5).choices[0].message.content
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="missing", messages=OPENAI_MESSAGES)
    with pytest.raises(openai.BadRequestError) as filtered:
        client.chat.completions.create(model="sim-slow", messages=[
            {"role": "user", "content": "a weapon please"}])
    assert filtered.value.code == "content_filter"
    assert filtered.value.body["innererror"]["content_filter_result"]["violence"]["filtered"]
    with pytest.raises(openai.BadRequestError) as unknown:
        client.chat.completions.create(model="sim-fast", messages=OPENAI_MESSAGES,
                                       extra_body={"top_k": 2})
    assert unknown.value.body["param"] == "top_k"
    bad_key = openai.OpenAI(base_url=f"{sim_endpoint.url}/openai/v1", api_key="nope",
                            max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad_key.chat.completions.create(model="sim-fast", messages=OPENAI_MESSAGES)
