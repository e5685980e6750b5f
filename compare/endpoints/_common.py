"""Pieces every adapter shares: HTTP status → our errors, Retry-After, Completion building, SSE.

Nothing here imports an SDK: adapters pass in plain status codes, headers and parsed JSON.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextvars import ContextVar, Token
from typing import Any, Final

from compare.endpoints.base import ChatRequest, Completion
from compare.errors import (
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    DeploymentNotFoundError,
    EndpointError,
    IncompleteStreamError,
    RateLimitError,
    ServerError,
)

MAX_MESSAGE: Final = 500


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
    if isinstance(body, (bytes, bytearray)):
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
    code = err.get("code")
    message = err.get("message")
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
    text = f"HTTP {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
    kwargs: dict[str, Any] = {
        "http_status": status,
        "code": code,
        "headers": headers,
        "partial": partial,
    }
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


def entra_error(error: Exception, deployment: str, headers: Mapping[str, str]) -> EndpointError:
    """The credential could not produce a token (raised before any request is sent)."""
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return AuthenticationError(
        f"could not get a Microsoft Entra ID token for {deployment!r}: {_short(first_line)} "
        "(sign in with `az login`, set AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_CLIENT_SECRET, "
        "or run where a managed identity is available)",
        headers=headers,
    )


def _is_content_filter(code: str | None, inner: Any) -> bool:
    if code == "content_filter":
        return True
    inner_code = inner.get("code") if isinstance(inner, Mapping) else None
    return inner_code == "ResponsibleAIPolicyViolation"


# -- request body ------------------------------------------------------------------------------


def chat_body(request: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
    """The OpenAI-shaped JSON body (common parameters only; None omitted)."""
    body: dict[str, Any] = {"model": model, "messages": list(request.messages)}
    if stream:
        body["stream"] = True
    for name in ("temperature", "max_tokens", "top_p", "seed"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if request.stop:
        body["stop"] = list(request.stop)
    return body


# -- building a Completion ---------------------------------------------------------------------


class ResponseShapeError(ValueError):
    """A 2xx answer that parsed but is not shaped like a chat completion (a JSON list, `choices`
    as a string, numeric content, ...). Raised while folding; adapters turn it into
    `unexpected_response`."""


def unexpected_response(
    error: Exception, model: str, headers: Mapping[str, str], *, partial: Completion | None = None
) -> EndpointError:
    """The EndpointError for a 2xx answer that is not a usable chat completion (not JSON, the
    wrong shape): not retryable, since a server that answers so will answer so again."""
    return EndpointError(
        f"unexpected response from {model!r}: {type(error).__name__}: {error}"[:MAX_MESSAGE],
        headers=dict(headers),
        partial=partial,
    )


def _shape(what: str, value: Any) -> ResponseShapeError:
    return ResponseShapeError(f"{what} is a {type(value).__name__}")


class Accumulator:
    """Folds OpenAI-shaped chunks (dicts) into a Completion, stamping perf_counter times.

    Anything not shaped as a chat completion raises ResponseShapeError, so a stray answer never
    puts a non-string into the text, model or finish_reason of a record.
    """

    def __init__(self, sent_at: float, *, streamed: bool) -> None:
        self.completion = Completion(sent_at=sent_at, streamed=streamed)
        self._parts: list[str] = []
        self._filters: dict[str, Any] = {}

    def add_chunk(self, chunk: Mapping[str, Any], now: float) -> None:
        if not isinstance(chunk, Mapping):
            raise _shape("the body", chunk)
        c = self.completion
        c.ended_at = now
        self.set_model(chunk.get("model"))
        self.add_usage(chunk.get("usage"))
        prompt_filters = chunk.get("prompt_filter_results")
        if prompt_filters:
            self._filters["prompt_filter_results"] = prompt_filters
        choices = chunk.get("choices") or ()
        if not isinstance(choices, list | tuple):
            raise _shape("choices", choices)
        for choice in choices:
            if not isinstance(choice, Mapping):
                raise _shape("a choice", choice)
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or choice.get("message") or {}
            if not isinstance(delta, Mapping):
                raise _shape("a choice's delta/message", delta)
            content = delta.get("content")
            if content:
                self.add_text(content, now)
            self.set_finish_reason(choice.get("finish_reason"))
            results = choice.get("content_filter_results")
            if results:
                self._filters["content_filter_results"] = results

    def set_model(self, model: Any) -> None:
        if model is None or model == "":
            return
        if not isinstance(model, str):
            raise _shape("model", model)
        self.completion.model = model

    def set_finish_reason(self, reason: Any) -> None:
        if reason is None or reason == "":
            return
        if not isinstance(reason, str):
            raise _shape("finish_reason", reason)
        self.completion.finish_reason = reason

    def add_text(self, content: str, now: float) -> None:
        if not isinstance(content, str):
            raise _shape("content", content)
        c = self.completion
        if c.first_token_at is None:
            c.first_token_at = now
        if c.streamed:
            c.chunk_times.append(now)
        self._parts.append(content)

    def add_usage(self, usage: Any) -> None:
        if not usage:
            return
        get = usage.get if isinstance(usage, Mapping) else lambda k: getattr(usage, k, None)
        prompt, completion = get("prompt_tokens"), get("completion_tokens")
        # Counts only: a malformed usage block is dropped, it does not fail the answer.
        if isinstance(prompt, int) and not isinstance(prompt, bool) and prompt >= 0:
            self.completion.prompt_tokens = prompt
        if isinstance(completion, int) and not isinstance(completion, bool) and completion >= 0:
            self.completion.completion_tokens = completion

    def add_filters(self, key: str, value: Any) -> None:
        if value:
            self._filters[key] = value

    def finish(self) -> Completion:
        c = self.completion
        c.text = "".join(self._parts)
        c.content_filter = dict(self._filters) if self._filters else None
        if not c.streamed:
            # A non-streamed answer has no chunks: its text arrives with the whole response.
            c.first_token_at = None
        return c

    def partial(self) -> Completion:
        return self.finish()


def require_finish(acc: Accumulator, deployment: str, headers: Mapping[str, str]) -> Completion:
    completion = acc.finish()
    if completion.finish_reason is None:
        raise IncompleteStreamError(
            f"the response from {deployment!r} ended without finish_reason "
            f"after {len(completion.text)} characters",
            headers=headers,
            partial=completion,
        )
    return completion


# -- server-sent events ------------------------------------------------------------------------


class SSEDecoder:
    """Incremental text/event-stream decoder (WHATWG rules).

    Unlike azure-ai-inference's parser it accepts comment lines (`: keep-alive`), CRLF / CR line
    ends, multi-line `data:` and `event:` fields, and events split across reads anywhere.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._event = ""
        self._pending_cr = False

    def feed(self, chunk: bytes) -> Iterator[tuple[str, str]]:
        """Yields (event, data) for each complete event in the bytes so far."""
        buf = self._buffer + chunk
        if self._pending_cr and buf.startswith(b"\n"):
            buf = buf[1:]  # the LF of a CRLF split across two reads
        self._pending_cr = False
        start = 0
        n = len(buf)
        while start < n:
            cr = buf.find(b"\r", start)
            lf = buf.find(b"\n", start)
            if cr == -1 and lf == -1:
                break
            if cr == -1 or (lf != -1 and lf < cr):
                end, nxt = lf, lf + 1
            elif cr + 1 < n:
                end = cr
                nxt = cr + 2 if buf[cr + 1 : cr + 2] == b"\n" else cr + 1
            else:
                end, nxt = cr, cr + 1
                self._pending_cr = True
            event = self._line(buf[start:end])
            if event is not None:
                yield event
            start = nxt
        self._buffer = buf[start:]

    def close(self) -> Iterator[tuple[str, str]]:
        """End of body: a last event without its blank line is still delivered."""
        if self._buffer:
            event = self._line(self._buffer)
            self._buffer = b""
            if event is not None:
                yield event
        if self._data:
            yield self._dispatch()

    def _line(self, raw: bytes) -> tuple[str, str] | None:
        if not raw:
            return self._dispatch() if self._data else None
        line = raw.decode("utf-8", "replace")
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None

    def _dispatch(self) -> tuple[str, str]:
        event = (self._event or "message", "\n".join(self._data))
        self._data = []
        self._event = ""
        return event


