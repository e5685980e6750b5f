"""Measurement accuracy: measured − configured TTFT and latency at 1 to 256 requests in flight.

    .venv/bin/python bench/bench_accuracy.py [--levels 1,16,64,128,256] [--smoke]

A simulated deployment answers every request with a fixed TTFT of 50 ms and 32 more tokens 10 ms
apart (latency 370 ms), counted from when the server received the request. Whatever a harness
reports above that is its own error (client queueing, event-loop lag, connection set-up) plus
the server's lateness on its one core. Rows:

- runner:  `compare.arun(..., concurrency=c)`, ttft_s / latency_s of its records, per adapter
- aiohttp: raw aiohttp, timed from just before each POST (a floor: what the server itself adds)
- naive:   the azure-ai-inference SDK, c tasks created at once with asyncio.gather, each timed
           from the moment the batch was created (the usual quick benchmark script)

Goal: |error| p99 ≤ 2 ms at 64 in flight for the runner.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import aiohttp
from _common import (
    Clock,
    common_args,
    endpoint_config,
    header,
    pct,
    pin_self,
    pinned_endpoint,
    results_path,
    sim_deployment,
    table,
    write_section,
)

from compare import arun
from compare.deployments import DEFAULT_API_VERSION, Deployment

DEPLOYMENT = "timed"
TTFT_MS = 50.0
ITL_MS = 10.0
TOKENS = 33  # the first + 32 more
LATENCY_MS = TTFT_MS + (TOKENS - 1) * ITL_MS
GOAL_MS = 2.0
GOAL_LEVEL = 64
KINDS = ("azure-inference", "azure-openai")

Samples = tuple[list[float], list[float]]  # (ttft errors ms, latency errors ms)
Row = tuple[str, int, Samples, float]  # harness, in flight, samples, client CPU busy fraction


def _prompts(n: int) -> list[str]:
    return [f"Timing probe {i}" for i in range(n)]


def _errors(ttft_s: list[float], latency_s: list[float]) -> Samples:
    return ([t * 1000 - TTFT_MS for t in ttft_s], [t * 1000 - LATENCY_MS for t in latency_s])


async def runner_samples(dep: Deployment, n: int, inflight: int) -> Samples:
    res = await arun(_prompts(n), [dep], concurrency=inflight, progress=False)
    f = res.frame
    ok = f[f["status"] == "ok"]
    if len(ok) != n:
        raise RuntimeError(f"runner: {len(ok)} of {n} ok: {f['error_message'].dropna()[:3]}")
    return _errors(ok["ttft_s"].tolist(), ok["latency_s"].tolist())


async def aiohttp_samples(dep: Deployment, n: int, inflight: int) -> Samples:
    url = f"{dep.endpoint}/chat/completions?api-version={DEFAULT_API_VERSION['azure-inference']}"
    headers = {"api-key": dep.resolve_api_key()}
    sem = asyncio.Semaphore(inflight)
    perf = time.perf_counter
    ttfts: list[float] = []
    lats: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def one(i: int) -> None:
            body = {"model": dep.name, "stream": True,
                    "messages": [{"role": "user", "content": f"Timing probe {i}"}]}
            async with sem:
                sent, first = perf(), None
                async with session.post(url, json=body, headers=headers) as resp:
                    async for line in resp.content:
                        if line.startswith(b"data: {"):
                            chunk = json.loads(line[6:])
                            choices = chunk.get("choices")
                            if choices and choices[0]["delta"].get("content"):
                                now = perf()
                                first = first or now
                                last = now
                ttfts.append(first - sent)
                lats.append(last - sent)

        await asyncio.gather(*(one(i) for i in range(n)))
    return _errors(ttfts, lats)


async def naive_samples(dep: Deployment, n: int, inflight: int) -> Samples:
    from azure.ai.inference.aio import ChatCompletionsClient
    from azure.core.credentials import AzureKeyCredential

    perf = time.perf_counter
    ttfts: list[float] = []
    lats: list[float] = []
    async with ChatCompletionsClient(dep.endpoint, AzureKeyCredential(dep.resolve_api_key()),
                                     retry_total=0) as client:
        async def one(i: int, start: float) -> None:
            response = await client.complete(
                messages=[{"role": "user", "content": f"Timing probe {i}"}], model=dep.name,
                stream=True)
            first = last = None
            async for update in response:
                if update.choices and update.choices[0].delta.content:
                    last = perf()
                    first = first or last
            assert first is not None and last is not None
            ttfts.append(first - start)
            lats.append(last - start)

        for batch in range(0, n, inflight):
            start = perf()  # the whole batch is created now and timed from here
            await asyncio.gather(*(one(i, start) for i in range(batch, min(n, batch + inflight))))
    return _errors(ttfts, lats)


async def _timed(name: str, c: int, make: Any) -> Row:
    """One row; also how busy the client's one core was (CPU seconds ÷ wall seconds)."""
    with Clock() as clock:
        samples = await make
    return name, c, samples, clock.cpu / clock.wall


