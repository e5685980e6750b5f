"""`sent_at`: when the transport wrote the request to the socket, carried back by a ContextVar.

A time taken just before the SDK call also counts the SDK's own pre-send work and, with many
requests in flight, the wait for the event loop until the write (22 ms p50 at 64 in flight,
measured in bench/RESULTS.md) as service time. Every adapter's transport is aiohttp (azure-core's
and the openai SDK's aiohttp transports, on sessions of ours): its `on_request_chunk_sent` trace
hook calls `request_written` in the calling task, or in a task it created (aiohttp writes the
body from a task of its own on Python < 3.12), which copies its context.
"""

from __future__ import annotations

import time
from contextvars import ContextVar, Token

_SEND_CLOCK: ContextVar[SendClock | None] = ContextVar("compare_send_clock", default=None)


class SendClock:
    """`sent_at` of one call: the first write counts (a server may start answering once the
    headers are in; a redirect's second request is part of the call). Without any write (a
    connection error first) `at` stays the time taken on entry."""

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


async def on_request_written(*_: object) -> None:
    """`request_written` as an aiohttp trace callback (it must be a coroutine function)."""
    request_written()
