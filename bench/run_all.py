"""Run every benchmark and write bench/RESULTS.md (`make bench`).

    .venv/bin/python bench/run_all.py [--smoke] [--only overhead,accuracy,...] [--results PATH]

Each benchmark runs in its own process (its own pinning, its own peak RSS) and prints its table;
its section of RESULTS.md is replaced in place, so one can be rerun alone. `--smoke` runs each at
a tiny size (seconds) and writes nothing unless `--results` is given: the tests use it so the
scripts never rot; the numbers of a smoke run mean nothing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from _common import BENCH_DIR, RESULTS_FILE, header, write_section

BENCHES = {
    "overhead": "bench_overhead.py",
    "accuracy": "bench_accuracy.py",
    "ratelimit": "bench_ratelimit.py",
    "scale": "bench_scale.py",
    "endpoint": "bench_endpoint.py",
    "shards": "bench_shards.py",
    "batch-client": "bench_batch_client.py",
    "scoring": "bench_scoring.py",
    "stats": "bench_stats.py",
}
# bench_endpoint.py (the local endpoint's own benchmark) prints its table without writing
# RESULTS.md; these are its smoke arguments (it needs > 8 tokens to time decoding).
ENDPOINT_SMOKE_ARGS = ["--max-tokens", "16", "--rounds", "1"]


def run_one(name: str, smoke: bool, results: Path | None) -> tuple[int, str]:
    script = BENCH_DIR / BENCHES[name]
    cmd = [sys.executable, str(script)]
    if name == "endpoint":
        cmd += ENDPOINT_SMOKE_ARGS if smoke else []
    else:
        cmd += ["--smoke"] if smoke else []
        if results is not None:
            cmd += ["--results", str(results)]
    start = time.perf_counter()
    head = header("5. Local endpoint: llama decode through HTTP vs in-process", smoke) \
        if name == "endpoint" else ""
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    out = proc.stdout
    if name == "endpoint" and proc.returncode == 0 and results is not None:
        body = (f"{head}\nFrom `bench/bench_endpoint.py` (the local endpoint's benchmark): "
                "decode tokens/s = (completion_tokens − 1) / (last chunk − first chunk), the same "
                "prompts, weights and settings through the endpoint and in this process. "
                "Goal: endpoint ÷ in-process ≥ 0.9.\n\n```\n" + out.strip() + "\n```\n")
        ratios = [line.split()[0] + " " + line.split()[-1] for line in out.splitlines()
                  if line[:1].isalpha() and line.split()[-1].replace(".", "", 1).isdigit()
                  and len(line.split()) == 4]
        goals = [{"goal": "local endpoint ÷ in-process llama decode tokens/s ≥ 0.9",
                  "result": ", ".join(ratios) or "see section",
                  "met": "goals met" in out}]
        write_section("endpoint", body, results, goals=goals)
    print(out, end="" if out.endswith("\n") else "\n")
    if proc.returncode != 0:
        print(proc.stderr[-4000:], file=sys.stderr)
    print(f"[{name}: exit {proc.returncode}, {took:.1f} s]", flush=True)
    return proc.returncode, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--only", default=",".join(BENCHES))
    parser.add_argument("--results", type=Path, default=None)
    args = parser.parse_args(argv)
    results = args.results if args.results is not None else (None if args.smoke else
                                                             RESULTS_FILE)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from "
                     f"{', '.join(BENCHES)}")
    failed = [n for n in names if run_one(n, args.smoke, results)[0] != 0]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
