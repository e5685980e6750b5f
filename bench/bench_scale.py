"""Scale: 10,000 prompts × 10 simulated deployments = 100,000 records in one run.

    .venv/bin/python bench/bench_scale.py [--prompts 10000] [--deployments 10] [--smoke]

The run happens in a fresh child process (pinned to core 1; the local endpoint to core 0) so its
peak RSS (VmHWM) is the run's alone: `compare.arun(..., out=DIR)` checkpoints every record to
DIR/records.jsonl as it completes and writes results.parquet at the end. Then a second fresh
process times `Results.load(DIR).summary()` (imports timed apart). Reported: wall, records/s,
peak RSS (goal ≤ 600 MB), size on disk, load + summarise time (goal ≤ 2 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    CLIENT_CPU,
    common_args,
    endpoint_config,
    header,
    pinned_endpoint,
    results_path,
    sim_deployment,
    table,
    write_section,
)

GOAL_RSS_MB = 600
GOAL_LOAD_S = 2.0
KEY_ENV = "COMPARE_BENCH_KEY"


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _prompts(n: int) -> list[str]:
    # Varied lengths, like a real prompt set (about 60-250 characters).
    base = "Summarise the following note in one sentence, keeping every number: "
    return [base + f"item {i} " + "lorem ipsum dolor " * (i % 10) for i in range(n)]


def child_run(url: str, names: list[str], n: int, out: str, concurrency: int,
              stream: bool) -> dict[str, Any]:
    from compare import arun
    from compare.deployments import Deployment

    key = os.environ[KEY_ENV]
    deps = [Deployment(name=name, endpoint=url, api_key=key) for name in names]
    prompts = _prompts(n)
    rss_before = _peak_rss_mb()
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    res = asyncio.run(arun(prompts, deps, out=out, concurrency=concurrency, stream=stream,
                           progress=False))
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    status = res.frame["status"].value_counts().to_dict()
    return {"wall": wall, "cpu": cpu, "records": len(res), "status": status,
            "rss_before_mb": rss_before, "peak_rss_mb": _peak_rss_mb()}


def child_load(out: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    from compare.results import Results

    t1 = time.perf_counter()
    res = Results.load(out)
    t2 = time.perf_counter()
    summary = res.summary()
    t3 = time.perf_counter()
    return {"import_s": t1 - t0, "load_s": t2 - t1, "summary_s": t3 - t2, "rows": len(res),
            "summary_rows": len(summary), "peak_rss_mb": _peak_rss_mb()}


def _child(args: list[str], key: str) -> dict[str, Any]:
    env = dict(os.environ, **{KEY_ENV: key})
    code = (f"import os, sys; os.sched_setaffinity(0, {{{CLIENT_CPU}}}) "
            f"if len(os.sched_getaffinity(0)) > 1 else None; "
            f"sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            "import bench_scale; bench_scale.child_main()")
    cmd = [sys.executable, "-c", code, *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child_main() -> None:
    what, *rest = sys.argv[1:]
    if what == "run":
        url, names, n, out, conc, stream = rest
        result = child_run(url, names.split(","), int(n), out, int(conc), stream == "1")
    else:
        result = child_load(rest[0])
    print(json.dumps(result))


def _size_mb(directory: Path) -> dict[str, float]:
    return {p.name: p.stat().st_size / 1e6 for p in sorted(directory.iterdir()) if p.is_file()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=10_000)
    parser.add_argument("--deployments", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--no-stream", action="store_true")
    common_args(parser)
    args = parser.parse_args(argv)
    n, k = (20, 3) if args.smoke else (args.prompts, args.deployments)
    stream = not args.no_stream
    head = header("4. Scale", args.smoke)
    names = [f"sim-{i:02d}" for i in range(k)]
    config = endpoint_config(*(sim_deployment(name, ttft_ms=5, itl_ms=1, tokens=8 + i, seed=i)
                               for i, name in enumerate(names)))
    with tempfile.TemporaryDirectory(prefix="compare-bench-scale-") as tmp:
        out = Path(tmp) / "run"
        with pinned_endpoint(config) as ep:
            run = _child(["run", ep.url, ",".join(names), str(n), str(out),
                          str(args.concurrency), "1" if stream else "0"], ep.api_key)
        sizes = _size_mb(out)
        load = _child(["load", str(out)], "")
    records = run["records"]
    ok_rss = run["peak_rss_mb"] <= GOAL_RSS_MB
    load_total = load["load_s"] + load["summary_s"]
    ok_load = load_total <= GOAL_LOAD_S
    rows = [
        ["records", f"{records:,}", f"{n:,} prompts × {k} deployments"],
        ["status counts", ", ".join(f"{s} {c:,}" for s, c in run["status"].items()), ""],
        ["wall", f"{run['wall']:.1f} s", f"concurrency {args.concurrency}, "
         f"{'streamed' if stream else 'not streamed'}"],
        ["records/s", f"{records / run['wall']:,.0f}",
         f"client CPU {run['cpu'] * 1000 / records:.2f} ms/record"],
        ["peak RSS of the run (VmHWM)", f"{run['peak_rss_mb']:.0f} MB",
         f"goal ≤ {GOAL_RSS_MB} MB → {'met' if ok_rss else 'NOT met'}; "
         f"{run['rss_before_mb']:.0f} MB after imports"],
        ["size on disk", f"{sum(sizes.values()):.1f} MB",
         ", ".join(f"{name} {mb:.1f} MB" for name, mb in sizes.items())],
        ["load + summarise", f"{load_total:.2f} s",
         f"load {load['load_s']:.2f} s + summary {load['summary_s']:.2f} s (imports "
         f"{load['import_s']:.2f} s apart); goal ≤ {GOAL_LOAD_S:.0f} s → "
         f"{'met' if ok_load else 'NOT met'}"],
        ["peak RSS of load + summarise", f"{load['peak_rss_mb']:.0f} MB", ""],
    ]
    text = table(["measure", "value", "notes"], rows)
    notes = ("Simulated deployments: TTFT 5 ms, 1 ms between tokens, 8-17 tokens each. The run "
             "and the load each in a fresh process (client on core 1, server on core 0).\n")
    body = f"{head}\n{notes}\n{text}\n"
    print(body)
    goals = [{"goal": f"{records:,} records: peak RSS ≤ {GOAL_RSS_MB} MB",
              "result": f"{run['peak_rss_mb']:.0f} MB", "met": ok_rss},
             {"goal": f"{records:,} records: load + summarise ≤ {GOAL_LOAD_S:.0f} s",
              "result": f"{load_total:.2f} s", "met": ok_load}]
    write_section("scale", body, results_path(args), goals=goals)
    return 0


if __name__ == "__main__":
    sys.exit(main())
