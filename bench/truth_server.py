"""The benchmarks' ground-truth server: a fixed chat answer on the three API styles' routes, and a
log of when it received each request and wrote its first and last chunk.

    python bench/truth_server.py [--port 0] [--ttft-ms 50] [--itl-ms 10] [--tokens 33]

Prints `listening on http://127.0.0.1:PORT` once it accepts connections. Routes:

- POST /chat/completions                                 (Azure AI model inference)
- POST /openai/deployments/{deployment}/chat/completions (Azure OpenAI)
- POST /openai/v1/chat/completions                       (OpenAI-compatible v1)
- GET  /_truth/log?clear=1   the log as JSON {request id: [received, first, last]}
- GET  /_truth/health

Every answer carries an `x-request-id` header (`t-<n>`) that clients keep (compare's records as
`request_id`), so a benchmark pairs each measured request with the server's own times.
Times are `time.perf_counter()`, which on Linux is CLOCK_MONOTONIC: the same clock in every
process on the machine. `received` is when the handler started (the request line and headers
parsed); `first` / `last` are taken right before the write of the first content chunk / of the
last content chunk (which carries finish_reason, the usage chunk and `[DONE]` in the same write),
so a client's TTFT and latency — send → first / last chunk — have a server-side truth of
`first − received` / `last − received`. The answer's timing is a schedule (first content chunk
`ttft_ms` after `received`, then one token every `itl_ms`); when the server runs late the log
says so, and the truth is what it logs, not the schedule.

The server is the benchmarks' own (no compare import), so a before/after comparison of compare's
code runs both sides against the same server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import sys
import time
from typing import Any

from aiohttp import web

WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")


class TruthServer:
    """The routes and the log. One instance per process."""

    def __init__(self, ttft_ms: float, itl_ms: float, tokens: int) -> None:
        self.ttft_s = ttft_ms / 1000.0
        self.itl_s = itl_ms / 1000.0
        self.tokens = max(1, tokens)
        self.log: dict[str, list[float]] = {}
        self._ids = itertools.count(1)
        self._words = [f"{WORDS[i % len(WORDS)]} " for i in range(self.tokens)]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/chat/completions", self.chat)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self.chat)
        app.router.add_post("/openai/v1/chat/completions", self.chat)
        app.router.add_get("/_truth/log", self.get_log)
        app.router.add_get("/_truth/health", self.health)
        return app

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def get_log(self, request: web.Request) -> web.Response:
        log = self.log
        if request.query.get("clear"):
            self.log = {}
        return web.json_response(log)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        received = time.perf_counter()
        request_id = f"t-{next(self._ids)}"
        times = self.log[request_id] = [received, 0.0, 0.0]
        body = json.loads(await request.read())
        model = request.match_info.get("deployment") or body.get("model") or "truth"
        headers = {"x-request-id": request_id}
        usage = {"prompt_tokens": 8, "completion_tokens": self.tokens,
                 "total_tokens": 8 + self.tokens}
        if not body.get("stream"):
            await _sleep_until(received + self.ttft_s + (self.tokens - 1) * self.itl_s)
            answer = _completion(request_id, model, "".join(self._words), usage)
            times[1] = times[2] = time.perf_counter()
            return web.json_response(answer, headers=headers)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        response = web.StreamResponse(headers={**headers, "content-type": "text/event-stream"})
        await response.prepare(request)
        for i, word in enumerate(self._words):
            await _sleep_until(received + self.ttft_s + i * self.itl_s)
            data = _event(_chunk(request_id, model, {"content": word}, None))
            if i == self.tokens - 1:
                data += _event(_chunk(request_id, model, {}, "stop"))
                if include_usage:
                    data += _event({**_chunk(request_id, model, {}, None), "choices": [],
                                    "usage": usage})
                data += b"data: [DONE]\n\n"
            now = time.perf_counter()
            if i == 0:
                times[1] = now
            times[2] = now
            await response.write(data)
        await response.write_eof()
        return response


async def _sleep_until(deadline: float) -> None:
    delay = deadline - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


def _chunk(request_id: str, model: str, delta: dict[str, Any], finish: str | None
           ) -> dict[str, Any]:
    return {"id": request_id, "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _completion(request_id: str, model: str, text: str, usage: dict[str, int]
                ) -> dict[str, Any]:
    return {"id": request_id, "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": usage}


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


async def serve(port: int, server: TruthServer) -> None:
    runner = web.AppRunner(server.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"listening on http://127.0.0.1:{bound}", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ttft-ms", type=float, default=50.0)
    parser.add_argument("--itl-ms", type=float, default=10.0)
    parser.add_argument("--tokens", type=int, default=33)
    args = parser.parse_args(argv)
    server = TruthServer(args.ttft_ms, args.itl_ms, args.tokens)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, server))
    return 0


if __name__ == "__main__":
    sys.exit(main())
