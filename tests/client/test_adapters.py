"""Every adapter against the local endpoint over real HTTP, through the real SDKs.

Each test runs for the three kinds: azure-inference (azure.ai.inference.aio), azure-openai
(openai.AsyncAzureOpenAI) and openai (openai.AsyncOpenAI on /openai/v1).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from compare.deployments import Deployment
from compare.endpoints import EndpointPool
from compare.endpoints.base import ChatRequest, Completion, Endpoint
from compare.errors import (
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    DeploymentNotFoundError,
    EndpointError,
    EndpointTimeout,
    IncompleteStreamError,
    RateLimitError,
    ServerError,
    TransportError,
)
from compare.server.local import LocalEndpoint

from .conftest import KINDS, TIMED, base_url, open_endpoint, request_for

pytestmark = pytest.mark.timeout(120)

HELLO = [{"role": "user", "content": "Say hello"}]


def dep(ep: LocalEndpoint, kind: str, name: str, **kwargs: Any) -> Deployment:
    kwargs.setdefault("api_key", ep.api_key)
    return Deployment(name=name, endpoint=base_url(ep, kind), kind=kind, **kwargs)


async def chat(
    ep: LocalEndpoint, kind: str, name: str, *, stream: bool = True, **kwargs: Any
) -> Completion:
    request_fields = {
        k: kwargs.pop(k) for k in ("messages", "max_tokens", "extra", "stop") if k in kwargs
    }
    if "max_tokens_default" in kwargs:
        kwargs["max_tokens"] = kwargs.pop("max_tokens_default")
    d = dep(ep, kind, name, **kwargs)
    messages = request_fields.pop("messages", HELLO)
    async with open_endpoint(d) as endpoint:
        return await endpoint.chat(request_for(d, messages, stream=stream, **request_fields))


def check_headers(completion_or_error: Completion | EndpointError) -> None:
    headers = completion_or_error.headers
    assert headers.get("apim-request-id") and headers.get("x-request-id")
    assert headers.get("x-ms-region") == "test-region"


# -- happy paths -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_stream_fills_completion(fault_endpoint: LocalEndpoint, kind: str) -> None:
    before = time.perf_counter()
    c = await chat(fault_endpoint, kind, "ok")
    after = time.perf_counter()
    assert c.streamed and c.finish_reason == "stop"
    assert c.text and len(c.text.split()) == 6  # output_tokens: 6 simulated words
    assert c.completion_tokens == 6
    assert c.prompt_tokens is not None and c.prompt_tokens > 0
    assert c.model == "ok-simulated"
    assert before < c.sent_at < c.first_token_at <= c.chunk_times[-1] <= c.ended_at < after
    assert c.chunk_times == sorted(c.chunk_times) and c.chunk_times[0] == c.first_token_at
    assert len(c.chunk_times) == 6
    check_headers(c)
    assert c.content_filter is None


@pytest.mark.parametrize("kind", KINDS)
async def test_non_stream_fills_completion(fault_endpoint: LocalEndpoint, kind: str) -> None:
    c = await chat(fault_endpoint, kind, "ok", stream=False)
    streamed = await chat(fault_endpoint, kind, "ok")
    assert not c.streamed and c.finish_reason == "stop"
    assert c.text == streamed.text  # same seed, same prompt: the same simulated words
    assert c.completion_tokens == 6 and c.prompt_tokens == streamed.prompt_tokens
    assert c.first_token_at is None and c.chunk_times == []
    assert c.ended_at > c.sent_at
    check_headers(c)


@pytest.mark.parametrize("kind", KINDS)
async def test_sdk_endpoint_protocol(fault_endpoint: LocalEndpoint, kind: str) -> None:
    async with EndpointPool() as pool:
        endpoint = pool.get(dep(fault_endpoint, kind, "ok"))
        assert isinstance(endpoint, Endpoint) and endpoint.kind == kind


@pytest.mark.parametrize("kind", KINDS)
async def test_timing_matches_configured_delays(fault_endpoint: LocalEndpoint, kind: str) -> None:
    """TTFT and inter-chunk gaps measured by the adapter vs the simulated backend's fixed
    delays (ttft 80 ms, 15 ms per token): within a few milliseconds."""
    async with EndpointPool() as pool:
        endpoint = pool.get(dep(fault_endpoint, kind, "timed"))
        await endpoint.chat(ChatRequest("timed", HELLO))  # warm: connection, SDK imports
        runs = [await endpoint.chat(ChatRequest("timed", HELLO)) for _ in range(3)]
    ttft = statistics.median(c.first_token_at - c.sent_at for c in runs)  # type: ignore[operator]
    gaps = [b - a for c in runs for a, b in zip(c.chunk_times, c.chunk_times[1:], strict=False)]
    assert all(len(c.chunk_times) == TIMED["tokens"] for c in runs)
    assert TIMED["ttft_ms"] / 1000 <= ttft <= TIMED["ttft_ms"] / 1000 + 0.015, ttft
    assert abs(statistics.median(gaps) - TIMED["itl_ms"] / 1000) <= 0.004, gaps
    for c in runs:
        assert 0 <= c.ended_at - c.chunk_times[-1] < 0.01


@pytest.mark.parametrize("kind", KINDS)
async def test_sse_comments_and_crlf_parse_cleanly(
    fault_endpoint: LocalEndpoint, kind: str
) -> None:
    clean = await chat(fault_endpoint, kind, "ok")
    for name in ("comments", "crlf"):
        c = await chat(fault_endpoint, kind, name)
        assert c.text == clean.text and c.finish_reason == "stop", name
        assert len(c.chunk_times) == len(clean.chunk_times)


@pytest.mark.parametrize("kind", KINDS)
async def test_max_tokens_and_defaults_reach_the_service(
    fault_endpoint: LocalEndpoint, kind: str
) -> None:
    c = await chat(fault_endpoint, kind, "ok", max_tokens=3)
    assert c.completion_tokens == 3 and c.finish_reason == "length"
    # A deployment default applies when the request leaves it unset; the request wins.
    default = await chat(fault_endpoint, kind, "ok", max_tokens_default=2)
    assert default.completion_tokens == 2 and default.finish_reason == "length"
    wins = await chat(fault_endpoint, kind, "ok", max_tokens=4, max_tokens_default=2)
    assert wins.completion_tokens == 4


@pytest.mark.parametrize("kind", KINDS)
async def test_display_name_routes_to_service_name(
    fault_endpoint: LocalEndpoint, kind: str
) -> None:
    d = Deployment(
        name="Shown Name",
        deployment="ok",
        endpoint=base_url(fault_endpoint, kind),
        kind=kind,
        api_key=fault_endpoint.api_key,
    )
    async with EndpointPool() as pool:
        c = await pool.get(d).chat(request_for(d, HELLO))
    assert c.model == "ok-simulated"


# -- HTTP errors -----------------------------------------------------------------------------

STATUS_CASES = [
    ("f-400", BadRequestError, 400),
    ("f-422", BadRequestError, 422),
    ("f-401", AuthenticationError, 401),
    ("f-403", AuthenticationError, 403),
    ("f-408", ServerError, 408),
    ("f-500", ServerError, 500),
    ("f-502", ServerError, 502),
    ("f-503", ServerError, 503),
    ("f-504", ServerError, 504),
    ("nope", DeploymentNotFoundError, 404),
]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "nostream"])
@pytest.mark.parametrize("kind", KINDS)
async def test_status_translation(fault_endpoint: LocalEndpoint, kind: str, stream: bool) -> None:
    for name, error_type, status in STATUS_CASES:
        with pytest.raises(error_type) as info:
            await chat(fault_endpoint, kind, name, stream=stream)
        err = info.value
        assert type(err) is error_type, (name, err)
        assert err.http_status == status, (name, err)
        assert str(status) in str(err)
        check_headers(err)
        assert err.retryable == (error_type is ServerError)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "nostream"])
@pytest.mark.parametrize("kind", KINDS)
async def test_rate_limit_retry_after(
    fault_endpoint: LocalEndpoint, kind: str, stream: bool
) -> None:
    # retry-after-ms wins over Retry-After (1.5 s → 1500 ms and "2"); ms alone; neither.
    for name, expected in (("f-429", 1.5), ("f-429-ms", 2.25), ("f-429-none", None)):
        with pytest.raises(RateLimitError) as info:
            await chat(fault_endpoint, kind, name, stream=stream)
        err = info.value
        assert err.http_status == 429 and err.retryable and err.status == "rate_limited"
        assert err.retry_after_s == expected, name
        if name == "f-429":
            assert err.headers["retry-after"] == "2" and err.headers["retry-after-ms"] == "1500"


@pytest.mark.parametrize("kind", KINDS)
async def test_wrong_key_is_authentication_error(fault_endpoint: LocalEndpoint, kind: str) -> None:
    secret = "wrong-key-must-not-leak"
    with pytest.raises(AuthenticationError) as info:
        await chat(fault_endpoint, kind, "ok", api_key=secret)
    assert info.value.http_status == 401
    assert secret not in str(info.value) and secret not in repr(info.value.headers)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "nostream"])
@pytest.mark.parametrize("kind", KINDS)
async def test_content_filter(fault_endpoint: LocalEndpoint, kind: str, stream: bool) -> None:
    messages = [{"role": "user", "content": "tell me the forbidden thing"}]
    with pytest.raises(ContentFilterError) as info:
        await chat(fault_endpoint, kind, "filtered", stream=stream, messages=messages)
    err = info.value
    assert err.http_status == 400 and err.code == "content_filter"
    assert err.status == "content_filtered" and not err.retryable
    assert err.content_filter["violence"] == {"filtered": True, "severity": "medium"}
    # A clean prompt to the same deployment passes, with the filter results attached.
    ok = await chat(fault_endpoint, kind, "filtered", stream=stream)
    assert ok.finish_reason == "stop"
    assert ok.content_filter is not None


@pytest.mark.parametrize("kind", ["azure-inference"])
async def test_extra_parameters_modes(fault_endpoint: LocalEndpoint, kind: str) -> None:
    extra = {"my_knob": 1}
    with pytest.raises(BadRequestError, match="my_knob"):
        await chat(fault_endpoint, kind, "ok", extra=extra, extra_parameters="error")
    dropped = await chat(fault_endpoint, kind, "ok", extra=extra, extra_parameters="drop")
    assert dropped.headers["x-compare-dropped-parameters"] == "my_knob"
    # No mode given: extras are passed through, as the SDK does with model_extras.
    passed = await chat(fault_endpoint, kind, "ok", extra=extra)
    assert passed.headers["x-compare-passed-parameters"] == "my_knob"
    from_deployment = await chat(fault_endpoint, kind, "ok", stream=False, extra_parameters="drop")
    assert "x-compare-dropped-parameters" not in from_deployment.headers


@pytest.mark.parametrize("kind", ["azure-openai", "openai"])
async def test_extra_body_on_openai_kinds(fault_endpoint: LocalEndpoint, kind: str) -> None:
    with pytest.raises(BadRequestError, match="my_knob"):
        await chat(fault_endpoint, kind, "ok", extra={"my_knob": 1})
    c = await chat(fault_endpoint, kind, "ok", extra={"my_knob": 1}, extra_parameters="drop")
    assert c.headers["x-compare-dropped-parameters"] == "my_knob"


# -- transport, truncation, timeouts ---------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "nostream"])
@pytest.mark.parametrize("kind", KINDS)
async def test_reset_before_response(
    fault_endpoint: LocalEndpoint, kind: str, stream: bool
) -> None:
    with pytest.raises(TransportError) as info:
        await chat(fault_endpoint, kind, "reset-before", stream=stream)
    assert info.value.retryable and info.value.http_status is None


@pytest.mark.parametrize("kind", KINDS)
async def test_connection_refused(unused_tcp_port: int, kind: str) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}" + ("/openai/v1" if kind == "openai" else "")
    d = Deployment(name="x", endpoint=url, kind=kind, api_key="k")
    async with open_endpoint(d) as endpoint:
        with pytest.raises(TransportError):
            await endpoint.chat(ChatRequest("x", HELLO))


@pytest.mark.parametrize("kind", KINDS)
async def test_no_answer_names_host_port_cause_and_fix(unused_tcp_port: int, kind: str) -> None:
    suffix = "/openai/v1" if kind == "openai" else ""
    refused = Deployment(name="x", endpoint=f"http://127.0.0.1:{unused_tcp_port}{suffix}",
                         kind=kind, api_key="k")
    async with open_endpoint(refused) as endpoint:
        with pytest.raises(TransportError) as info:
            await endpoint.chat(ChatRequest("x", HELLO))
    assert info.value.message.startswith(
        f"no HTTP answer from 'x' at 127.0.0.1:{unused_tcp_port}: connection refused — "
        "is the server running, and is the port right?")
    typo = Deployment(name="x", endpoint=f"http://no-such-host.invalid:8000{suffix}", kind=kind,
                      api_key="k", connect_timeout_s=5)
    async with open_endpoint(typo) as endpoint:
        with pytest.raises(TransportError) as info:
            await endpoint.chat(ChatRequest("x", HELLO))
    assert ("at no-such-host.invalid:8000: host name not found (DNS) — check the endpoint URL "
            "for a typo") in info.value.message


@pytest.mark.parametrize("kind", KINDS)
async def test_stream_truncations_keep_partial(fault_endpoint: LocalEndpoint, kind: str) -> None:
    clean = await chat(fault_endpoint, kind, "ok")
    for name in ("reset-mid", "error-event", "no-finish"):
        with pytest.raises(IncompleteStreamError) as info:
            await chat(fault_endpoint, kind, name)
        err = info.value
        partial = err.partial
        assert isinstance(partial, Completion), name
        assert partial.text and clean.text.startswith(partial.text), (name, partial.text)
        assert partial.finish_reason is None
        assert partial.first_token_at is not None and partial.chunk_times
        assert err.status == "incomplete" and err.retryable
        check_headers(err)
    # After the error event the message names the service's error code.
    with pytest.raises(IncompleteStreamError, match="InternalServerError"):
        await chat(fault_endpoint, kind, "error-event")


@pytest.mark.parametrize("kind", KINDS)
async def test_no_finish_reason_non_stream(fault_endpoint: LocalEndpoint, kind: str) -> None:
    with pytest.raises(IncompleteStreamError) as info:
        await chat(fault_endpoint, kind, "no-finish", stream=False)
    assert info.value.partial.text


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "nostream"])
@pytest.mark.parametrize("kind", KINDS)
async def test_read_timeout_fires_on_hung_server(
    fault_endpoint: LocalEndpoint, kind: str, stream: bool
) -> None:
    """The server hangs 30 s before headers; the 0.5 s read timeout must end the call."""
    start = time.perf_counter()
    with pytest.raises(EndpointTimeout, match="read timeout") as info:
        await chat(fault_endpoint, kind, "hang-before", stream=stream, read_timeout_s=0.5)
    elapsed = time.perf_counter() - start
    assert 0.5 <= elapsed < 2.0, elapsed
    assert info.value.status == "timeout" and info.value.retryable


@pytest.mark.parametrize("kind", KINDS)
async def test_read_timeout_fires_mid_stream(fault_endpoint: LocalEndpoint, kind: str) -> None:
    start = time.perf_counter()
    with pytest.raises(EndpointTimeout) as info:
        await chat(fault_endpoint, kind, "hang-mid", read_timeout_s=0.5)
    elapsed = time.perf_counter() - start
    assert 0.5 <= elapsed < 2.0, elapsed
    partial = info.value.partial
    assert partial is not None and len(partial.chunk_times) == 3 and partial.text


@pytest.mark.parametrize("kind", KINDS)
async def test_cancel_mid_stream_leaves_client_usable(
    fault_endpoint: LocalEndpoint, kind: str
) -> None:
    async with EndpointPool() as pool:
        hung = pool.get(dep(fault_endpoint, kind, "hang-mid"))
        task = asyncio.create_task(hung.chat(ChatRequest("hang-mid", HELLO)))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        ok = await pool.get(dep(fault_endpoint, kind, "ok")).chat(ChatRequest("ok", HELLO))
        assert ok.finish_reason == "stop"


# -- connection reuse ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_finished_streams_keep_their_connections(
    fault_endpoint: LocalEndpoint, kind: str
) -> None:
    """200 streams at 8 in flight open at most 8 TCP connections (measured with
    azure-ai-inference 1.0.0b9: the SDK's own stream close drops the connection when [DONE]
    precedes the end of the body)."""
    n, in_flight = 200, 8
    async with EndpointPool() as pool:
        endpoint = pool.get(dep(fault_endpoint, kind, "ok"))
        gate = asyncio.Semaphore(in_flight)

        async def one() -> Completion:
            async with gate:
                return await endpoint.chat(ChatRequest("ok", HELLO))

        results = await asyncio.gather(*(one() for _ in range(n)))
        assert all(c.finish_reason == "stop" for c in results)
        assert 1 <= pool.connections_opened <= in_flight, pool.connections_opened
        established = _established_to(fault_endpoint)
        assert established <= in_flight, established


def _established_to(ep: LocalEndpoint) -> int:
    """TCP connections from this process to the endpoint's port, counted by the OS."""
    import os

    import psutil

    port = int(ep.url.rsplit(":", 1)[1])
    conns = psutil.Process(os.getpid()).net_connections(kind="tcp")
    return sum(1 for c in conns if c.raddr and c.raddr.port == port and c.status == "ESTABLISHED")


