"""What a newcomer meets: Azure's /models prefix, wrong paths and a missing api-version that
say what to change, declared concurrency (/info and LocalEndpoint helpers), and both shapes of
the deployments file."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import openai
import pytest
from azure.ai.inference import ChatCompletionsClient, EmbeddingsClient
from azure.core.credentials import AzureKeyCredential

from compare.errors import ConfigError
from compare.server.config import load_config, parse_config
from compare.server.local import local_endpoint

from . import _schemas as schemas
from ._http import INFERENCE_QS, body, call

SIM = {"output_tokens": 1, "ttft_ms": 150, "itl_ms": 0}
CONFIG = {"deployments": [
    {"name": "sim-fast", "backend": "simulated", "simulated": SIM},
    {"name": "one-at-a-time", "backend": "simulated", "simulated": SIM,
     "max_concurrent_requests": 1},
    {"name": "embedder", "backend": "simulated", "model_type": "embeddings"},
]}


@pytest.fixture(scope="module")
def ep():
    with local_endpoint(config=CONFIG) as endpoint:
        yield endpoint


def test_the_models_prefix_serves_azure_ai_inference(ep) -> None:
    credential = AzureKeyCredential(ep.api_key)
    with ChatCompletionsClient(endpoint=f"{ep.url}/models", credential=credential,
                               retry_total=0) as client:
        result = client.complete(messages=[{"role": "user", "content": "hi"}], model="sim-fast")
        assert result.choices[0].message.content
    with EmbeddingsClient(endpoint=f"{ep.url}/models", credential=credential,
                          retry_total=0) as client:
        assert len(client.embed(input=["a"], model="embedder").data) == 1
    info = asyncio.run(call(ep, "GET", f"/models/info{INFERENCE_QS}&model=sim-fast"))
    schemas.check(info.json, schemas.INFERENCE, "info")


async def test_a_wrong_path_says_the_path_is_wrong_and_lists_routes(ep) -> None:
    reply = await call(ep, "POST", f"/model/chat/completions{INFERENCE_QS}", body("sim-fast"))
    assert reply.status == 404
    message = reply.json["error"]["message"]
    assert "the path is wrong" in message and "deployment" not in message.split(":")[0]
    for route in ("POST /chat/completions", "POST /models/chat/completions",
                  "POST /openai/deployments/{name}/chat/completions",
                  "POST /openai/v1/chat/completions", "POST|GET /openai/v1/batches"):
        assert route in message
    schemas.check(reply.json, schemas.INFERENCE, "error")
    named = await call(ep, "POST", f"/sim-fast/chat/completions{INFERENCE_QS}", body("x"))
    assert "'sim-fast' is a deployment" in named.json["error"]["message"]


async def test_a_missing_api_version_points_v1_clients_to_openai_v1(ep) -> None:
    reply = await call(ep, "POST", "/chat/completions", body("sim-fast"))
    assert reply.json["error"]["code"] == "MissingApiVersionParameter"
    assert f"base_url={ep.url}/openai/v1" in reply.json["error"]["message"]


def test_an_openai_client_on_the_bare_url_is_told_where_to_go(ep) -> None:
    client = openai.OpenAI(base_url=ep.url, api_key=ep.api_key, max_retries=0)
    with pytest.raises(openai.BadRequestError, match="/openai/v1"):
        client.chat.completions.create(model="sim-fast",
                                       messages=[{"role": "user", "content": "hi"}])


async def test_info_declares_concurrency(ep) -> None:
    limited = await call(ep, "GET", f"/info{INFERENCE_QS}&model=one-at-a-time")
    assert limited.json["max_concurrent_requests"] == 1
    assert limited.json["shares_capacity_with"] == []
    free = await call(ep, "GET", f"/info{INFERENCE_QS}&model=sim-fast")
    assert free.json["max_concurrent_requests"] is None
    assert ep.concurrency_of("one-at-a-time") == 1 and ep.concurrency_of("SIM-FAST") is None
    assert ep.shared_groups() == []
    with pytest.raises(ConfigError, match="no deployment 'nope'"):
        ep.concurrency_of("nope")


async def test_max_concurrent_requests_is_enforced(ep) -> None:
    async def three(name: str) -> float:
        started = time.perf_counter()
        replies = await asyncio.gather(*(call(ep, "POST", f"/chat/completions{INFERENCE_QS}",
                                              body(name, f"p{i}")) for i in range(3)))
        assert [r.status for r in replies] == [200] * 3
        return time.perf_counter() - started

    assert await three("sim-fast") < 0.4  # the three generations overlap
    assert await three("one-at-a-time") >= 0.44  # one after another: 3 × 150 ms


def test_llama_deployments_on_one_weights_file_share_a_capacity_of_one() -> None:
    config = load_config()
    assert {d.name: d.max_concurrent_requests for d in config.deployments} == {
        "smollm2": 1, "smollm2-precise": 1, "gemma3-base": 1, "sim-fast": None,
        "sim-slow": None, "smollm2-batch": 1, "sim-batch": None, "embed-small": 1}
    assert sorted(config.sharing("smollm2")) == ["smollm2-batch", "smollm2-precise"]
    assert config.sharing("gemma3-base") == []
    assert (["smollm2", "smollm2-precise", "smollm2-batch"], 1) in config.capacity_groups()
    assert config.sharing("embed-small") == []
    with pytest.raises(ConfigError, match="one request at a time"):
        parse_config({"deployments": {"x": {"backend": "llama", "model": "m",
                                            "max_concurrent_requests": 2,
                                            "llama": {"weights": "/x.gguf"}}}})


# ---------------------------------------------------------------- deployments file shapes


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "deployments.yaml"
    path.write_text(text)
    return path


def test_a_list_of_deployments_with_names_loads(tmp_path: Path) -> None:
    listed = load_config(_write(tmp_path, "deployments:\n  - name: a\n    backend: simulated\n"
                                "  - {name: b, backend: simulated}\n"))
    assert listed.names() == ["a", "b"]
    top = load_config(_write(tmp_path, "- name: c\n  backend: simulated\n"))
    assert top.names() == ["c"]


@pytest.mark.parametrize(("text", "line", "needles"), [
    ("deployments: [sim-fast, sim-slow]\n", 1,
     ["expected a mapping of name -> settings", "  sim-fast:\n    backend: simulated",
      "  sim-slow:"]),
    ("deployments:\n  sim-fast: simulated\n", 1, ["  sim-fast:\n    backend: simulated"]),
    ("deployments:\n  - name: a\n    endpoint: https://x.example\n    kind: azure-openai\n", 2,
     ["client deployments file", "compare serve", "  a:\n    backend: simulated"]),
    ("deployments:\n  - {name: a, backend: simulated}\n  - {name: A, backend: simulated}\n", 3,
     ["clashes with 'a'"]),
    ("deployments:\n  - name: a\n    backend: simulated\n    colour: red\n", 4,
     ["deployments.a.colour: unknown key"]),
])
def test_shape_errors_show_a_corrected_snippet(tmp_path: Path, text: str, line: int,
                                               needles: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text))
    assert info.value.line == line, str(info.value)
    for needle in needles:
        assert needle in str(info.value)
