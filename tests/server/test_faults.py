"""Each fault knob of the simulated backend, observed on the wire (raw aiohttp / sockets)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from compare.server.config import STATUS_FAULTS
from compare.server.local import local_endpoint

from . import _schemas as schemas
from ._http import body, call, chat, route

SIM = {"seed": 9, "output_tokens": 8, "ttft_ms": 1, "itl_ms": 1}
HANG_S = 1.5


def _dep(fault: str, **rule) -> dict:
    return {"backend": "simulated", "simulated": SIM, "faults": [{"fault": fault, **rule}]}


CONFIG = {
    "deployments": {
        **{f"s{name}": _dep(name, retry_after_s=2.5) for name in STATUS_FAULTS},
        "reset-before": _dep("reset_before_response"),
        "reset-mid": _dep("reset_mid_stream", after_tokens=3),
        "hang-before": _dep("hang_before_headers", hang_s=HANG_S),
        "hang-mid": _dep("hang_mid_stream", after_tokens=2, hang_s=HANG_S),
        "comments": _dep("sse_comments"),
        "crlf": _dep("crlf"),
        "error-event": _dep("error_event_mid_stream", after_tokens=4),
        "no-finish": _dep("no_finish_reason"),
        "oversized": _dep("oversized_output", size_chars=300_000),
        "first-two": _dep("503", first_attempts=2),
        "matching": _dep("500", match="flaky"),
        "half": _dep("502", rate=0.5),
        "healthy": {"backend": "simulated", "simulated": SIM},
    }
}


@pytest.fixture(scope="module")
def ep():
    with local_endpoint(config=CONFIG) as endpoint:
        yield endpoint


@pytest.mark.parametrize("name", list(STATUS_FAULTS))
async def test_status_faults(ep, name: str) -> None:
    status, hints = STATUS_FAULTS[name]
    reply = await chat(ep, f"s{name}")
    assert reply.status == status
    error = reply.json["error"]
    assert reply.headers["x-ms-error-code"] == error["code"]
    assert "Injected" in error["message"] or status == 429
    schemas.check(reply.json, schemas.INFERENCE, "error")
    assert reply.headers["apim-request-id"]
    if hints == "both":
        assert reply.headers["retry-after"] == "3" and reply.headers["retry-after-ms"] == "2500"
    elif hints == "ms":
        assert "retry-after" not in reply.headers and reply.headers["retry-after-ms"] == "2500"
    else:
        assert "retry-after" not in reply.headers and "retry-after-ms" not in reply.headers


async def _raw_exchange(ep, name: str, stream: bool, read_timeout: float = 10) -> tuple[bytes,
                                                                                          str]:
    """Send one request over a plain socket; return (bytes received, how it ended)."""
    host, port = ep.url.removeprefix("http://").split(":")
    payload = json.dumps(body(name, stream=stream)).encode()
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST {route('inference', name)} HTTP/1.1\r\nHost: {host}\r\napi-key: {ep.api_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        "Connection: close\r\n\r\n".encode() + payload
    )
    await writer.drain()
    received = b""
    how = "eof"
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), read_timeout)
            if not chunk:
                break
            received += chunk
    except ConnectionResetError:
        how = "reset"
    except TimeoutError:
        how = "timeout"
    finally:
        writer.close()
    return received, how


async def test_reset_before_response(ep) -> None:
    for stream in (False, True):
        received, how = await _raw_exchange(ep, "reset-before", stream)
        assert (received, how) == (b"", "reset")


async def test_reset_mid_stream(ep) -> None:
    received, how = await _raw_exchange(ep, "reset-mid", True)
    assert how == "reset"
    assert received.startswith(b"HTTP/1.1 200")
    assert received.count(b"data: {") == 3 and b"[DONE]" not in received
    # Non-streaming: headers and part of the body, then the reset.
    received, how = await _raw_exchange(ep, "reset-mid", False)
    assert how == "reset" and received.startswith(b"HTTP/1.1 200")
    head, _, partial = received.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    assert 0 < len(partial) < length


async def test_hang_before_headers(ep) -> None:
    received, how = await _raw_exchange(ep, "hang-before", True, read_timeout=HANG_S / 2)
    assert (received, how) == (b"", "timeout")
    # After hang_s the server gives up on the connection with a reset.
    received, how = await _raw_exchange(ep, "hang-before", False, read_timeout=HANG_S * 3)
    assert (received, how) == (b"", "reset")


async def test_hang_mid_stream(ep) -> None:
    received, how = await _raw_exchange(ep, "hang-mid", True, read_timeout=HANG_S / 2)
    assert how == "timeout"
    assert received.count(b"data: {") == 2


async def test_sse_comment_lines(ep) -> None:
    reply = await chat(ep, "comments", stream=True)
    assert reply.status == 200
    assert reply.raw.count(b": keep-alive\n\n") >= 8
    assert reply.events[-1] == "[DONE]"


async def test_crlf_line_endings(ep) -> None:
    reply = await chat(ep, "crlf", stream=True)
    assert b"\r\n\r\n" in reply.raw and b"}\n\n" not in reply.raw
    assert reply.events[-1] == "[DONE]"
    assert reply.chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_error_event_mid_stream(ep) -> None:
    reply = await chat(ep, "error-event", stream=True)
    assert reply.status == 200
    assert "[DONE]" not in reply.events
    *content, last = reply.chunks
    assert len(content) == 4 and all(c["choices"][0]["finish_reason"] is None for c in content)
    assert last["error"]["code"] == "InternalServerError"


async def test_stream_ends_without_finish_reason(ep) -> None:
    reply = await chat(ep, "no-finish", stream=True)
    assert reply.events[-1] == "[DONE]"
    assert all(c["choices"][0]["finish_reason"] is None for c in reply.chunks)
    nonstream = await chat(ep, "no-finish")
    assert nonstream.json["choices"][0]["finish_reason"] is None


async def test_oversized_output_ignores_max_tokens(ep) -> None:
    reply = await chat(ep, "oversized", stream=True, max_tokens=5)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in reply.chunks)
    assert len(text) == 300_000
    nonstream = await chat(ep, "oversized", max_tokens=5)
    assert len(nonstream.json["choices"][0]["message"]["content"]) == 300_000


async def test_first_attempts_of_each_prompt_fail_then_succeed(ep) -> None:
    statuses = [(await chat(ep, "first-two", text="prompt A")).status for _ in range(4)]
    assert statuses == [503, 503, 200, 200]
    # Each distinct prompt has its own count.
    assert (await chat(ep, "first-two", text="prompt B")).status == 503
    # An admin reset starts the counts again.
    await call(ep, "POST", "/_compare/reset")
    assert (await chat(ep, "first-two", text="prompt A")).status == 503


async def test_match_limits_a_fault_to_some_prompts(ep) -> None:
    assert (await chat(ep, "matching", text="a flaky one")).status == 500
    assert (await chat(ep, "matching", text="a solid one")).status == 200


async def test_rate_is_a_probability(ep) -> None:
    statuses = [(await chat(ep, "half", text=f"p{i}")).status for i in range(60)]
    assert 15 <= statuses.count(502) <= 45
    assert set(statuses) == {200, 502}


async def test_faults_are_counted_and_others_unaffected(ep) -> None:
    results = await asyncio.gather(*(chat(ep, "healthy", text=f"h{i}") for i in range(10)),
                                   chat(ep, "s500"), chat(ep, "s503"))
    assert [r.status for r in results[:10]] == [200] * 10
    stats = ep.stats()
    assert stats["s500"]["faults"]["500"] >= 1
    assert stats["healthy"]["by_status"]["200"] >= 10


async def test_client_gives_up_on_hang_server_stays_healthy(ep) -> None:
    timeout = aiohttp.ClientTimeout(total=0.3)
    with pytest.raises(asyncio.TimeoutError):
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await session.post(ep.url + route("inference", "hang-before"),
                               json=body("hang-before"), headers={"api-key": ep.api_key})
    assert (await chat(ep, "healthy")).status == 200
