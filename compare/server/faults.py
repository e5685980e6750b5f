"""Fault injection for simulated deployments: which rule strikes a request, and how each fault
looks on the wire (a status, a TCP reset, a hang, a broken stream, an oversized answer).

aiohttp (not an ASGI server) because these faults need the transport: an RST before or during a
response, a body cut mid-way. ASGI hides the transport.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from compare.server.azure_errors import STATUS_CODES, WireError
from compare.server.deployment_spec import STATUS_FAULTS, FaultRule
from compare.server.limits import throttled

MID_STREAM_FAULTS = ("reset_mid_stream", "hang_mid_stream", "error_event_mid_stream")


class FaultInjector:
    """Decides which configured fault (if any) a request of a simulated deployment gets."""

    def __init__(self, rules: tuple[FaultRule, ...], seed: int) -> None:
        self.rules = rules
        self.rng = random.Random(seed * 7919 + 17)
        self.attempts: dict[tuple[int, str], int] = collections.defaultdict(int)

    def pick(self, key: str, text: str) -> FaultRule | None:
        """The first rule that strikes a request with prompt identity `key` and text `text`."""
        for i, rule in enumerate(self.rules):
            if rule.match is not None and rule.match not in text:
                continue
            if rule.first_attempts is not None:
                self.attempts[(i, key)] += 1
                if self.attempts[(i, key)] <= rule.first_attempts:
                    return rule
            elif rule.rate is not None and (rule.rate >= 1.0 or self.rng.random() < rule.rate):
                return rule
        return None

    def reset(self) -> None:
        """Forget the first-N-attempts counts."""
        self.attempts.clear()


class Aborted(Exception):
    """The connection was reset or abandoned on purpose (an injected fault)."""

    def __init__(self, response: web.StreamResponse | None = None) -> None:
        super().__init__("aborted")
        self.response = response


def reset_connection(request: web.Request,
                     response: web.StreamResponse | None = None) -> None:
    """Abort the TCP connection with an RST (SO_LINGER 0), then unwind the handler."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    raise Aborted(response)


async def strike_early(request: web.Request, deployment: str, fault: FaultRule) -> None:
    """Faults that strike before any response byte: statuses, resets, hangs."""
    name = fault.fault
    if name in STATUS_FAULTS:
        status, hints = STATUS_FAULTS[name]
        if status == 429:
            raise throttled(deployment, fault.retry_after_s, hints)
        raise WireError(status, STATUS_CODES[status],
                        f"Injected fault {name} on simulated deployment '{deployment}'.")
    if name == "reset_before_response":
        reset_connection(request)
    if name == "hang_before_headers":
        await asyncio.sleep(fault.hang_s)
        reset_connection(request)


async def strike_mid_stream(request: web.Request, resp: web.StreamResponse, fault: FaultRule,
                            send: Callable[[Any], Awaitable[None]]) -> None:
    """An error event, a hang or a reset after some chunks were sent."""
    if fault.fault == "error_event_mid_stream":
        await send({"error": {"code": "InternalServerError", "status": 500,
                              "message": "Injected fault: error event mid-stream."}})
        await resp.write_eof()
        raise Aborted(resp)
    if fault.fault == "hang_mid_stream":
        await asyncio.sleep(fault.hang_s)
    reset_connection(request, resp)


class OversizedGeneration:
    """The `oversized_output` fault: far more text than max_tokens allows, as fast as possible."""

    def __init__(self, size_chars: int, prompt_tokens: int) -> None:
        self.size = size_chars
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = 0
        self.finish_reason = "length"
        self.done = False
        self.headers: dict[str, str] = {}

    async def _run(self) -> AsyncIterator[str]:
        block = ("overflow " * 128)[:1000]
        left = self.size
        while left > 0:
            piece = block[: min(left, len(block))]
            left -= len(piece)
            self.completion_tokens += len(piece) // 4
            self.done = left <= 0
            yield piece
            await asyncio.sleep(0)

    def __aiter__(self) -> AsyncIterator[str]:
        return self._run()

    async def aclose(self) -> None:
        """Nothing to stop: the text is generated on demand."""
        return None
