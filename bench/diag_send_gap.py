"""Diagnosis for the accuracy benchmark: how late is the request written after `sent_at`?

    .venv/bin/python bench/diag_send_gap.py [--levels 1,16,64]

This script adds an aiohttp `on_request_headers_sent` trace to the azure-inference adapter's own
session and reports, per request, the gap between the adapter's `sent_at` and the moment aiohttp
wrote the request headers, and the TTFT error (measured − configured 50 ms) counted from either.

When `sent_at` was taken just before the SDK call, the gap was 1 ms p50 at 1 in flight (the SDK's
pre-send work) and 22 ms p50 at 64 (other coroutines running before the write), all of it counted
as service time; this found it (see RESULTS.md). Since the adapters take `sent_at` from the
transport's write (compare.endpoints._common.SendClock), the gap should stay near zero: a
regression check for that.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import sys
import time
from typing import Any

import aiohttp
from _common import endpoint_config, pct, pin_self, pinned_endpoint, sim_deployment, table

import compare.endpoints.azure_inference as azure_inference
from compare.deployments import Deployment
from compare.endpoints import ChatRequest, EndpointPool

TTFT_MS = 50.0
_written: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("written",
                                                                             default=None)


class _WriteTrace(aiohttp.TraceConfig):
    """The adapter builds its session's TraceConfig from this module attribute."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_request_headers_sent.append(self._sent)

    @staticmethod
    async def _sent(*_: Any) -> None:
        holder = _written.get()  # the trace runs in the requesting task's context
        if holder is not None:
            holder.append(time.perf_counter())


async def measure(dep: Deployment, inflight: int, n: int) -> list[Any]:
    async with EndpointPool() as pool:
        endpoint = pool.get(dep)
        sem = asyncio.Semaphore(inflight)
        gaps: list[float] = []
        from_sent: list[float] = []
        from_wire: list[float] = []

        async def one(i: int) -> None:
            async with sem:
                holder: list[float] = []
                _written.set(holder)
                comp = await endpoint.chat(
                    ChatRequest(dep.name, [{"role": "user", "content": f"probe {i}"}]))
                assert comp.first_token_at is not None and holder
                gaps.append((holder[0] - comp.sent_at) * 1000)
                from_sent.append((comp.first_token_at - comp.sent_at) * 1000 - TTFT_MS)
                from_wire.append((comp.first_token_at - holder[0]) * 1000 - TTFT_MS)

        await asyncio.gather(*(one(i) for i in range(inflight)))  # connections warm
        for xs in (gaps, from_sent, from_wire):
            xs.clear()
        await asyncio.gather(*(one(i) for i in range(n)))
    return [inflight, n, pct(gaps, 50), pct(gaps, 99), pct(from_sent, 50), pct(from_sent, 99),
            pct(from_wire, 50), pct(from_wire, 99)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,16,64")
    args = parser.parse_args(argv)
    azure_inference.aiohttp.TraceConfig = _WriteTrace  # type: ignore[misc]
    pin_self()
    config = endpoint_config(sim_deployment("timed", ttft_ms=TTFT_MS, itl_ms=10, tokens=33))
    rows = []
    with pinned_endpoint(config) as ep:
        dep = Deployment(name="timed", endpoint=ep.url, api_key=ep.api_key)
        for c in (int(x) for x in args.levels.split(",")):
            rows.append(asyncio.run(measure(dep, c, max(64, 4 * c))))
    print(table(["in flight", "n", "sent_at → written p50 ms", "p99", "TTFT err from sent_at "
                 "p50", "p99", "TTFT err from write p50", "p99"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
