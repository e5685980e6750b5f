"""The aiohttp session every adapter sends through (azure-core's and the openai SDK's
transports both run on it), with the trace hooks the measurements need.

- `on_request_chunk_sent` takes `sent_at` (`send_clock`): not `on_request_headers_sent`, since
  aiohttp only buffers the headers then and writes them with the first body chunk (on Python
  < 3.12 from a task of its own, which can run much later with many requests in flight).
- `on_connection_create_end` counts the TCP connections opened (keep-alive reuse keeps it low).
- No connection cap: the runner's concurrency limit is the only one, so no request waits for a
  connection after its send time was taken.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from compare.endpoints.send_clock import on_request_written


def traced_session(on_connection: Callable[..., Awaitable[Any]]) -> aiohttp.ClientSession:
    """A session whose writes stamp `sent_at` and whose new connections call `on_connection`.
    Both SDKs decode content-encoding themselves; proxies come from the environment."""
    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(on_connection)
    trace.on_request_chunk_sent.append(on_request_written)
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, limit_per_host=0),
        trace_configs=[trace],
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        trust_env=True,
    )