@pytest.mark.parametrize("kind", KINDS)
async def test_errors_do_not_leak_connections(fault_endpoint: LocalEndpoint, kind: str) -> None:
    # Error bodies are read to the end, so the connection goes back to the pool.
    async with EndpointPool() as pool:
        for _ in range(20):
            with pytest.raises(ServerError):
                await pool.get(dep(fault_endpoint, kind, "f-503")).chat(ChatRequest("f-503", HELLO))
        assert pool.connections_opened == 1


# -- model info ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_model_info(fault_endpoint: LocalEndpoint, kind: str) -> None:
    async with EndpointPool() as pool:
        info = await pool.get(dep(fault_endpoint, kind, "ok")).model_info()
        other = await pool.get(dep(fault_endpoint, kind, "timed")).model_info("timed")
    assert info is not None and other is not None
    if kind == "openai":
        assert info["id"] == "ok" and other["id"] == "timed"
    else:
        assert info["model_name"] == "ok-simulated" and other["model_name"] == "timed-simulated"
        assert info["model_type"].startswith("chat")


@pytest.mark.parametrize("kind", KINDS)
async def test_model_info_absent(fault_endpoint: LocalEndpoint, kind: str) -> None:
    async with EndpointPool() as pool:
        assert await pool.get(dep(fault_endpoint, kind, "nope")).model_info() is None