# -- when the request was written --------------------------------------------------------------

_SEND_CLOCK: ContextVar[SendClock | None] = ContextVar("compare_send_clock", default=None)


class SendClock:
    """`sent_at` of one call: when the transport wrote the request to the socket.

    A time taken just before the SDK call also counts the SDK's own pre-send work and, with many
    requests in flight, the wait for the event loop until the write (bench/RESULTS.md: 22 ms p50
    at 64 in flight) as service time. The transports' trace hooks call `request_written` in the
    calling task (or a task it created, which copies its context), so a ContextVar carries the
    time back. The first write counts (a server may start answering once the headers are in; a
    redirect's second request is part of the call). Without any write (a connection error
    first) `at` stays the time taken on entry.
    """

    __slots__ = ("_token", "at", "written")

    def __enter__(self) -> SendClock:
        self.at = time.perf_counter()
        self.written = False
        self._token: Token[SendClock | None] = _SEND_CLOCK.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _SEND_CLOCK.reset(self._token)


def request_written() -> None:
    """For the transports' trace hooks: the current call's request is on the wire now."""
    clock = _SEND_CLOCK.get()
    if clock is not None and not clock.written:
        clock.at = time.perf_counter()
        clock.written = True


# -- reading an OpenAI-shaped event stream -----------------------------------------------------

