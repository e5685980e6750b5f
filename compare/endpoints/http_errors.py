"""What went wrong, in our terms: HTTP answers and SDK/transport exceptions → `compare.errors`.

Two entry points, both used by every adapter:

- `http_error(status, body, headers, ...)`: an HTTP error answer → AuthenticationError (401/403),
  DeploymentNotFoundError (404), RateLimitError (429, with the service's Retry-After),
  ServerError (408/5xx), ContentFilterError (400 content_filter), BadRequestError (other 4xx).
- `translate(exception, call)`: ONE table (`_TABLE`) for the exceptions of azure-core, openai,
  httpx2, aiohttp and the standard library. The first row whose class matches and whose handler
  accepts the exception decides; anything no row accepts is re-raised (a bug, not a service
  answer). Cancellation is never caught. Rows name their classes by module, resolved only from
  modules already imported: an exception of an SDK that was never loaded cannot occur, and the
  azure-only path never imports openai.
"""

from __future__ import annotations

import email.utils
import json
import math
import socket
import ssl
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from compare.endpoints.base import Completion
from compare.endpoints.completion import MAX_MESSAGE, unexpected_response
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


@dataclass
class Call:
    """The call an exception interrupted: for messages and for the record's header fields."""

    deployment: str
    endpoint: str
    headers: dict[str, str] = field(default_factory=dict)


def lower_headers(headers: Mapping[str, str] | Any) -> dict[str, str]:
    """Response headers as a plain dict with lower-case names (last value wins)."""
    if headers is None:
        return {}
    return {str(k).lower(): str(v) for k, v in headers.items()}