async def bench(url: str, key: str, levels: list[int], per_level: int,
                kinds: list[str]) -> list[Row]:
    deps = {k: Deployment(name=DEPLOYMENT, endpoint=url, kind=k, api_key=key) for k in kinds}
    base = deps[kinds[0]]
    # Warm-up (imports, code paths); not reported.
    for k in kinds:
        await runner_samples(deps[k], 4, 4)
    await aiohttp_samples(base, 4, 4)
    await naive_samples(base, 4, 4)
    out = []
    for c in levels:
        n = max(per_level, 4 * c)
        for k in kinds:
            out.append(await _timed(f"runner ({k})", c, runner_samples(deps[k], n, c)))
        out.append(await _timed("raw aiohttp, timed from send", c, aiohttp_samples(base, n, c)))
        out.append(await _timed("naive: gather, timed from creation", c,
                                naive_samples(base, n, c)))
        print(f"{c} in flight done", file=sys.stderr, flush=True)
    return out


def report(rows: list[Row]) -> tuple[str, bool]:
    lines = []
    ok = True
    for name, c, (te, le), busy in rows:
        abs_p99 = max(pct([abs(x) for x in te], 99), pct([abs(x) for x in le], 99))
        if name.startswith("runner") and c == GOAL_LEVEL:
            ok &= abs_p99 <= GOAL_MS
        lines.append([name, c, len(te), pct(te, 50), pct(te, 99), pct(le, 50), pct(le, 99),
                      abs_p99, round(100 * busy)])
    headers = ["harness", "in flight", "n", "TTFT err p50 ms", "TTFT err p99 ms",
               "latency err p50 ms", "latency err p99 ms", "|err| p99 ms (worse of two)",
               "client CPU busy %"]
    return table(headers, lines), ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,4,16,32,64,128,256")
    parser.add_argument("--per-level", type=int, default=64,
                        help="requests per level (at least 4 × in flight)")
    parser.add_argument("--kinds", default=",".join(KINDS))
    common_args(parser)
    args = parser.parse_args(argv)
    levels = [2] if args.smoke else [int(x) for x in args.levels.split(",")]
    per_level = 4 if args.smoke else args.per_level
    kinds = args.kinds.split(",")
    head = header("2. Measurement accuracy", args.smoke)
    pinned = pin_self()
    config = endpoint_config(sim_deployment(DEPLOYMENT, ttft_ms=TTFT_MS, itl_ms=ITL_MS,
                                            tokens=TOKENS))
    with pinned_endpoint(config) as ep:
        rows = asyncio.run(bench(ep.url, ep.api_key, levels, per_level, kinds))
    text, ok = report(rows)
    notes = (
        f"Configured: TTFT {TTFT_MS:.0f} ms, then {TOKENS - 1} tokens {ITL_MS:.0f} ms apart "
        f"(latency {LATENCY_MS:.0f} ms), streamed; error = measured − configured, in ms. "
        f"n = max({per_level}, 4 × in flight) requests per row. "
        f"{'Client pinned to core 1, server to core 0.' if pinned else 'Not pinned.'} "
        f"Goal: runner |error| p99 ≤ {GOAL_MS:.0f} ms at {GOAL_LEVEL} in flight → "
        f"**{'met' if ok else 'NOT met'}**.\n"
    )
    body = f"{head}\n{notes}\n{text}\n"
    print(body)
    write_section("accuracy", body, results_path(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