# After `[DONE]` the body should end at once; a server that keeps it open gets this long before
# we give up on reusing the connection.
DRAIN_TIMEOUT_S: Final = 2.0


async def consume_sse(
    chunks: AsyncIterator[bytes],
    acc: Accumulator,
    model: str,
    headers: dict[str, str],
    *,
    lost: tuple[type[BaseException], ...],
) -> None:
    """Reads an SSE body to its end with `SSEDecoder` + json.loads, folding chunks into `acc`
    (no SDK model per chunk). `lost`: the transport's errors that, while draining after
    `[DONE]`, only lose the connection (the answer is complete)."""
    decoder = SSEDecoder()
    done = False
    async for data in chunks:
        now = time.perf_counter()
        for event, payload in decoder.feed(data):
            done = handle_event(event, payload, acc, model, headers, now) or done
        if done:
            break
    if done:
        await _drain(chunks, lost)
        return
    for event, payload in decoder.close():
        handle_event(event, payload, acc, model, headers, time.perf_counter())


async def _drain(chunks: AsyncIterator[bytes], lost: tuple[type[BaseException], ...]) -> None:
    """Reads what follows `[DONE]` (normally only the end of the chunked body) so the
    connection is released to the pool rather than closed."""
    try:
        async with asyncio.timeout(DRAIN_TIMEOUT_S):
            async for _ in chunks:
                pass
    except (TimeoutError, *lost):
        # The answer is complete; only the connection is lost (closed by the caller).
        pass


def handle_event(
    event: str, payload: str, acc: Accumulator, model: str, headers: dict[str, str], now: float
) -> bool:
    """Folds one event in; True at `[DONE]`. Error events raise with the partial text."""
    if payload.strip() == "[DONE]":
        return True
    if not payload.strip():
        return False
    try:
        chunk = json.loads(payload)
    except ValueError:
        raise IncompleteStreamError(
            f"unreadable stream event from {model!r}: {payload[:80]!r}",
            headers=headers,
            partial=acc.partial(),
        ) from None
    if event == "error" or (isinstance(chunk, dict) and chunk.get("error")):
        err = chunk.get("error", chunk) if isinstance(chunk, dict) else {}
        code = err.get("code") if isinstance(err, dict) else None
        message = err.get("message") if isinstance(err, dict) else None
        raise IncompleteStreamError(
            f"error event mid-stream from {model!r}: {code or ''} {message or ''}".rstrip(),
            code=str(code) if code is not None else None,
            headers=headers,
            partial=acc.partial(),
        )
    if isinstance(chunk, dict):
        try:
            acc.add_chunk(chunk, now)
        except ResponseShapeError as e:
            raise unexpected_response(e, model, headers, partial=acc.partial()) from e
    return False
