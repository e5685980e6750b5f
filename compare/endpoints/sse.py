"""Server-sent events: an incremental decoder and the reader of OpenAI-shaped event streams.

Every adapter reads streams here with json.loads per event (no SDK model per chunk: the SDKs'
pydantic/model parsing was about half of the client's CPU for streams, bench/RESULTS.md).
Unlike azure-ai-inference's own parser this accepts comment lines (`: keep-alive`), CRLF, and an
error event mid-stream is an IncompleteStreamError carrying the partial text.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Final

from compare.endpoints.completion import Accumulator, ResponseShapeError, unexpected_response
from compare.errors import IncompleteStreamError


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
        # Streams that end together (the same schedule, one burst of reads) are stamped in the
        # order their reads are resumed. Whatever this task does next without suspending (drain
        # a body already read, make the record, write the checkpoint, send the next request)
        # would delay the other streams' end stamps by that much each: let them stamp first.
        await asyncio.sleep(0)
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
            partial=acc.finish(),
        ) from None
    if event == "error" or (isinstance(chunk, dict) and chunk.get("error")):
        err = chunk.get("error", chunk) if isinstance(chunk, dict) else {}
        code = err.get("code") if isinstance(err, dict) else None
        message = err.get("message") if isinstance(err, dict) else None
        raise IncompleteStreamError(
            f"error event mid-stream from {model!r}: {code or ''} {message or ''}".rstrip(),
            code=str(code) if code is not None else None,
            headers=headers,
            partial=acc.finish(),
        )
    if isinstance(chunk, dict):
        try:
            acc.add_chunk(chunk, now)
        except ResponseShapeError as e:
            raise unexpected_response(e, model, headers, partial=acc.finish()) from e
    return False
