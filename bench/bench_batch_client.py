"""Batch client: one 100,000-line batch deployment run through `compare.arun` against the local
endpoint's batch emulation (simulated backend), measured on the client side.

    .venv/bin/python bench/bench_batch_client.py [--lines 100000] [--smoke]

The run happens in a fresh child process (pinned to core 1; the local endpoint to core 0) so its
peak RSS (VmHWM) is the run's alone. The client writes the input JSONL line by line to disk,
uploads it streamed from there, downloads the output to disk and parses it line by line into
records (checkpointed to OUT/records.jsonl as they come). The phases come from the run's own
manifest (`batches.<deployment>.parts[]`). Goal: client peak RSS ≤ 600 MB.
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
    header,
    pinned_endpoint,
    results_path,
    table,
    write_section,
)

GOAL_RSS_MB = 600
KEY_ENV = "COMPARE_BENCH_KEY"
DEPLOYMENT = "bench-batch"
CONFIG = {"region": "local", "deployments": {DEPLOYMENT: {
    "backend": "simulated", "deployment_type": "global-batch",
    "simulated": {"seed": 1, "output_tokens": {"dist": "uniform", "min": 4, "max": 12},
                  "ttft_ms": 0, "itl_ms": 0},
    "batch": {"concurrency": 512, "enqueued_tokens": 100_000_000}}}}


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _prompts(n: int) -> list[dict[str, str]]:
    # Varied lengths, like a real prompt set (about 60-250 characters).
    base = "Summarise the following note in one sentence, keeping every number: "
    return [{"id": f"item-{i:06d}", "prompt": base + f"item {i} " + "lorem ipsum " * (i % 12)}
            for i in range(n)]


def child_run(url: str, n: int, out: str) -> dict[str, Any]:
    from compare import arun
    from compare.deployments import Deployment

    dep = Deployment(name=DEPLOYMENT, kind="azure-openai-batch", endpoint=url,
                     api_key_env=KEY_ENV, batch_poll_s=0.5, max_tokens=16)
    prompts = _prompts(n)
    rss_before = _peak_rss_mb()
    t0 = time.perf_counter()
    res = asyncio.run(arun(prompts, [dep], out=out, progress=False))
    wall = time.perf_counter() - t0
    report = res.manifest["batches"][DEPLOYMENT]
    return {"wall": wall, "records": len(res), "ok": int((res.frame["status"] == "ok").sum()),
            "report": report, "rss_before_mb": rss_before, "peak_rss_mb": _peak_rss_mb()}


def child_main() -> None:
    url, n, out = sys.argv[1:4]
    print(json.dumps(child_run(url, int(n), out)))


def _child(url: str, n: int, out: Path, key: str) -> dict[str, Any]:
    env = dict(os.environ, **{KEY_ENV: key})
    code = (f"import os, sys; os.sched_setaffinity(0, {{{CLIENT_CPU}}}) "
            f"if len(os.sched_getaffinity(0)) > 1 else None; "
            f"sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            "import bench_batch_client; bench_batch_client.child_main()")
    proc = subprocess.run([sys.executable, "-c", code, url, str(n), str(out)], env=env,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _rows(run: dict[str, Any], n: int) -> list[list[Any]]:
    report = run["report"]
    parts = report["parts"]
    total = {k: sum(p.get(k) or 0.0 for p in parts)
             for k in ("upload_s", "download_s", "parse_s", "turnaround_s")}
    size = sum(p["bytes"] or 0 for p in parts)
    records = run["records"]
    ok_rss = run["peak_rss_mb"] <= GOAL_RSS_MB
    return [
        ["lines", f"{n:,}", f"{len(parts)} batch(es), {size / 1e6:.1f} MB of input JSONL"],
        ["records", f"{records:,}", f"{run['ok']:,} ok"],
        ["build JSONL (streamed to disk)", f"{report['build_s']:.2f} s",
         f"{n / max(report['build_s'], 1e-9):,.0f} lines/s"],
        ["upload (streamed from disk)", f"{total['upload_s']:.2f} s",
         f"{size / 1e6 / max(total['upload_s'], 1e-9):.0f} MB/s"],
        ["service: created → completed", f"{total['turnaround_s']:.0f} s",
         "the emulation's own work (whole seconds)"],
        ["download output + error files", f"{total['download_s']:.2f} s", ""],
        ["parse lines → records → checkpoint", f"{total['parse_s']:.2f} s",
         f"{records / max(total['parse_s'], 1e-9):,.0f} records/s"],
        ["wall of the run", f"{run['wall']:.1f} s", "incl. polling every 0.5 s"],
        ["client peak RSS (VmHWM)", f"{run['peak_rss_mb']:.0f} MB",
         f"goal ≤ {GOAL_RSS_MB} MB → {'met' if ok_rss else 'NOT met'}; "
         f"{run['rss_before_mb']:.0f} MB after imports and the prompt set"],
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    common_args(parser)
    args = parser.parse_args(argv)
    n = 500 if args.smoke else args.lines
    head = header("9. Batch client (100,000-line batch)", args.smoke)
    with tempfile.TemporaryDirectory(prefix="compare-bench-batch-") as tmp, \
            pinned_endpoint(CONFIG) as ep:
        run = _child(ep.url, n, Path(tmp) / "run", ep.api_key)
    text = table(["measure", "value", "notes"], _rows(run, n))
    notes = ("One azure-openai-batch deployment on the local endpoint (simulated, 4-12 tokens, "
             "no delays, 512 requests at a time). The run in a fresh process (client on core "
             "1, server on core 0); phases from the run's manifest.\n")
    body = f"{head}\n{notes}\n{text}\n"
    print(body)
    goal = {"goal": f"a {n:,}-line batch: client peak RSS ≤ {GOAL_RSS_MB} MB",
            "result": f"{run['peak_rss_mb']:.0f} MB", "met": run["peak_rss_mb"] <= GOAL_RSS_MB}
    write_section("batch-client", body, results_path(args), None if args.smoke else [goal])
    return 0


if __name__ == "__main__":
    sys.exit(main())
