"""Azure AI model inference (the unified endpoint) through `azure.ai.inference.aio`.

One `ChatCompletionsClient` per endpoint URL + auth + api-version; deployments are routed by the
`model` field of the body. Choices that differ from the SDK's defaults, and why (each measured
with azure-ai-inference 1.0.0b9 / azure-core 1.41):

- `retry_total=0`: the runner owns retries and times every attempt.
- `connection_timeout` / `read_timeout` on every call: the per-call `timeout=` does not stop a hung
  read, azure-core's aiohttp `sock_read` timeout does (it also covers each read of a stream).
- Every call goes through the client's pipeline (`send_request`: the same policies, auth and
  transport as `complete()`) and json.loads: non-streamed answers skip the SDK's model
  deserialisation and `as_dict()` (a quarter of the client's CPU per request). Streams use our
  own SSE decoder (`sse.consume_sse`, shared with the openai adapters), because the SDK's
  parser raises ValueError on comment lines and CRLF, silently returns truncated text after a
  mid-stream error event, and closing its finished stream force-closes the keep-alive
  connection. We read every stream to the end of its body, so aiohttp returns the
  connection to the pool.
- The aiohttp session is ours (via `AioHttpTransport(session=..., session_owner=False)`) so
  trace hooks can count the TCP connections actually opened and take `sent_at` when the request
  is written (`send_clock.SendClock`), not before the SDK's own pre-send work.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
from azure.ai.inference.aio import ChatCompletionsClient
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import IncompleteReadError, ServiceRequestError, ServiceResponseError
from azure.core.pipeline.transport import AioHttpTransport
from azure.core.rest import HttpRequest

from compare.deployments import DEFAULT_API_VERSION, Deployment
from compare.endpoints.aiohttp_session import traced_session
from compare.endpoints.base import ChatRequest, Completion
from compare.endpoints.completion import (
    Accumulator,
    embeddings_completion,
    require_finish,
    unexpected_response,
)
from compare.endpoints.http_errors import Call, http_error, lower_headers, translate
from compare.endpoints.send_clock import SendClock
from compare.endpoints.sse import consume_sse
from compare.errors import EndpointError

KIND: Final = "azure-inference"


class _DropReportedWarnings(logging.Filter):
    """azure-core logs a WARNING for a body cut short; we raise IncompleteStreamError for it
    (the record says so), so the duplicate line would only clutter notebooks."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in ("Incomplete download.", "Unable to stream download.")


logging.getLogger("azure.core.pipeline.transport._aiohttp").addFilter(_DropReportedWarnings())
USER_AGENT: Final = "compare"
LOOPBACK: Final = ("127.0.0.1", "localhost", "::1")


def entra_scope(endpoint: str) -> str:
    """Token scope for Entra ID: serverless / managed-compute endpoints use Azure ML's, the
    Foundry / AI Services unified endpoint uses Cognitive Services'."""
    host = (urlsplit(endpoint).hostname or "").lower()
    if host.endswith((".models.ai.azure.com", ".inference.ml.azure.com")):
        return "https://ml.azure.com/.default"
    return "https://cognitiveservices.azure.com/.default"


