"""`Completion.sent_at` is when the transport wrote the request, not when the adapter was called.

With many requests in flight, other tasks' work runs between an adapter's call and its socket
write; counting that as TTFT made the runner's TTFT error grow with concurrency
(bench/RESULTS.md, goal 2). Here the event loop is blocked on purpose right after the call (a
`call_soon` callback runs at the adapter's first yield; on a new connection that is the connect,
before the write), over real HTTP through the real SDKs: `sent_at` must land after the block and
TTFT stay the configured one.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from compare.deployments import Deployment
from compare.endpoints import EndpointPool
from compare.endpoints.base import ChatRequest
from compare.endpoints.send_clock import SendClock, request_written
from compare.server.local import LocalEndpoint

from .conftest import KINDS, TIMED, base_url

pytestmark = pytest.mark.timeout(60)

HELLO = [{"role": "user", "content": "Say hello"}]
BLOCK_S = 0.06


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "nostream"])
@pytest.mark.parametrize("kind", KINDS)
async def test_sent_at_is_the_write_not_the_call(
    fault_endpoint: LocalEndpoint, kind: str, stream: bool
) -> None:
    dep = Deployment(
        name="timed",
        endpoint=base_url(fault_endpoint, kind),
        kind=kind,
        api_key=fault_endpoint.api_key,
    )
    ttft_s = TIMED["ttft_ms"] / 1000
    total_s = ttft_s + (TIMED["tokens"] - 1) * TIMED["itl_ms"] / 1000
    async with EndpointPool() as pool:
        await pool.get(dep).chat(ChatRequest("timed", HELLO))  # warm: SDK imports, first use
    async with EndpointPool() as pool:
        endpoint = pool.get(dep)  # its first call opens a connection: a yield before the write
        before = time.perf_counter()
        asyncio.get_running_loop().call_soon(time.sleep, BLOCK_S)  # another task's CPU work
        c = await endpoint.chat(ChatRequest("timed", HELLO, stream=stream))
    assert c.sent_at - before >= BLOCK_S, c.sent_at - before
    if stream:
        assert c.first_token_at is not None
        assert ttft_s <= c.first_token_at - c.sent_at <= ttft_s + 0.015
    assert total_s <= c.ended_at - c.sent_at <= total_s + 0.02


async def test_send_clock_without_a_write_keeps_the_call_time() -> None:
    """No write (refused connection): the time taken on entry stands; later writes of other
    calls do not reach a finished clock."""
    with SendClock() as clock:
        entered = clock.at
        await asyncio.sleep(0.01)
    request_written()  # outside any call: ignored
    assert clock.at == entered and not clock.written
    with SendClock() as clock:
        await asyncio.sleep(0.01)
        request_written()
        first = clock.at
        request_written()  # a second write (a redirect) does not move it
    assert first > entered and clock.at == first and clock.written


async def _write_from_child_task() -> None:
    request_written()


async def test_send_clock_sees_writes_from_tasks_the_call_started() -> None:
    """aiohttp on Python < 3.12 writes the body from a task of its own (a copy of the context)."""
    with SendClock() as clock:
        entered = clock.at
        await asyncio.sleep(0.005)
        await asyncio.create_task(_write_from_child_task())
    assert clock.written and clock.at > entered
