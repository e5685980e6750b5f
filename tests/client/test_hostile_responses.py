"""Answers our local endpoint never gives: 2xx bodies that are not chat completions.

A raw asyncio HTTP server (the hostile peer: a proxy's page, an incompatible server) answers each
request with canned bytes; the real SDKs read them over real HTTP. Every adapter must turn each
answer into an `EndpointError` (or a Completion); before, several escaped as JSONDecodeError,
AttributeError or TypeError, and numeric content reached `Completion.text`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from compare.deployments import Deployment
from compare.endpoints import EndpointPool
from compare.endpoints.base import ChatRequest
from compare.errors import EndpointError, IncompleteStreamError

from .conftest import KINDS

pytestmark = pytest.mark.timeout(60)


def _sse(*events: str) -> bytes:
    return "".join(f"data: {e}\n\n" for e in events).encode()


def _chunk(choices: str) -> str:
    return (
        '{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":'
        + choices
        + "}"
    )


def _completion(message: str) -> bytes:
    return (
        '{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
        '"message":' + message + ',"finish_reason":"stop"}]}'
    ).encode()


FIN = _chunk('[{"index":0,"delta":{},"finish_reason":"stop"}]')
JSON, HTML, SSE = "application/json", "text/html", "text/event-stream"

# name -> (content type, body, whether the request streams)
ANSWERS: dict[str, tuple[str, bytes, bool]] = {
    "not-json": (JSON, b"{not json", False),
    "empty": (JSON, b"", False),
    "html-page": (HTML, b"<html>sign in</html>", False),
    "json-list": (JSON, b"[1, 2]", False),
    "json-null": (JSON, b"null", False),
    "choices-string": (JSON, b'{"id":"x","choices":"abc"}', False),
    "content-number": (JSON, _completion('{"role":"assistant","content":5}'), False),
    "finish-reason-number": (
        JSON,
        b'{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
        b'"message":{"role":"assistant","content":"a"},"finish_reason":7}]}',
        False,
    ),
    "stream-event-list": (SSE, _sse("[1]", "[DONE]"), True),
    "stream-event-null": (SSE, _sse("null", "[DONE]"), True),
    "stream-choices-string": (SSE, _sse('{"choices":"x"}', "[DONE]"), True),
    "stream-content-number": (
        SSE,
        _sse(_chunk('[{"index":0,"delta":{"content":5},"finish_reason":null}]'), FIN, "[DONE]"),
        True,
    ),
}


class HostileServer:
    """Answers every HTTP request with `self.answer` (status 200), then closes."""

    def __init__(self) -> None:
        self.answer: tuple[str, bytes] = (JSON, b"{}")
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            json.loads(await reader.readexactly(length))  # a real request body arrived
            content_type, body = self.answer
            writer.write(
                f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def hostile() -> AsyncIterator[HostileServer]:
    peer = HostileServer()
    server = await asyncio.start_server(peer.handle, "127.0.0.1", 0)
    peer.port = server.sockets[0].getsockname()[1]
    async with server:
        yield peer


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("answer", list(ANSWERS))
async def test_malformed_answers_are_endpoint_errors(
    hostile: HostileServer, kind: str, answer: str
) -> None:
    content_type, body, stream = ANSWERS[answer]
    hostile.answer = (content_type, body)
    url = f"http://127.0.0.1:{hostile.port}" + ("/openai/v1" if kind == "openai" else "")
    dep = Deployment(name="d", endpoint=url, kind=kind, api_key="k", read_timeout_s=10)
    async with EndpointPool() as pool:
        with pytest.raises(EndpointError) as info:
            await pool.get(dep).chat(ChatRequest("d", [{"role": "user", "content": "hi"}], stream))
    err = info.value
    assert "'d'" in err.message and len(err.message) <= 500
    if isinstance(err, IncompleteStreamError):
        # No usable event arrived: the stream ended without an answer.
        assert stream and "without finish_reason" in err.message
    else:
        assert type(err) is EndpointError and not err.retryable
        assert err.message.startswith("unexpected response from 'd'")
    partial = err.partial
    assert partial is None or isinstance(partial.text, str)