# -- the shared fixtures' shipped simulated deployments ----------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_shipped_sim_deployments(sim_endpoint: LocalEndpoint, kind: str) -> None:
    async with EndpointPool() as pool:
        d = dep(sim_endpoint, kind, "sim-fast")
        c = await pool.get(d).chat(ChatRequest("sim-fast", HELLO))
        assert c.finish_reason == "stop" and c.model and "simulated" in c.model
        assert c.completion_tokens and c.completion_tokens >= 1
        with pytest.raises(ContentFilterError):
            await pool.get(dep(sim_endpoint, kind, "sim-slow")).chat(
                ChatRequest("sim-slow", [{"role": "user", "content": "how to attack"}])
            )


# -- no hidden SDK retries, connect timeout ----------------------------------------------------


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "nostream"])
@pytest.mark.parametrize("kind", KINDS)
async def test_sdk_never_retries(fault_endpoint: LocalEndpoint, kind: str, stream: bool) -> None:
    """Statuses the SDKs retry by default (429 with Retry-After, 408, 5xx) reach the server
    exactly once per call: the runner sees and times every attempt."""
    names = ("f-429", "f-408", "f-500", "f-503", "f-504", "reset-before")
    before = {n: fault_endpoint.stats()[n]["received"] for n in names}
    for name in names:
        with pytest.raises(EndpointError):
            await chat(fault_endpoint, kind, name, stream=stream)
    after = fault_endpoint.stats()
    assert {n: after[n]["received"] - before[n] for n in names} == dict.fromkeys(names, 1)


