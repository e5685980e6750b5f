"""The llama backend with the real GGUF models from PyPI, through the shipped deployments file."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import openai
import pytest
from azure.ai.inference import ChatCompletionsClient
from azure.ai.inference.models import UserMessage
from azure.core.credentials import AzureKeyCredential

from compare.server.backends.llama import resolve_weights
from compare.server.config import load_config
from compare.server.local import wait_until

from . import _schemas as schemas
from ._http import body, call, chat, route

pytestmark = pytest.mark.llama

QUESTION = "What is the capital of France? Answer in one sentence."


def test_azure_sdk_streams_smollm2_token_by_token(llama_endpoint) -> None:
    client = ChatCompletionsClient(endpoint=llama_endpoint.url,
                                   credential=AzureKeyCredential(llama_endpoint.api_key),
                                   retry_total=0)
    with client:
        updates = list(client.complete(messages=[UserMessage(QUESTION)], model="smollm2",
                                       max_tokens=24, stream=True))
    pieces = [u.choices[0].delta.content for u in updates
              if u.choices and u.choices[0].delta.content]
    assert len(pieces) >= 3
    last = updates[-1]
    assert last.choices[0].finish_reason in ("stop", "length")
    assert last.usage.completion_tokens >= len(pieces) - 1
    assert last.usage.completion_tokens <= 24
    assert last.model == "SmolLM2-135M-Instruct"


async def test_precise_deployment_is_deterministic(llama_endpoint) -> None:
    first = await chat(llama_endpoint, "smollm2-precise", text=QUESTION, max_tokens=32)
    # Another request on the same weights in between must not change the next result.
    await chat(llama_endpoint, "smollm2", text="Write a limerick about a cat.", max_tokens=16)
    second = await chat(llama_endpoint, "smollm2-precise", text=QUESTION, max_tokens=32)
    streamed = await chat(llama_endpoint, "smollm2-precise", "openai-v1", text=QUESTION,
                          max_tokens=32, stream=True)
    text1 = first.json["choices"][0]["message"]["content"]
    assert text1 and text1 == second.json["choices"][0]["message"]["content"]
    assert "".join(c["choices"][0]["delta"].get("content") or ""
                   for c in streamed.chunks if c["choices"]) == text1
    assert first.json["usage"] == second.json["usage"]
    schemas.check(first.json, schemas.INFERENCE, "completion")
    for chunk in streamed.chunks:
        schemas.check(chunk, schemas.OPENAI, "chunk")


async def test_gemma_base_usage_comes_from_its_tokenizer(llama_endpoint) -> None:
    from llama_cpp import Llama

    prompt = "The three primary colours are"
    reply = await chat(llama_endpoint, "gemma3-base", "azure-openai", text=prompt, max_tokens=8)
    data = reply.json
    schemas.check(data, schemas.OPENAI, "completion")
    assert data["choices"][0]["finish_reason"] in ("length", "stop")
    assert data["usage"]["completion_tokens"] <= 8
    spec = next(d for d in load_config().deployments if d.name == "gemma3-base")
    vocab = Llama(model_path=str(resolve_weights(spec.llama.weights)), vocab_only=True,
                  verbose=False)
    assert data["usage"]["prompt_tokens"] == len(vocab.tokenize(prompt.encode(), add_bos=True))


def test_openai_clients_on_llama_deployments(llama_endpoint) -> None:
    client = openai.AzureOpenAI(azure_endpoint=llama_endpoint.url,
                                api_key=llama_endpoint.api_key, api_version="2024-10-21",
                                max_retries=0)
    stream = client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": QUESTION}], max_tokens=12,
        stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[-1].usage.completion_tokens <= 12
    assert [c for c in chunks if c.choices][-1].choices[0].finish_reason in ("stop", "length")
    v1 = openai.OpenAI(base_url=f"{llama_endpoint.url}/openai/v1",
                       api_key=llama_endpoint.api_key, max_retries=0)
    result = v1.chat.completions.create(model="gemma3-base",
                                        messages=[{"role": "user", "content": "Once upon"}],
                                        max_tokens=6)
    assert result.usage.completion_tokens <= 6 and result.model == "gemma-3-270m"


async def test_requests_to_one_model_queue_and_all_finish(llama_endpoint) -> None:
    replies = await asyncio.gather(
        *(chat(llama_endpoint, "smollm2", text=f"Say the number {i}.", max_tokens=8)
          for i in range(3)),
        chat(llama_endpoint, "gemma3-base", text="Paris is", max_tokens=8),
    )
    assert [r.status for r in replies] == [200] * 4
    assert all(r.json["usage"]["completion_tokens"] <= 8 for r in replies)


async def test_pass_through_sampling_knobs_and_unsupported_ones(llama_endpoint) -> None:
    ok = await chat(llama_endpoint, "smollm2", text="Hi", max_tokens=4, top_k=5, min_p=0.1,
                    headers={"extra-parameters": "pass-through"})
    assert ok.status == 200
    refused = await chat(llama_endpoint, "smollm2", text="Hi", max_tokens=4, logit_scale=2,
                         headers={"extra-parameters": "pass-through"})
    assert refused.status == 422 and refused.json["error"]["param"] == "logit_scale"


async def test_client_hanging_up_stops_the_generation(llama_endpoint) -> None:
    async with aiohttp.ClientSession() as session, session.post(
            llama_endpoint.url + route("inference", "smollm2"),
            json=body("smollm2", "Write a very long essay about the sea.", stream=True,
                      max_tokens=2000),
            headers={"api-key": llama_endpoint.api_key}) as resp:
        seen = 0
        async for line in resp.content:
            seen += line.startswith(b"data: {")
            if seen >= 3:
                break
    # The generation is cancelled: the model is free again long before 2000 tokens.
    assert wait_until(lambda: llama_endpoint.stats()["smollm2"]["in_flight"] == 0, timeout=10)
    started = time.perf_counter()
    reply = await chat(llama_endpoint, "smollm2", text="Hi", max_tokens=4)
    assert reply.status == 200 and time.perf_counter() - started < 5


async def test_prompt_longer_than_the_context_is_400(llama_endpoint) -> None:
    reply = await chat(llama_endpoint, "smollm2", text="word " * 3000, max_tokens=4)
    assert reply.status == 400 and reply.json["error"]["code"] == "context_length_exceeded"


def test_deployments_on_one_weights_file_share_one_model() -> None:
    from compare.server.backends.llama import ModelPool

    specs = [d for d in load_config().deployments if d.name in ("smollm2", "smollm2-precise")]
    pool = ModelPool()
    try:
        pool.load(specs)
        assert len(pool.models) == 1
        assert pool.backend(specs[0]).model is pool.backend(specs[1]).model
    finally:
        pool.close()


def test_stopping_mid_generation_exits_cleanly() -> None:
    import json
    import socket

    from compare.server.local import local_endpoint

    ep = local_endpoint(only=["smollm2"], startup_timeout=300)
    try:
        proc = ep._proc
        assert proc is not None
        host, port = ep.url.removeprefix("http://").split(":")
        payload = json.dumps(body("smollm2", "Write a long essay.", stream=True,
                                  max_tokens=1500)).encode()
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(f"POST {route('inference', 'smollm2')} HTTP/1.1\r\nHost: x\r\n"
                         f"api-key: {ep.api_key}\r\nContent-Length: {len(payload)}\r\n\r\n"
                         .encode() + payload)
            received = b""
            deadline = time.monotonic() + 60
            # Bounded: a closed connection (recv returns b"") or a silent one ends the wait.
            while received.count(b"data: {") < 3 and time.monotonic() < deadline:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
            assert received.count(b"data: {") >= 3, received[-500:]
            # The generation is running and its client still connected: stop the server now.
            started = time.monotonic()
            ep.stop()
        assert proc.returncode == 0  # SIGTERM handled: no crash freeing a model mid-generation
        assert time.monotonic() - started < 8
    finally:
        ep.stop()


async def test_stop_sequence_on_a_real_model(llama_endpoint) -> None:
    full = await chat(llama_endpoint, "smollm2-precise", text=QUESTION, max_tokens=32)
    text = full.json["choices"][0]["message"]["content"]
    words = text.split()
    assert len(words) >= 4, text
    stop = words[len(words) // 2]
    cut = await chat(llama_endpoint, "smollm2-precise", text=QUESTION, max_tokens=32,
                     stop=[stop])
    choice = cut.json["choices"][0]
    assert choice["message"]["content"] == text[: text.index(stop)]
    assert choice["finish_reason"] == "stop"
    assert cut.json["usage"]["completion_tokens"] < full.json["usage"]["completion_tokens"]


def test_a_batch_runs_on_the_real_model(llama_endpoint) -> None:
    import io
    import json

    client = openai.AzureOpenAI(azure_endpoint=llama_endpoint.url,
                                api_key=llama_endpoint.api_key, api_version="2024-10-21",
                                max_retries=0)
    lines = [{"custom_id": f"q{i}", "method": "POST", "url": "/chat/completions",
              "body": {"model": "smollm2-batch", "max_tokens": 8,
                       "messages": [{"role": "user", "content": question}]}}
             for i, question in enumerate([QUESTION, "Name a colour."])]
    data = "".join(json.dumps(x) + "\n" for x in lines).encode()
    uploaded = client.files.create(file=("q.jsonl", io.BytesIO(data)), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/chat/completions",
                                  completion_window="24h")
    deadline = time.monotonic() + 120
    while batch.status not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.2)
        batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed", batch.errors
    outputs = [json.loads(x) for x in client.files.content(batch.output_file_id).text.splitlines()]
    assert sorted(o["custom_id"] for o in outputs) == ["q0", "q1"]
    for out in outputs:
        body = out["response"]["body"]
        schemas.check(body, schemas.OPENAI, "completion")
        assert body["model"] == "SmolLM2-135M-Instruct"
        assert 0 < body["usage"]["completion_tokens"] <= 8
    with pytest.raises(openai.BadRequestError, match="global-batch"):
        client.chat.completions.create(model="smollm2-batch", max_tokens=4,
                                       messages=[{"role": "user", "content": "Hi"}])


async def test_llama_deployments_declare_one_at_a_time(llama_endpoint) -> None:
    assert llama_endpoint.shared_groups() == [(["smollm2", "smollm2-precise"], 1)]
    assert llama_endpoint.concurrency_of("gemma3-base") == 1
    assert llama_endpoint.concurrency_of("sim-fast") is None
    info = await call(llama_endpoint, "GET", "/openai/deployments/smollm2/info"
                      "?api-version=2024-10-21")
    assert info.json["max_concurrent_requests"] == 1
    assert sorted(info.json["shares_capacity_with"]) == ["smollm2-batch", "smollm2-precise"]
