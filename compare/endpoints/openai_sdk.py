"""What the two openai-SDK adapters share (Azure OpenAI per-deployment, and OpenAI-compatible v1).

Choices that differ from the SDK's defaults, and why (each measured with openai 3.57):
- `max_retries=0`: the runner owns retries and times every attempt.
- The SDK's aiohttp transport (`openai.DefaultAioHttpClient`, extra `openai[aiohttp]`) on an
  aiohttp session of ours, instead of the default httpx2 / httpcore / h11 stack: at 64 streams
  in flight the h11 read path kept the client so busy that the end of each stream was read
  5–20 ms late (bench/RESULTS.md, before/after). Our session has no connection cap (the runner
  limits concurrency) and trace hooks that count the TCP connections opened and take `sent_at`
  when aiohttp writes the request (`send_clock.SendClock`, as in the azure-inference adapter).
  Per-call `httpx2.Timeout(read, connect=..., pool=...)` reaches aiohttp as `sock_read` (each
  read, so a stream that hangs mid-way fails too) and `sock_connect` / `connect`.
- The transport maps aiohttp's exceptions to httpx2's lossily (a refused connection becomes a
  ConnectTimeout): `http_errors.translate` decides by the aiohttp exception kept as the cause.
- The body is built by `ChatRequest.body` and sent with the client's documented
  `post(path, cast_to=httpx2.Response, body=...)`: the client's auth, Azure deployment URLs and
  error raising (non-2xx answers raise the SDK's APIStatusError, with its error body parsing),
  without `chat.completions.create`'s TypedDict transform of the body (a third of the client's
  CPU per request, profiled with bench/profile_adapter.py). The raw response keeps the headers
  (request id, region, rate-limit state) and is read with json.loads, not the SDK's pydantic
  models (about half of the client's CPU for streams, bench/RESULTS.md); streams go through the
  same SSE decoder as the azure-inference adapter (`sse.consume_sse`).
- Streams request `stream_options.include_usage` (tokens, decode_tps, cost); we read the body to
  its end after `[DONE]`, so finished streams keep their keep-alive connection.
"""

from __future__ import annotations

import json
import time
from typing import Any, Final

import aiohttp
import httpx2
import openai

from compare.deployments import Deployment
from compare.endpoints.aiohttp_session import traced_session
from compare.endpoints.base import ChatRequest, Completion
from compare.endpoints.completion import Accumulator, embeddings_completion, require_finish
from compare.endpoints.http_errors import Call, lower_headers, translate
from compare.endpoints.send_clock import SendClock
from compare.endpoints.sse import consume_sse

try:  # the transport behind openai.DefaultAioHttpClient, built here on our own session
    from openai._vendor.httpx_aiohttp import AiohttpTransport
except ImportError as e:  # pragma: no cover - openai without the aiohttp extra
    raise ImportError("compare needs the openai SDK's aiohttp transport: "
                      "pip install 'openai[aiohttp]'") from e

# Errors that, while draining a finished stream, only lose the connection.
_LOST: Final = (httpx2.TransportError, aiohttp.ClientError)


