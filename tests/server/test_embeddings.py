"""Embeddings on the three routes (simulated deployments), with the real SDKs and the specs."""

from __future__ import annotations

import math

import openai
import pytest
from azure.ai.inference import EmbeddingsClient
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError

from compare.server.local import local_endpoint

from . import _schemas as schemas
from ._http import AOAI_QS, INFERENCE_QS, call, chat

DIMS = 48
CONFIG = {"deployments": {
    "embedder": {"backend": "simulated", "model_type": "embeddings", "model": "hash-embed",
                 "simulated": {"dimensions": DIMS, "ttft_ms": 5}},
    "chatter": {"backend": "simulated", "simulated": {"output_tokens": 3, "ttft_ms": 1}},
}}


@pytest.fixture(scope="module")
def ep():
    with local_endpoint(config=CONFIG) as endpoint:
        yield endpoint


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def test_inference_route_matches_spec_and_is_normalised(ep) -> None:
    reply = await call(ep, "POST", f"/embeddings{INFERENCE_QS}",
                       {"model": "EMBEDDER", "input": ["red apples", "green apples", "tax law"]})
    assert reply.status == 200, reply.raw
    data = reply.json
    schemas.validate(data, schemas.INFERENCE_SPEC, "EmbeddingsResult")
    vectors = [d["embedding"] for d in data["data"]]
    assert [d["index"] for d in data["data"]] == [0, 1, 2]
    assert all(len(v) == DIMS and math.isclose(_cos(v, v), 1.0) for v in vectors)
    # Shared words → closer vectors: enough to exercise similarity code honestly.
    assert _cos(vectors[0], vectors[1]) > _cos(vectors[0], vectors[2])
    assert data["usage"] == {"prompt_tokens": 6, "total_tokens": 6}
    assert "simulated" in data["model"]


async def test_openai_route_dimensions_and_errors(ep) -> None:
    reply = await call(ep, "POST", f"/openai/deployments/embedder/embeddings{AOAI_QS}",
                       {"input": "one text", "dimensions": 8})
    schemas.check_openai_embeddings(reply.json)
    vector = reply.json["data"][0]["embedding"]
    assert len(vector) == 8 and math.isclose(_cos(vector, vector), 1.0)
    too_many = await call(ep, "POST", f"/openai/deployments/embedder/embeddings{AOAI_QS}",
                          {"input": "x", "dimensions": DIMS + 1})
    assert too_many.status == 422 and too_many.json["error"]["param"] == "dimensions"
    empty = await call(ep, "POST", "/openai/v1/embeddings", {"model": "embedder", "input": []})
    assert empty.status == 400 and empty.json["error"]["param"] == "input"
    tokens = await call(ep, "POST", "/openai/v1/embeddings", {"model": "embedder",
                                                             "input": [[1, 2, 3]]})
    assert tokens.status == 400


async def test_operations_must_match_the_deployment(ep) -> None:
    reply = await chat(ep, "embedder")
    assert reply.status == 400 and reply.json["error"]["code"] == "OperationNotSupported"
    reply = await call(ep, "POST", f"/embeddings{INFERENCE_QS}",
                       {"model": "chatter", "input": ["x"]})
    assert reply.status == 400 and reply.json["error"]["code"] == "OperationNotSupported"
    info = await call(ep, "GET", f"/info{INFERENCE_QS}&model=embedder")
    assert info.json["model_type"] == "embeddings"


def test_azure_embeddings_client(ep) -> None:
    with EmbeddingsClient(endpoint=ep.url, credential=AzureKeyCredential(ep.api_key),
                          retry_total=0) as client:
        result = client.embed(input=["first", "second"], model="embedder")
        assert len(result.data) == 2 and len(result.data[0].embedding) == DIMS
        with pytest.raises(HttpResponseError) as wrong:
            client.embed(input=["x"], model="embedder", encoding_format="int8")
        assert wrong.value.status_code == 422


def test_openai_clients_embeddings(ep) -> None:
    v1 = openai.OpenAI(base_url=f"{ep.url}/openai/v1", api_key=ep.api_key, max_retries=0)
    # The openai SDK asks for base64 by default and decodes it.
    result = v1.embeddings.create(model="embedder", input=["alpha beta", "alpha beta"])
    first, second = (d.embedding for d in result.data)
    assert first == pytest.approx(second) and len(first) == DIMS
    azure = openai.AzureOpenAI(azure_endpoint=ep.url, api_key=ep.api_key,
                               api_version="2024-10-21", max_retries=0)
    floats = azure.embeddings.create(model="embedder", input="alpha beta",
                                     encoding_format="float")
    assert floats.data[0].embedding == pytest.approx(first, abs=1e-6)
    assert floats.usage.prompt_tokens == 2