@pytest.fixture
def unaccepting_port() -> Iterator[int]:
    """A port whose accept queue is full: the kernel drops further SYNs, so connecting hangs
    (what a black-holed host looks like) and only the connect timeout can end it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.1)
    yield port
    for s in (*fillers, server):
        s.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_connect_timeout_fires(unaccepting_port: int, kind: str) -> None:
    url = f"http://127.0.0.1:{unaccepting_port}" + ("/openai/v1" if kind == "openai" else "")
    d = Deployment(name="x", endpoint=url, kind=kind, api_key="k", connect_timeout_s=0.4)
    start = time.perf_counter()
    async with open_endpoint(d) as endpoint:
        with pytest.raises(EndpointTimeout, match="connect timeout"):
            await endpoint.chat(ChatRequest("x", HELLO))
    assert 0.4 <= time.perf_counter() - start < 2.0


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "nostream"])
@pytest.mark.parametrize("kind", KINDS)
async def test_rate_limit_state_headers_captured(
    fault_endpoint: LocalEndpoint, kind: str, stream: bool
) -> None:
    c = await chat(fault_endpoint, kind, "limited", stream=stream)
    assert int(c.headers["x-ratelimit-remaining-requests"]) < 1000
    assert int(c.headers["x-ratelimit-remaining-tokens"]) < 1000000
    assert c.headers["x-ms-deployment-name"] == "limited"


@pytest.mark.parametrize("kind", KINDS)
async def test_client_recovers_after_transient_faults(
    make_endpoint_server: Callable[..., LocalEndpoint], kind: str
) -> None:
    """The first two attempts of each prompt fail (503, then a reset mid-stream); the third
    succeeds over the same pooled client. Only the reset costs a new connection."""
    ep = make_endpoint_server(
        {
            "deployments": {
                "flaky": {
                    "backend": "simulated",
                    "simulated": {"output_tokens": 6, "ttft_ms": 1, "itl_ms": 1},
                    "faults": [
                        {"fault": "503", "first_attempts": 1},
                        {"fault": "reset_mid_stream", "first_attempts": 1, "after_tokens": 2},
                    ],
                }
            }
        }
    )
    async with EndpointPool() as pool:
        endpoint = pool.get(dep(ep, kind, "flaky"))
        with pytest.raises(ServerError):
            await endpoint.chat(ChatRequest("flaky", HELLO))
        with pytest.raises(IncompleteStreamError) as info:
            await endpoint.chat(ChatRequest("flaky", HELLO))
        ok = await endpoint.chat(ChatRequest("flaky", HELLO))
        assert ok.finish_reason == "stop" and ok.text.startswith(info.value.partial.text)
        assert pool.connections_opened == 2
    assert ep.stats()["flaky"]["received"] == 3


@pytest.mark.parametrize("kind", KINDS)
async def test_embeddings_through_every_adapter(fault_endpoint: LocalEndpoint, kind: str) -> None:
    d = dep(fault_endpoint, kind, "vectors", price_input_per_1k=1.0)
    async with open_endpoint(d) as endpoint:
        comp = await endpoint.embed(["a red apple", "a red apple", "tax law reform"])
    vectors = comp.embeddings
    assert vectors is not None and [len(v) for v in vectors] == [16, 16, 16]
    assert vectors[0] == vectors[1] and vectors[0] != vectors[2]
    assert comp.prompt_tokens == 9 and comp.completion_tokens == 0
    assert comp.ended_at >= comp.sent_at and comp.headers.get("x-request-id")


@pytest.mark.parametrize("kind", KINDS)
async def test_embeddings_errors_are_ours(fault_endpoint: LocalEndpoint, kind: str) -> None:
    d = dep(fault_endpoint, kind, "ok")  # a chat deployment: no embeddings there
    async with open_endpoint(d) as endpoint:
        with pytest.raises(EndpointError) as info:
            await endpoint.embed(["x"])
    assert info.value.http_status in (400, 404)