def retry_after_s(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The wait the service asked for: `retry-after-ms` first, then `Retry-After`.

    `Retry-After` may be seconds or an HTTP date (RFC 9110). None when absent or unreadable.
    """
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000.0
            if math.isfinite(value) and value >= 0:
                return value
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
        return value if math.isfinite(value) and value >= 0 else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def error_fields(body: Any) -> tuple[str | None, str | None, Any]:
    """(code, message, innererror) from an Azure / OpenAI error body, any nesting."""
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return None, _short(body) if body.strip() else None, None
    if not isinstance(body, Mapping):
        return None, None, None
    err = body.get("error", body)
    if not isinstance(err, Mapping):
        return None, str(err), None
    code, message = err.get("code"), err.get("message")
    inner = err.get("innererror") or err.get("inner_error")
    return (
        str(code) if code is not None else None,
        _short(str(message)) if message is not None else None,
        inner,
    )


def http_error(
    status: int,
    body: Any,
    headers: Mapping[str, str],
    *,
    deployment: str,
    partial: Completion | None = None,
) -> EndpointError:
    """The compare.errors exception for one HTTP error response."""
    code, message, inner = error_fields(body)
    # The status once: "HTTP 401: ..." (a service's code that only repeats it is left out).
    shown_code = code if code and code != str(status) else None
    text = f"HTTP {status}" + (f" {shown_code}" if shown_code else "")
    text += f": {message}" if message else ""
    kwargs: dict[str, Any] = {"http_status": status, "code": code, "headers": headers,
                              "partial": partial}
    if status in (401, 403):
        return AuthenticationError(
            f"{text} — the key or token was refused for deployment {deployment!r}", **kwargs
        )
    if status == 404:
        return DeploymentNotFoundError(
            f"{text} — no deployment {deployment!r} on this endpoint", **kwargs
        )
    if status == 429:
        return RateLimitError(text, retry_after_s=retry_after_s(headers), **kwargs)
    if status == 408 or status >= 500:
        return ServerError(text, retry_after_s=retry_after_s(headers), **kwargs)
    if status == 400 and _is_content_filter(code, inner):
        result = None
        if isinstance(inner, Mapping):
            result = inner.get("content_filter_result", inner.get("content_filter_results"))
        return ContentFilterError(text, content_filter=result, **kwargs)
    return BadRequestError(text, **kwargs)


def _is_content_filter(code: str | None, inner: Any) -> bool:
    if code == "content_filter":
        return True
    inner_code = inner.get("code") if isinstance(inner, Mapping) else None
    return inner_code == "ResponsibleAIPolicyViolation"


# -- the exception table -----------------------------------------------------------------------

Handler = Callable[[BaseException, Call, Completion | None], EndpointError | None]


def _as_is(error: BaseException, call: Call, partial: Completion | None) -> EndpointError:
    assert isinstance(error, EndpointError)
    return error


def _unexpected(error: BaseException, call: Call, partial: Completion | None) -> EndpointError:
    return unexpected_response(error, call.deployment, call.headers, partial=partial)


def _azure_status(error: Any, call: Call, partial: Completion | None) -> EndpointError | None:
    status = error.status_code
    if status is None or 200 <= status < 300:
        # A credential's ClientAuthenticationError (no answer at all), or the SDK's DecodeError
        # for a 200 it could not read: later rows decide.
        return None
    response = error.response
    headers = lower_headers(response.headers) if response is not None else dict(call.headers)
    try:
        body = response.text() if response is not None else None
    except Exception:  # a broken error body still leaves the status code to report
        body = None
    return http_error(status, body, headers, deployment=call.deployment, partial=partial)


def _openai_status(error: Any, call: Call, partial: Completion | None) -> EndpointError:
    headers = lower_headers(error.response.headers)
    return http_error(error.status_code, error.body, headers, deployment=call.deployment,
                      partial=partial)


def _entra(error: BaseException, call: Call, partial: Completion | None) -> EndpointError:
    """The credential could not produce a token (raised before any request is sent)."""
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return AuthenticationError(
        f"could not get a Microsoft Entra ID token for {call.deployment!r}: "
        f"{_short(first_line)} (sign in with `az login`, set AZURE_TENANT_ID / AZURE_CLIENT_ID / "
        "AZURE_CLIENT_SECRET, or run where a managed identity is available)",
        headers=call.headers,
    )


def _timeout(what: str) -> Handler:
    def handler(error: BaseException, call: Call, partial: Completion | None) -> EndpointError:
        return EndpointTimeout(f"{what} timeout calling {call.deployment!r} at "
                               f"{_host_port(call.endpoint)}", headers=call.headers,
                               partial=partial)
    return handler


def _openai_timeout(error: BaseException, call: Call, partial: Completion | None
                    ) -> EndpointError:
    connect = _resolve(("httpx2", ("ConnectTimeout", "PoolTimeout")))
    what = "connect" if connect and isinstance(error.__cause__, connect) else "read"
    return _timeout(what)(error, call, partial)


def _by_transport_cause(error: BaseException, call: Call, partial: Completion | None
                        ) -> EndpointError | None:
    """The openai SDK's aiohttp transport maps aiohttp's exceptions to httpx2's lossily (a
    refused connection or a reset becomes a ConnectTimeout): decide by the aiohttp exception
    it kept as the cause. None (later rows decide) when no aiohttp exception is behind it."""
    transport = _resolve(("aiohttp", ("ClientError",)))
    cause = error.__cause__
    while cause is not None and not (transport and isinstance(cause, transport)):
        cause = cause.__cause__
    return None if cause is None else translate(cause, call, partial=partial)


def _connection(error: BaseException, call: Call, partial: Completion | None) -> EndpointError:
    if partial is not None:
        return IncompleteStreamError(
            f"connection lost mid-stream from {call.deployment!r} after {len(partial.text)} "
            "characters",
            headers=call.headers,
            partial=partial,
        )
    return TransportError(describe_no_answer(error, call), headers=call.headers)


def _stream_error_event(error: Any, call: Call, partial: Completion | None) -> EndpointError:
    # An openai APIError without a status: an error event inside a 200 stream.
    code = getattr(error, "code", None)
    return IncompleteStreamError(
        f"error event mid-stream from {call.deployment!r}: {code or ''} {error.message}".strip(),
        code=str(code) if code is not None else None,
        headers=call.headers,
        partial=partial,
    )


def _unreadable(error: BaseException, call: Call, partial: Completion | None) -> EndpointError:
    if partial is not None and partial.streamed:
        return IncompleteStreamError(
            f"unreadable stream event from {call.deployment!r}: {error}"[:MAX_MESSAGE],
            headers=call.headers,
            partial=partial,
        )
    # A 2xx body that is not JSON at all (an empty 204, a proxy's page served as JSON).
    return unexpected_response(error, call.deployment, call.headers, partial=partial)


_AZ: Final = "azure.core.exceptions"
# First match wins: subclasses before their bases (a credential's ClientAuthenticationError is
# an HttpResponseError, httpx2's timeouts are TransportErrors, openai's APITimeoutError is an
# APIConnectionError, aiohttp's timeouts are TimeoutErrors). openai / httpx2 transport errors
# with an aiohttp cause (the openai adapters' transport) are decided by that cause.
_TABLE: Final[tuple[tuple[tuple[str, tuple[str, ...]], Handler], ...]] = (
    (("compare.errors", ("EndpointError",)), _as_is),
    (("compare.endpoints.completion", ("ResponseShapeError",)), _unexpected),
    ((_AZ, ("HttpResponseError",)), _azure_status),
    (("openai", ("APIStatusError",)), _openai_status),
    (("openai", ("APIConnectionError",)), _by_transport_cause),
    (("httpx2", ("TransportError",)), _by_transport_cause),
    ((_AZ, ("ClientAuthenticationError",)), _entra),
    ((_AZ, ("ServiceRequestTimeoutError",)), _timeout("connect")),
    (("httpx2", ("ConnectTimeout", "PoolTimeout")), _timeout("connect")),
    ((_AZ, ("ServiceResponseTimeoutError",)), _timeout("read")),
    (("httpx2", ("TimeoutException",)), _timeout("read")),
    (("openai", ("APITimeoutError",)), _openai_timeout),
    (("aiohttp", ("ConnectionTimeoutError",)), _timeout("connect")),
    (("aiohttp", ("SocketTimeoutError",)), _timeout("read")),
    (("builtins", ("TimeoutError",)), _timeout("read")),
    ((_AZ, ("ServiceRequestError", "ServiceResponseError", "IncompleteReadError")), _connection),
    (("openai", ("APIConnectionError",)), _connection),
    (("httpx2", ("TransportError",)), _connection),
    (("aiohttp", ("ClientError",)), _connection),
    (("builtins", ("OSError",)), _connection),
    (("openai", ("APIError",)), _stream_error_event),
    ((_AZ, ("AzureError",)), _unreadable),
    (("builtins", ("ValueError",)), _unreadable),
)


def _resolve(ref: tuple[str, tuple[str, ...]]) -> tuple[type, ...]:
    module = sys.modules.get(ref[0])
    if module is None:
        return ()
    return tuple(getattr(module, name) for name in ref[1])


def translate(
    error: BaseException, call: Call, *, partial: Completion | None = None
) -> EndpointError:
    """The EndpointError for an exception raised while calling `call.deployment`."""
    for ref, handler in _TABLE:
        classes = _resolve(ref)
        if classes and isinstance(error, classes):
            translated = handler(error, call, partial)
            if translated is not None:
                return translated
    raise error


# -- "no HTTP answer": say where and why -------------------------------------------------------


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        inner = getattr(e, "inner_exception", None)  # azure-core keeps the transport's error here
        todo += [e.__cause__, e.__context__, inner if isinstance(inner, BaseException) else None]


# (what happened, what to check, exception types, words in the messages), most specific first.
_CAUSES: Final = (
    ("connection refused", "is the server running, and is the port right?",
     (ConnectionRefusedError,), ("connection refused", "connect call failed")),
    ("host name not found (DNS)", "check the endpoint URL for a typo",
     (socket.gaierror,), ("name or service not known", "nodename nor servname",
                          "name resolution", "getaddrinfo failed", "dns")),
    ("connection reset by the server", "the server or a proxy dropped it",
     (ConnectionResetError,), ("reset by peer", "connection reset")),
    ("network unreachable", "check the network, proxy and firewall",
     (), ("network is unreachable", "no route to host")),
    ("TLS handshake failed", "check https:// vs http:// and the certificate",
     (ssl.SSLError,), ("certificate verify", "sslerror", "ssl handshake", "wrong version number")),
)


def _cause(error: BaseException) -> tuple[str, str]:
    """(what happened, what to check) from the exception chain."""
    chain = list(_chain(error))
    texts = [f"{type(e).__name__} {e}".lower() for e in chain]
    for what, fix, types, words in _CAUSES:
        if any(isinstance(e, types) for e in chain if types) or any(
                w in t for t in texts for w in words):
            return what, fix
    return (f"no answer ({type(error).__name__})",
            "check the endpoint URL and that the server is running")


def describe_no_answer(error: BaseException, call: Call) -> str:
    """One line a person can act on: which deployment, host and port, why, what to check."""
    what, fix = _cause(error)
    return (f"no HTTP answer from {call.deployment!r} at {_host_port(call.endpoint)}: {what} — "
            f"{fix} (endpoint {call.endpoint})")
