"""The local endpoint at the HTTP level: routes, auth, errors, limits, filters, SSE, schemas.

Every body checked here is also validated against the official specs (tests/specs/).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import statistics
import time
import zlib

import aiohttp
import pytest

from compare.server.local import local_endpoint

from . import _schemas as schemas
from ._http import AOAI_QS, INFERENCE_QS, body, call, chat, route

KINDS = ["inference", "azure-openai", "openai-v1"]
DIALECT = {"inference": schemas.INFERENCE, "azure-openai": schemas.OPENAI,
           "openai-v1": schemas.OPENAI}
TTFT_MS, ITL_MS, TOKENS = 60, 8, 6

CONFIG = {
    "deployments": {
        "Alpha": {
            "backend": "simulated",
            "simulated": {"seed": 1, "output_tokens": TOKENS, "ttft_ms": TTFT_MS,
                          "itl_ms": ITL_MS},
        },
        "echo": {
            "backend": "simulated",
            "simulated": {"seed": 2, "output_tokens": 12, "ttft_ms": 1, "itl_ms": 0,
                          "text": "echo"},
            "defaults": {"max_tokens": 50},
        },
        "filtered": {
            "backend": "simulated",
            "simulated": {"seed": 3, "output_tokens": 12, "ttft_ms": 1, "itl_ms": 0,
                          "text": "echo"},
            "content_filter": [
                {"category": "violence", "severity": "medium", "terms": ["attack"],
                 "apply_to": "prompt"},
                {"category": "hate", "severity": "high", "regex": r"\bhateful\b"},
                {"category": "profanity", "severity": "low", "terms": ["darn"],
                 "apply_to": "completion"},
            ],
        },
        "limited": {
            "backend": "simulated",
            "simulated": {"seed": 4, "output_tokens": 2, "ttft_ms": 1, "itl_ms": 0},
            "capacity": {"rpm": 12, "window_s": 10},  # 2 requests per 10 s window
        },
        "tokenlimited": {
            "backend": "simulated",
            "simulated": {"seed": 5, "output_tokens": 2, "ttft_ms": 1, "itl_ms": 0},
            "capacity": {"tpm": 600, "window_s": 10},  # 100 tokens per 10 s window
        },
    }
}


@pytest.fixture(scope="module")
def ep():
    with local_endpoint(config=CONFIG) as endpoint:
        yield endpoint


def _check_headers(reply) -> None:
    assert reply.headers["apim-request-id"] == reply.headers["x-request-id"]
    assert len(reply.headers["x-request-id"]) >= 32
    assert reply.headers["x-ms-region"] == "local"


# ---------------------------------------------------------------- happy paths


@pytest.mark.parametrize("kind", KINDS)
async def test_non_streaming_body_matches_spec(ep, kind: str) -> None:
    reply = await chat(ep, "alpha", kind)
    assert reply.status == 200, reply.raw
    _check_headers(reply)
    data = reply.json
    schemas.check(data, DIALECT[kind], "completion")
    choice = data["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert len(choice["message"]["content"].split()) == TOKENS
    assert data["usage"]["completion_tokens"] == TOKENS
    assert data["usage"]["total_tokens"] == data["usage"]["prompt_tokens"] + TOKENS
    assert "simulated" in data["model"]


@pytest.mark.parametrize("kind", KINDS)
async def test_streaming_chunks_match_spec(ep, kind: str) -> None:
    reply = await chat(ep, "alpha", kind, stream=True, stream_options={"include_usage": True})
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/event-stream")
    assert reply.raw.endswith(b"data: [DONE]\n\n")
    assert reply.events[-1] == "[DONE]"
    chunks = reply.chunks
    for chunk in chunks:
        schemas.check(chunk, DIALECT[kind], "chunk")
    content = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(content) == TOKENS  # token by token
    assert content[0]["choices"][0]["delta"]["role"] == "assistant"
    # finish_reason rides on the last content chunk; nothing before it has one.
    assert content[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(c["choices"][0]["finish_reason"] is None for c in content[:-1])
    assert len({c["id"] for c in chunks}) == 1
    if kind == "inference":
        assert content[-1]["usage"]["completion_tokens"] == TOKENS
    else:
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == TOKENS


async def test_openai_stream_without_include_usage_has_no_usage(ep) -> None:
    reply = await chat(ep, "alpha", "openai-v1", stream=True)
    assert all("usage" not in c for c in reply.chunks)


@pytest.mark.parametrize("name", ["alpha", "ALPHA", "Alpha", "aLpHa"])
@pytest.mark.parametrize("kind", KINDS)
async def test_routing_is_case_insensitive(ep, kind: str, name: str) -> None:
    reply = await chat(ep, name, kind)
    assert reply.status == 200
    assert reply.headers["x-ms-deployment-name"] == "Alpha"


async def test_routes_pick_the_named_deployment(ep) -> None:
    reply = await chat(ep, "echo", text="one two three")
    assert reply.json["choices"][0]["message"]["content"].startswith("one two three one")
    # The Azure OpenAI route takes the deployment from the path, whatever the body says.
    reply = await call(ep, "POST", route("azure-openai", "echo"), body("alpha", "four five"))
    assert reply.json["choices"][0]["message"]["content"].startswith("four five four")


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("kind", KINDS)
async def test_unknown_deployment_is_404(ep, kind: str) -> None:
    reply = await chat(ep, "nope", kind)
    assert reply.status == 404
    assert reply.json["error"]["code"] == "DeploymentNotFound"
    assert reply.headers["x-ms-error-code"] == "DeploymentNotFound"
    assert "nope" in reply.json["error"]["message"]
    _check_headers(reply)
    schemas.check(reply.json, DIALECT[kind], "error")


@pytest.mark.parametrize("headers", [{}, {"api-key": "wrong"}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": "Basic abc"}])
async def test_requests_without_the_key_get_401(ep, headers) -> None:
    reply = await call(ep, "POST", route("inference", "alpha"), body("alpha"), headers=headers,
                       key=False)
    assert reply.status == 401
    assert reply.headers["x-ms-error-code"] == "401"
    schemas.check(reply.json, schemas.INFERENCE, "error")
    schemas.check(reply.json, schemas.OPENAI, "error")
    assert ep.api_key not in reply.raw.decode()


async def test_bearer_and_api_key_are_both_accepted(ep) -> None:
    bearer = await call(ep, "POST", route("openai-v1", "alpha"), body("alpha"), key=False,
                        headers={"Authorization": f"Bearer {ep.api_key}"})
    key = await call(ep, "POST", route("openai-v1", "alpha"), body("alpha"), key=False,
                     headers={"api-key": ep.api_key})
    assert bearer.status == key.status == 200


async def test_api_version_is_required_where_azure_requires_it(ep) -> None:
    missing = await call(ep, "POST", "/chat/completions", body("alpha"))
    assert missing.status == 400 and missing.json["error"]["code"] == "MissingApiVersionParameter"
    bad = await call(ep, "POST", "/chat/completions?api-version=yesterday", body("alpha"))
    assert bad.status == 400 and bad.json["error"]["param"] == "api-version"
    aoai = await call(ep, "POST", "/openai/deployments/alpha/chat/completions", body("alpha"))
    assert aoai.status == 400
    v1 = await call(ep, "POST", "/openai/v1/chat/completions", body("alpha"))
    assert v1.status == 200


@pytest.mark.parametrize(("payload", "param"), [
    ({"messages": "hi"}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
     "messages[0].content"),
    ({"temperature": "hot"}, "temperature"),
    ({"temperature": 3}, "temperature"),
    ({"top_p": -1}, "top_p"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": 2.5}, "max_tokens"),
    ({"stream": "yes"}, "stream"),
    ({"stop": [1]}, "stop"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"seed": "x"}, "seed"),
    ({"stream_options": 3}, "stream_options"),
    ({"response_format": {"type": "xml"}}, "response_format"),
])
async def test_wrong_types_are_400_naming_the_parameter(ep, payload, param) -> None:
    data = {"model": "alpha", "messages": [{"role": "user", "content": "hi"}], **payload}
    reply = await call(ep, "POST", route("inference", "alpha"), data)
    assert reply.status == 400, reply.raw
    assert reply.json["error"]["param"] == param
    assert reply.headers["x-ms-error-code"] == reply.json["error"]["code"]
    schemas.check(reply.json, schemas.INFERENCE, "error")


@pytest.mark.parametrize("raw", [b"{not json", b"", b"\xff\xfe", b"[1, 2]", b"null", b'"x"'])
async def test_malformed_bodies_are_400_json(ep, raw: bytes) -> None:
    reply = await call(ep, "POST", route("inference", "alpha"), data=raw,
                       headers={"content-type": "application/json"})
    assert reply.status == 400
    assert reply.json["error"]["code"] == "BadRequest"


async def test_oversized_body_is_413(ep) -> None:
    big = body("alpha", "x" * 1_100_000)
    reply = await call(ep, "POST", route("inference", "alpha"), big)
    assert reply.status == 413
    assert reply.json["error"]["code"] == "RequestEntityTooLarge"


@pytest.mark.parametrize(("encoding", "pack"), [
    ("gzip", gzip.compress),
    ("deflate", zlib.compress),
    ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as some clients send it
    ("gzip, identity", gzip.compress),
])
async def test_compressed_bodies_are_decoded(ep, encoding: str, pack) -> None:
    raw = pack(json.dumps(body("echo")).encode())
    reply = await call(ep, "POST", route("inference", "echo"), data=raw,
                       headers={"content-type": "application/json",
                                "content-encoding": encoding})
    assert reply.status == 200, reply.raw
    assert reply.json["choices"][0]["message"]["content"]


@pytest.mark.parametrize(("encoding", "raw", "status", "code"), [
    ("gzip", b'{"model": "echo"}', 400, "BadRequest"),  # says gzip, is not
    ("gzip", gzip.compress(b'{"model": "echo", "messages": []}')[:-6], 400, "BadRequest"),
    ("br", b"{}", 415, "UnsupportedMediaType"),
    ("zstd", b"{}", 415, "UnsupportedMediaType"),
    ("gzip", gzip.compress(json.dumps(body("echo", "x" * 1_100_000)).encode()), 413,
     "RequestEntityTooLarge"),  # the cap counts inflated bytes
])
async def test_bad_content_encodings_are_azure_4xx(ep, encoding: str, raw: bytes, status: int,
                                                   code: str) -> None:
    reply = await call(ep, "POST", route("inference", "echo"), data=raw,
                       headers={"content-type": "application/json",
                                "content-encoding": encoding})
    assert reply.status == status, reply.raw
    assert reply.json["error"]["code"] == code == reply.headers["x-ms-error-code"]
    schemas.check(reply.json, schemas.INFERENCE, "error")
    assert "Traceback" not in ep.log_path.read_text()


async def test_unknown_route_and_method_are_azure_errors(ep) -> None:
    missing = await call(ep, "GET", "/nowhere")
    assert missing.status == 404 and missing.json["error"]["code"] == "NotFound"
    method = await call(ep, "GET", f"/chat/completions{INFERENCE_QS}")
    assert method.status == 405 and "error" in method.json


async def test_model_is_required_when_several_deployments(ep) -> None:
    reply = await call(ep, "POST", route("inference", ""),
                       {"messages": [{"role": "user", "content": "hi"}]})
    assert reply.status == 400 and reply.json["error"]["code"] == "ModelRequired"


# ---------------------------------------------------------------- extra-parameters


@pytest.mark.parametrize("kind", KINDS)
async def test_extra_parameters_error_mode_names_the_parameter(ep, kind: str) -> None:
    reply = await chat(ep, "alpha", kind, top_k=5)
    assert reply.status == 400
    assert reply.json["error"]["param"] == "top_k" and "top_k" in reply.json["error"]["message"]
    explicit = await chat(ep, "alpha", kind, top_k=5, headers={"extra-parameters": "error"})
    assert explicit.status == 400


async def test_extra_parameters_drop_and_pass_through(ep) -> None:
    dropped = await chat(ep, "alpha", top_k=5, headers={"extra-parameters": "drop"})
    assert dropped.status == 200
    assert dropped.headers["x-compare-dropped-parameters"] == "top_k"
    assert "x-compare-passed-parameters" not in dropped.headers
    passed = await chat(ep, "alpha", top_k=5, weird={"a": 1},
                        headers={"extra-parameters": "pass-through"})
    assert passed.status == 200
    assert passed.headers["x-compare-passed-parameters"] == "top_k,weird"
    invalid = await chat(ep, "alpha", headers={"extra-parameters": "sometimes"})
    assert invalid.status == 400 and invalid.json["error"]["param"] == "extra-parameters"


# ---------------------------------------------------------------- capacity


async def test_rate_limit_429_with_retry_after_and_remaining_headers(ep) -> None:
    first = await chat(ep, "limited")
    second = await chat(ep, "limited")
    third = await chat(ep, "limited")
    assert (first.status, second.status, third.status) == (200, 200, 429)
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert second.headers["x-ratelimit-remaining-requests"] == "0"
    assert third.headers["x-ratelimit-remaining-requests"] == "0"
    assert 1 <= int(third.headers["retry-after"]) <= 10
    assert 0 < int(third.headers["retry-after-ms"]) <= 10_000
    assert third.json["error"]["code"] == "429"
    schemas.check(third.json, schemas.OPENAI, "error")


async def test_token_limit_counts_max_tokens(ep) -> None:
    first = await chat(ep, "tokenlimited", max_tokens=60)
    assert first.status == 200
    remaining = int(first.headers["x-ratelimit-remaining-tokens"])
    assert 0 < remaining < 100
    second = await chat(ep, "tokenlimited", max_tokens=60)
    assert second.status == 429 and "retry-after" in second.headers


async def test_remaining_headers_absent_without_capacity(ep) -> None:
    reply = await chat(ep, "alpha")
    assert "x-ratelimit-remaining-requests" not in reply.headers


# ---------------------------------------------------------------- content filter


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("text", "category", "severity"), [
    ("plan an ATTACK now", "violence", "medium"),
    ("a hateful remark", "hate", "high"),
])
async def test_prompt_filter_is_400_content_filter(ep, kind, text, category, severity) -> None:
    reply = await chat(ep, "filtered", kind, text=text)
    assert reply.status == 400
    error = reply.json["error"]
    assert error["code"] == "content_filter" == reply.headers["x-ms-error-code"]
    result = error["innererror"]["content_filter_result"]
    assert result[category] == {"filtered": True, "severity": severity}
    assert result["sexual"] == {"filtered": False, "severity": "safe"}
    schemas.check(reply.json, DIALECT[kind], "error")


@pytest.mark.parametrize("kind", KINDS)
async def test_output_filter_stops_with_content_filter(ep, kind: str) -> None:
    reply = await chat(ep, "filtered", kind, text="well darn it")
    assert reply.status == 200
    data = reply.json
    schemas.check(data, DIALECT[kind], "completion")
    choice = data["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert choice["message"]["content"] == "well "  # up to the filtered word
    assert choice["content_filter_results"]["profanity"] == {"filtered": True, "detected": True}
    if kind != "inference":
        assert data["prompt_filter_results"][0]["content_filter_results"]["hate"]["filtered"] \
            is False


@pytest.mark.parametrize("kind", KINDS)
async def test_output_filter_in_a_stream(ep, kind: str) -> None:
    reply = await chat(ep, "filtered", kind, text="oh darn", stream=True)
    chunks = [c for c in reply.chunks if c["choices"]]
    for chunk in reply.chunks:
        schemas.check(chunk, DIALECT[kind], "chunk")
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert "darn" not in text and text.startswith("oh")
    assert chunks[-1]["choices"][0]["finish_reason"] == "content_filter"
    assert chunks[-1]["choices"][0]["content_filter_results"]["profanity"]["filtered"] is True
    assert reply.events[-1] == "[DONE]"


async def test_unfiltered_answers_report_safe_results(ep) -> None:
    reply = await chat(ep, "filtered", "azure-openai", text="a calm day")
    choice = reply.json["choices"][0]
    assert choice["finish_reason"] in ("stop", "length")
    assert all(not v["filtered"] for v in choice["content_filter_results"].values())


# ---------------------------------------------------------------- stop sequences, defaults


@pytest.mark.parametrize("stream", [False, True])
async def test_stop_sequences_cut_the_output_and_never_leak(ep, stream: bool) -> None:
    reply = await chat(ep, "echo", text="alpha beta gamma delta", stop=["gam", "zzz"],
                       stream=stream)
    if stream:
        chunks = [c for c in reply.chunks if c["choices"]]
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        reason = chunks[-1]["choices"][0]["finish_reason"]
    else:
        text = reply.json["choices"][0]["message"]["content"]
        reason = reply.json["choices"][0]["finish_reason"]
    assert text == "alpha beta "
    assert reason == "stop"


async def test_max_tokens_gives_length(ep) -> None:
    reply = await chat(ep, "echo", text="a b c d e f g", max_tokens=3)
    assert reply.json["choices"][0]["finish_reason"] == "length"
    assert reply.json["usage"]["completion_tokens"] == 3


# ---------------------------------------------------------------- info, models, stats


async def test_info_routes(ep) -> None:
    for path in (f"/info{INFERENCE_QS}&model=ALPHA", f"/openai/deployments/alpha/info{AOAI_QS}"):
        reply = await call(ep, "GET", path)
        assert reply.status == 200, reply.raw
        schemas.check(reply.json, schemas.INFERENCE, "info")
        assert reply.json["model_type"] == "chat-completion"
        assert "simulated" in reply.json["model_name"]
    several = await call(ep, "GET", f"/info{INFERENCE_QS}")
    assert several.status == 400
    unknown = await call(ep, "GET", f"/info{INFERENCE_QS}&model=zzz")
    assert unknown.status == 404


async def test_models_list(ep) -> None:
    reply = await call(ep, "GET", "/openai/v1/models")
    assert reply.json["object"] == "list"
    assert sorted(m["id"] for m in reply.json["data"]) == sorted(CONFIG["deployments"])


async def test_stats_count_requests_by_deployment_and_status(ep) -> None:
    before = ep.stats()["echo"]
    await chat(ep, "echo", text="count me")
    await chat(ep, "echo", temperature="bad")
    after = ep.stats()["echo"]
    assert after["received"] == before["received"] + 2
    assert after["completed"] == before["completed"] + 2
    assert after["by_status"].get("200", 0) == before["by_status"].get("200", 0) + 1
    assert after["by_status"].get("400", 0) == before["by_status"].get("400", 0) + 1
    assert after["prompts"]["count me"] >= 1
    assert after["in_flight"] == 0
    denied = await call(ep, "GET", "/_compare/stats", key=False)
    assert denied.status == 401


# ---------------------------------------------------------------- timing


async def _timed_stream(ep, name: str) -> tuple[float, float, int]:
    async with aiohttp.ClientSession() as session:
        t0 = time.perf_counter()
        async with session.post(ep.url + route("inference", name), json=body(name, stream=True),
                                headers={"api-key": ep.api_key}) as resp:
            first = None
            n = 0
            async for line in resp.content:
                if line.startswith(b"data: {"):
                    if first is None:
                        first = time.perf_counter() - t0
                    n += 1
            return first or 0.0, time.perf_counter() - t0, n


async def test_simulated_delays_match_configuration(ep) -> None:
    await _timed_stream(ep, "alpha")  # warm the connection path
    runs = [await _timed_stream(ep, "alpha") for _ in range(5)]
    ttfts = [r[0] for r in runs]
    totals = [r[1] for r in runs]
    expected_total = (TTFT_MS + (TOKENS - 1) * ITL_MS) / 1000
    assert min(ttfts) >= TTFT_MS / 1000 - 0.001
    assert statistics.median(ttfts) <= TTFT_MS / 1000 + 0.008
    assert min(totals) >= expected_total - 0.001
    assert statistics.median(totals) <= expected_total + 0.010
    assert all(r[2] == TOKENS for r in runs)


async def test_concurrent_requests_keep_their_own_schedule(ep) -> None:
    results = await asyncio.gather(*(_timed_stream(ep, "alpha") for _ in range(20)))
    expected_total = (TTFT_MS + (TOKENS - 1) * ITL_MS) / 1000
    assert max(r[1] for r in results) < expected_total + 0.1  # not serialised
    assert all(r[2] == TOKENS for r in results)
