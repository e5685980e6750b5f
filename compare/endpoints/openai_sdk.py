"""What the two openai-SDK adapters share (Azure OpenAI per-deployment, and OpenAI-compatible v1).

Choices that differ from the SDK's defaults, and why (each measured with openai 3.57 / httpx2):
- `max_retries=0`: the runner owns retries and times every attempt.
- Our own `httpx2.AsyncClient` (openai 3.x uses httpx2, not httpx): per-call
  `httpx2.Timeout(read, connect=...)` — the read timeout applies to each read, so a stream that
  hangs mid-way fails too — no connection cap (the runner limits concurrency), and a request hook
  that adds httpcore's `trace` extension to count the TCP connections opened.
- `with_raw_response` to keep the response headers (request id, region, rate-limit state), and
  its httpx2 response read with json.loads, not `parse()`: the SDK's pydantic model per chunk was
  about half of the client's CPU for streams (bench/RESULTS.md). Streams go through the same SSE
  decoder as the azure-inference adapter (`sse.consume_sse`); non-2xx answers are still
  raised by the SDK (its error body parsing), so error translation is unchanged.
- Streams request `stream_options.include_usage` (tokens, decode_tps, cost); we read the body to
  its end after `[DONE]`, so finished streams keep their keep-alive connection.
- `sent_at` is when httpcore wrote the request (its trace extension, `send_clock.SendClock`).
"""

from __future__ import annotations

import json
import time
from typing import Any, Final

import httpx2
import openai

from compare.deployments import Deployment
from compare.endpoints.base import ChatRequest, Completion
from compare.endpoints.completion import Accumulator, embeddings_completion, require_finish
from compare.endpoints.http_errors import Call, lower_headers, translate
from compare.endpoints.send_clock import SendClock, request_written
from compare.endpoints.sse import consume_sse

KEEPALIVE_CONNECTIONS = 256
# httpcore trace events at the request's first write (its headers): `.started` runs right before
# the socket write with no await between; `.complete` comes after anyio's checkpoint that
# follows the write, i.e. possibly after other tasks' work.
_WRITTEN: Final = ("http11.send_request_headers.started", "http2.send_request_headers.started")


class OpenAISDKClient:
    """Base of the openai-SDK shared clients; subclasses build the SDK client in `_build`."""

    kind = "openai"

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._sdk: openai.AsyncOpenAI | None = None
        self._http: httpx2.AsyncClient | None = None
        self._connections = 0

    @property
    def connections_opened(self) -> int:
        """TCP connections opened so far (keep-alive reuse keeps this low)."""
        return self._connections

    def _build(self, http_client: httpx2.AsyncClient) -> openai.AsyncOpenAI:
        raise NotImplementedError

    def _client(self) -> openai.AsyncOpenAI:
        # Built lazily in the running loop; no await between check and assignment.
        if self._sdk is None:
            self._http = httpx2.AsyncClient(
                limits=httpx2.Limits(
                    max_connections=None, max_keepalive_connections=KEEPALIVE_CONNECTIONS
                ),
                timeout=httpx2.Timeout(120.0, connect=10.0),
                follow_redirects=True,
                event_hooks={"request": [self._add_trace]},
            )
            self._sdk = self._build(self._http)
        return self._sdk

    def sdk(self) -> openai.AsyncOpenAI:
        """The openai SDK client (built on first use); batch deployments call its `files` and
        `batches` resources (`compare.endpoints.batch`)."""
        return self._client()

    async def _add_trace(self, request: httpx2.Request) -> None:
        request.extensions["trace"] = self._trace

    async def _trace(self, name: str, info: dict[str, Any]) -> None:
        if name in _WRITTEN:
            request_written()
        elif name == "connection.connect_tcp.complete":
            self._connections += 1

    def _model(self, request: ChatRequest) -> str:
        return request.deployment

    def _extra_headers(self, deployment: Deployment, request: ChatRequest) -> dict[str, str]:
        # Servers that know the header (Azure AI model inference dialects) apply the mode to
        # `extra`; others ignore it.
        if deployment.extra_parameters and request.extra:
            return {"extra-parameters": deployment.extra_parameters}
        return {}

    async def chat(self, request: ChatRequest, deployment: Deployment) -> Completion:
        client = self._client()
        model = self._model(request)
        kwargs: dict[str, Any] = {
            "model": model,
            "messages": list(request.messages),
            "timeout": httpx2.Timeout(
                deployment.read_timeout_s,
                connect=deployment.connect_timeout_s,
                pool=deployment.connect_timeout_s,
            ),
        }
        kwargs.update(request.params())
        if request.extra:
            kwargs["extra_body"] = dict(request.extra)
        headers = self._extra_headers(deployment, request)
        if headers:
            kwargs["extra_headers"] = headers
        if request.stream:
            kwargs["stream"] = True
            kwargs["stream_options"] = {"include_usage": True}
        captured: dict[str, str] = {}
        with SendClock() as clock:
            try:
                raw = await client.chat.completions.with_raw_response.create(**kwargs)
                captured.update(lower_headers(raw.headers))
            except Exception as e:
                raise translate(e, Call(model, self.endpoint, captured)) from e
        # A non-streamed body is read already; a streamed one is not (stream=True).
        response: httpx2.Response = raw.http_response
        acc = Accumulator(clock.at, streamed=request.stream)
        acc.completion.headers = captured
        if not request.stream:
            try:
                acc.add_chunk(json.loads(response.content), time.perf_counter())
            except ValueError as e:  # not JSON, or not shaped like a chat completion
                raise translate(e, Call(model, self.endpoint, captured)) from e
            return require_finish(acc, model, captured)
        try:
            await consume_sse(
                response.aiter_bytes(), acc, model, captured, lost=(httpx2.TransportError,)
            )
        except Exception as e:
            raise translate(e, Call(model, self.endpoint, captured), partial=acc.finish()) from e
        finally:
            # A no-op after a full read (httpx2 released the connection at the body's end).
            await response.aclose()
        return require_finish(acc, model, captured)

    async def embed(self, texts: list[str], deployment: Deployment) -> Completion:
        """`embeddings.create` (the deployment's service name as `model`), body read with
        json.loads like chat answers."""
        client = self._client()
        model = str(deployment.deployment)
        timeout = httpx2.Timeout(deployment.read_timeout_s, connect=deployment.connect_timeout_s,
                                 pool=deployment.connect_timeout_s)
        captured: dict[str, str] = {}
        with SendClock() as clock:
            try:
                raw = await client.embeddings.with_raw_response.create(
                    model=model, input=texts, encoding_format="float", timeout=timeout)
                captured.update(lower_headers(raw.headers))
                body = json.loads(raw.http_response.content)
            except Exception as e:
                raise translate(e, Call(model, self.endpoint, captured)) from e
        return embeddings_completion(body, clock.at, captured, n=len(texts), model=model)

    async def model_info(self, deployment: str) -> dict[str, Any] | None:
        return None

    async def aclose(self) -> None:
        sdk, http = self._sdk, self._http
        self._sdk = self._http = None
        if sdk is not None:
            await sdk.close()
        if http is not None:
            await http.aclose()
