"""Where the client's CPU goes: one adapter loop (or the bare SDK loop) under cProfile.

    .venv/bin/python bench/profile_adapter.py --kind azure-inference [--stream] [--inflight 1]
        [--requests 2000] [--way adapter|bare|runner] [--top 30] [--ttft-ms 0 --itl-ms 0]

Runs `bench_overhead.py`'s loop of that way against the bench server (`truth_server.py`, pinned
to core 0; this process on core 1) under cProfile with a process-time clock (CPU only: time the
loop waits for the server is not counted), after a warm-up, and prints the top functions by own
time and by cumulative time. Used to find what the adapters spend beyond the bare SDKs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import time

from _common import pin_self, truth_server
from bench_overhead import WAYS, _prompts

from compare import Deployment


async def _loop(url: str, kind: str, way: str, stream: bool, inflight: int, n: int,
                profiler: cProfile.Profile) -> float:
    endpoint = f"{url}/openai/v1" if kind == "openai" else url
    dep = Deployment(name="zero", endpoint=endpoint, kind=kind, api_key="bench-key")
    prompts = _prompts(n)
    await WAYS[way](dep, prompts[:50], stream, inflight)  # warm-up: imports, code paths
    start = time.process_time()
    profiler.enable()
    await WAYS[way](dep, prompts, stream, inflight)
    profiler.disable()
    return (time.process_time() - start) * 1000 / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default="azure-inference")
    parser.add_argument("--way", default="adapter", choices=sorted(WAYS))
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--inflight", type=int, default=1)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--ttft-ms", type=float, default=0.0)
    parser.add_argument("--itl-ms", type=float, default=0.0)
    parser.add_argument("--tokens", type=int, default=16)
    args = parser.parse_args(argv)
    pin_self()
    profiler = cProfile.Profile(time.process_time)
    with truth_server(ttft_ms=args.ttft_ms, itl_ms=args.itl_ms, tokens=args.tokens) as server:
        ms = asyncio.run(_loop(server.url, args.kind, args.way, args.stream, args.inflight,
                               args.requests, profiler))
    print(f"{args.way} {args.kind} stream={args.stream} in flight {args.inflight}: "
          f"{ms:.3f} ms CPU/request (profiled, so slower than unprofiled)")
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(args.top)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