class OpenAISDKClient:
    """Base of the openai-SDK shared clients; subclasses build the SDK client in `_build`."""

    kind = "openai"

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._sdk: openai.AsyncOpenAI | None = None
        self._http: httpx2.AsyncClient | None = None
        self._session: aiohttp.ClientSession | None = None
        self._connections = 0

    @property
    def connections_opened(self) -> int:
        """TCP connections opened so far (keep-alive reuse keeps this low)."""
        return self._connections

    def _build(self, http_client: httpx2.AsyncClient) -> openai.AsyncOpenAI:
        raise NotImplementedError

    def _client(self) -> openai.AsyncOpenAI:
        # Built lazily inside the running loop: aiohttp sessions belong to one event loop.
        # No await between the check and the assignment, so concurrent first calls share it.
        if self._sdk is None:
            self._session = traced_session(self._on_connection)
            self._http = openai.DefaultAioHttpClient(
                transport=AiohttpTransport(client=self._session),
                timeout=httpx2.Timeout(120.0, connect=10.0),
                follow_redirects=True,
                trust_env=False,  # else httpx2 mounts its own transports for env proxies
            )
            self._sdk = self._build(self._http)
        return self._sdk

    def sdk(self) -> openai.AsyncOpenAI:
        """The openai SDK client (built on first use); batch deployments call its `files` and
        `batches` resources (`compare.endpoints.batch`)."""
        return self._client()

    async def _on_connection(self, *_: Any) -> None:
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
        body = request.body(model)
        body.update(request.extra)  # what the SDK's `extra_body` does: merged in, last
        if request.stream:
            body["stream_options"] = {"include_usage": True}
        options: dict[str, Any] = {
            "timeout": httpx2.Timeout(deployment.read_timeout_s,
                                      connect=deployment.connect_timeout_s,
                                      pool=deployment.connect_timeout_s),
            "headers": self._extra_headers(deployment, request),
        }
        captured: dict[str, str] = {}
        with SendClock() as clock:
            try:
                # The SDK's documented way to send a body as is (`client.post`, the client's
                # auth, URL and error handling): `chat.completions.create` first rebuilds the
                # body through its TypedDict transforms, a third of the client's CPU per request.
                response: httpx2.Response = await client.post(
                    "/chat/completions", cast_to=httpx2.Response, body=body, options=options,
                    stream=request.stream)
                captured.update(lower_headers(response.headers))
            except Exception as e:
                raise translate(e, Call(model, self.endpoint, captured)) from e
        # A non-streamed body is read already; a streamed one is not (stream=True).
        acc = Accumulator(clock.at, streamed=request.stream)
        acc.completion.headers = captured
        if not request.stream:
            try:
                acc.add_chunk(json.loads(response.content), time.perf_counter())
            except ValueError as e:  # not JSON, or not shaped like a chat completion
                raise translate(e, Call(model, self.endpoint, captured)) from e
            return require_finish(acc, model, captured)
        try:
            await consume_sse(response.aiter_bytes(), acc, model, captured, lost=_LOST)
        except Exception as e:
            raise translate(e, Call(model, self.endpoint, captured), partial=acc.finish()) from e
        finally:
            # After a full read the connection is already back in aiohttp's pool and this is a
            # no-op; after an error or cancellation it closes the half-read connection.
            await response.aclose()
        return require_finish(acc, model, captured)

    async def embed(self, texts: list[str], deployment: Deployment) -> Completion:
        """POST /embeddings through the client (its auth and, for Azure OpenAI, the deployment
        URL), the body read with json.loads like chat answers."""
        client = self._client()
        model = str(deployment.deployment)
        options: dict[str, Any] = {
            "timeout": httpx2.Timeout(deployment.read_timeout_s,
                                      connect=deployment.connect_timeout_s,
                                      pool=deployment.connect_timeout_s)}
        captured: dict[str, str] = {}
        with SendClock() as clock:
            try:
                response: httpx2.Response = await client.post(
                    "/embeddings", cast_to=httpx2.Response, options=options,
                    body={"model": model, "input": texts, "encoding_format": "float"})
                captured.update(lower_headers(response.headers))
                body = json.loads(response.content)
            except Exception as e:
                raise translate(e, Call(model, self.endpoint, captured)) from e
        return embeddings_completion(body, clock.at, captured, n=len(texts), model=model)

    async def model_info(self, deployment: str) -> dict[str, Any] | None:
        return None

    async def aclose(self) -> None:
        sdk, http, session = self._sdk, self._http, self._session
        self._sdk = self._http = self._session = None
        if sdk is not None:
            await sdk.close()
        if http is not None:
            await http.aclose()
        if session is not None:
            await session.close()