class AzureInferenceClient:
    """The shared client for one unified endpoint (implements `base.SharedClient`).

    Pass `api_key` (key auth) or `credential` (an azure-core AsyncTokenCredential, e.g.
    `azure.identity.aio.DefaultAzureCredential()`; the caller closes it).
    """

    kind = KIND

    def __init__(
        self,
        endpoint: str,
        *,
        api_key: str | None = None,
        credential: Any = None,
        api_version: str | None = None,
    ) -> None:
        if (api_key is None) == (credential is None):
            raise ValueError("pass exactly one of api_key or credential")
        self.endpoint = endpoint.rstrip("/")
        self.api_version = api_version or DEFAULT_API_VERSION[KIND]
        self._credential = AzureKeyCredential(api_key) if api_key is not None else credential
        self._token_auth = credential is not None
        # Bearer tokens over plain HTTP are refused by azure-core; allowed for a loopback server.
        self._allow_http_token = (urlsplit(self.endpoint).hostname or "") in LOOPBACK
        self._sdk: ChatCompletionsClient | None = None
        self._session: aiohttp.ClientSession | None = None
        self._connections = 0

    def __repr__(self) -> str:
        auth = "entra" if self._token_auth else "key"
        return f"AzureInferenceClient({self.endpoint!r}, auth={auth!r})"

    @property
    def connections_opened(self) -> int:
        """TCP connections opened so far (keep-alive reuse keeps this low)."""
        return self._connections

    def _client(self) -> ChatCompletionsClient:
        # Built lazily inside the running loop: aiohttp sessions belong to one event loop.
        # No await between the check and the assignment, so concurrent first calls share it.
        if self._sdk is None:
            self._session = traced_session(self._on_connection)
            transport = AioHttpTransport(session=self._session, session_owner=False)
            self._sdk = ChatCompletionsClient(
                self.endpoint,
                self._credential,
                api_version=self.api_version,
                retry_total=0,
                transport=transport,
                user_agent=USER_AGENT,
                credential_scopes=[entra_scope(self.endpoint)],
            )
        return self._sdk

    async def _on_connection(self, *_: Any) -> None:
        self._connections += 1

    def _call_options(self, deployment: Deployment) -> dict[str, Any]:
        options: dict[str, Any] = {
            "connection_timeout": deployment.connect_timeout_s,
            "read_timeout": deployment.read_timeout_s,
        }
        if self._token_auth and self._allow_http_token:
            options["enforce_https"] = False
        return options

    async def chat(self, request: ChatRequest, deployment: Deployment) -> Completion:
        client = self._client()
        model = request.deployment
        body = request.body(model)
        headers: dict[str, str] = {}
        mode = deployment.extra_parameters
        if request.extra:
            body.update(request.extra)
            mode = mode or "pass-through"  # what the SDK itself sends with model_extras
        if mode:
            headers["extra-parameters"] = mode
        # What `complete(body=...)` sends, minus its model deserialisation on the way back.
        # The response's headers are read from it: no raw_response_hook (a policy per call).
        http_request = HttpRequest(
            "POST",
            "/chat/completions",
            params={"api-version": self.api_version},
            headers={**headers,
                     "Accept": "text/event-stream" if request.stream else "application/json"},
            json=body,
        )
        with SendClock() as clock:
            try:
                # stream=True for every answer: a body loaded by the pipeline is also decoded
                # by its ContentDecodePolicy (json + charset detection, 12 % of the client's CPU
                # per non-streamed request, profiled), which we would only parse again.
                response = await client.send_request(
                    http_request, stream=True, **self._call_options(deployment))
            except Exception as e:
                raise translate(e, Call(model, self.endpoint)) from e
        received = lower_headers(response.headers)
        if request.stream:
            return await self._stream(response, clock.at, model, received)
        return await self._complete(response, clock.at, model, received)

    async def _complete(self, response: Any, sent_at: float, model: str,
                        headers: dict[str, str]) -> Completion:
        try:
            content = await response.read()
        except Exception as e:
            raise translate(e, Call(model, self.endpoint, headers)) from e
        finally:
            await response.close()
        ended = time.perf_counter()
        if not 200 <= response.status_code < 300:
            raise http_error(response.status_code, content, headers, deployment=model)
        acc = Accumulator(sent_at, streamed=False)
        try:
            # json.loads, not response.json(): no charset detection (the body is UTF-8 JSON).
            acc.add_chunk(json.loads(content), ended)
        except ValueError as e:  # not JSON, or not shaped like a chat completion
            raise unexpected_response(e, model, headers) from e
        acc.completion.headers = headers
        return require_finish(acc, model, headers)

    async def _stream(self, response: Any, sent_at: float, model: str,
                      headers: dict[str, str]) -> Completion:
        acc = Accumulator(sent_at, streamed=True)
        acc.completion.headers = headers
        try:
            if response.status_code != 200:
                # Reading the whole error body also releases the connection for reuse.
                error_body = await _read_error_body(response)
                raise http_error(response.status_code, error_body, headers, deployment=model)
            await consume_sse(response.iter_bytes(), acc, model, headers, lost=_LOST)
        except EndpointError:
            raise
        except Exception as e:
            raise translate(e, Call(model, self.endpoint, headers), partial=acc.finish()) from e
        finally:
            # After a full read the connection is already back in the pool and this is a no-op;
            # after an error or cancellation it closes the half-read connection.
            await response.close()
        return require_finish(acc, model, headers)

    async def embed(self, texts: list[str], deployment: Deployment) -> Completion:
        """POST /embeddings (the unified endpoint's embeddings route; `model` routes it)."""
        client = self._client()
        model = str(deployment.deployment)
        request = HttpRequest("POST", "/embeddings", params={"api-version": self.api_version},
                              json={"model": model, "input": texts})
        with SendClock() as clock:
            try:
                response = await client.send_request(request, **self._call_options(deployment))
            except Exception as e:
                raise translate(e, Call(model, self.endpoint)) from e
        received = lower_headers(response.headers)
        if not 200 <= response.status_code < 300:
            raise http_error(response.status_code, response.content, received, deployment=model)
        try:
            body = json.loads(response.content)
        except ValueError as e:
            raise unexpected_response(e, model, received) from e
        return embeddings_completion(body, clock.at, received, n=len(texts), model=model)

    async def model_info(self, deployment: str) -> dict[str, Any] | None:
        """`GET /info` for one deployment (routed by the `azureml-model-deployment` header, as
        the multi-deployment endpoints document, and `model`). None when the endpoint has none."""
        client = self._client()
        request = HttpRequest(
            "GET",
            "/info",
            params={"api-version": self.api_version, "model": deployment},
            headers={"azureml-model-deployment": deployment},
        )
        options: dict[str, Any] = {"connection_timeout": 10.0, "read_timeout": 30.0}
        if self._token_auth and self._allow_http_token:
            options["enforce_https"] = False
        try:
            response = await client.send_request(request, **options)
        except Exception as e:
            raise translate(e, Call(deployment, self.endpoint)) from e
        headers = lower_headers(response.headers)
        if response.status_code in (404, 405):
            return None
        if response.status_code != 200:
            raise http_error(response.status_code, response.text(), headers, deployment=deployment)
        try:
            info = response.json()
        except ValueError:
            return None
        return dict(info) if isinstance(info, dict) else None

    async def aclose(self) -> None:
        sdk, session = self._sdk, self._session
        self._sdk = self._session = None
        if sdk is not None:
            await sdk.close()
        if session is not None:
            await session.close()


async def _read_error_body(response: Any) -> bytes:
    try:
        return await response.read()
    except Exception:  # a broken error body still leaves the status code to report
        return b""


# Errors that, while draining a finished stream, only lose the connection.
_LOST: Final = (ServiceResponseError, ServiceRequestError, IncompleteReadError)
