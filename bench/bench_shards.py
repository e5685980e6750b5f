"""Sharded runs: throughput over processes and Ray, four shards under one rate limit, and the
summary / leaderboard of ten million records from disk.

    .venv/bin/python bench/bench_shards.py [--requests 6000] [--rpm 2400] [--rows 10000000]
                                           [--no-ray] [--smoke]

1. Records/s and client CPU per request against a zero-latency simulated deployment (the client
   is the bottleneck): in-process, workers=1, workers=2, and Ray (2 shards on a one-node cluster
   this script starts with `ray start`, loopback, 80 MB object store; skipped without Ray). Each
   run is a fresh driver process; client CPU = driver + its shard processes (for Ray: + every
   process of the cluster, so Ray's own overhead is in it).
2. Four shards (processes) on one deployment limited to R requests/min (the service refuses
   beyond it over 10 s windows): send span ÷ the limit-bound ideal, and the share of 429s.
3. N synthetic records as a sharded run leaves them (parquet parts): `Results.summarize_dir`,
   `Results.leaderboard_dir(dir, "latency_s")` and, for a tenth of them, the in-memory way
   (`Results.load(columns=...)` + `leaderboard("latency_s")`), each in a fresh process: time and
   peak RSS (goal ≤ 1 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    common_args,
    endpoint_config,
    header,
    pinned_endpoint,
    results_path,
    sim_deployment,
    table,
    write_section,
)

ROOT = Path(__file__).resolve().parents[1]
KEY_ENV = "COMPARE_BENCH_KEY"
GOAL_RSS_MB = 1024
LEADERBOARD_COLUMNS = ["prompt_id", "deployment", "repeat", "status", "cached", "latency_s",
                       "cost"]


# -- children (each a fresh process) ---------------------------------------------------------


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_with_children() -> float:
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def child_run(spec: dict[str, Any]) -> dict[str, Any]:
    import asyncio

    import compare
    from compare.deployments import Deployment

    key = os.environ[KEY_ENV]
    deps = [Deployment(name=n, endpoint=spec["url"], api_key=key,
                       requests_per_minute=spec.get("rpm")) for n in spec["names"]]
    prompts = [f"item {i}: say something short" for i in range(spec["prompts"])]
    kwargs = {k: spec[k] for k in ("workers", "ray") if spec.get(k) is not None}
    # Ray ends a job's worker processes when its driver exits: their CPU is read here, while
    # this driver is still connected.
    cluster = RayCluster.attach(spec["ray_tmp"]) if spec.get("ray_tmp") else None
    cluster_cpu0 = cluster.cpu() if cluster else 0.0
    cpu0, t0 = _cpu_with_children(), time.perf_counter()
    res = asyncio.run(compare.arun(prompts, deps, out=spec["out"], progress=False,
                                   concurrency=spec["concurrency"], **kwargs))
    wall = time.perf_counter() - t0
    cluster_cpu = (cluster.cpu() - cluster_cpu0) if cluster else 0.0
    f = res.frame
    sent = f["started_at"].sort_values()
    return {"wall": wall, "cpu": _cpu_with_children() - cpu0 + cluster_cpu, "records": len(f),
            "ok": int((f["status"] == "ok").sum()),
            "retries": int((f["attempts"] - 1).clip(lower=0).sum()),
            "span": (sent.iloc[-1] - sent.iloc[0]).total_seconds()}


def child_disk(what: str, directory: str) -> dict[str, Any]:
    from compare.results import Results

    t0 = time.perf_counter()
    if what in ("summary", "leaderboard_dir"):
        rows = len(Results.summarize_dir(directory) if what == "summary"
                   else Results.leaderboard_dir(directory, "latency_s"))
        return {"s": time.perf_counter() - t0, "rss": _peak_rss_mb(), "rows": rows}
    res = Results.load(directory, columns=LEADERBOARD_COLUMNS)
    loaded, rss_loaded = time.perf_counter() - t0, _peak_rss_mb()
    board = res.leaderboard("latency_s")
    return {"load_s": loaded, "load_rss": rss_loaded, "s": time.perf_counter() - t0,
            "rss": _peak_rss_mb(), "rows": len(board)}


def child_main() -> None:
    what = sys.argv[1]
    out = child_run(json.loads(sys.argv[2])) if what == "run" else child_disk(what, sys.argv[2])
    print(json.dumps(out))


class ChildTimeout(RuntimeError):
    def __init__(self, seconds: float, peak_mb: float) -> None:
        super().__init__(f"did not finish in {seconds:.0f} s (peak RSS {peak_mb:,.0f} MB then)")
        self.peak_mb = peak_mb


def _vmhwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _child(args: list[str], *, key: str = "", timeout: float = 900,
           env: dict[str, str] | None = None) -> dict[str, Any]:
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            "import bench_shards; bench_shards.child_main()")
    full = dict(os.environ, **(env or {}), **{KEY_ENV: key})
    full["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), full.get("PYTHONPATH")) if p)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-c", code, *args], env=full, stdout=out,
                                stderr=err, text=True)
        deadline, peak = time.monotonic() + timeout, 0.0
        while proc.poll() is None:
            peak = max(peak, _vmhwm_mb(proc.pid))
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise ChildTimeout(timeout, peak)
            time.sleep(0.5)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"child failed ({proc.returncode}):\n{err.read()[-3000:]}")
        return json.loads(out.read().strip().splitlines()[-1])


# -- a Ray cluster for part 1 ------------------------------------------------------------------


class RayCluster:
    """A one-node Ray cluster on loopback, its processes found (and ended) by its temp dir."""

    @classmethod
    def attach(cls, tmp: str) -> RayCluster:
        """The cluster started by another process, found by its temp dir."""
        cluster = cls.__new__(cls)
        cluster.tmp = tmp
        return cluster

    def __init__(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="compare-bench-ray-")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.address = f"127.0.0.1:{s.getsockname()[1]}"
        cli = str(Path(sys.executable).with_name("ray"))
        proc = subprocess.run(
            [cli, "start", "--head", f"--port={self.address.split(':')[1]}", "--num-cpus=2",
             "--node-ip-address=127.0.0.1", f"--object-store-memory={80 * 2**20}",
             "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={self.tmp}"],
            env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
            timeout=300, check=False)
        if proc.returncode != 0:
            self.stop()
            raise RuntimeError(f"ray start failed:\n{proc.stderr[-2000:]}")

    def processes(self) -> list[Any]:
        import psutil

        found: dict[int, Any] = {}
        for p in psutil.process_iter(["cmdline"]):
            if self.tmp in " ".join(p.info["cmdline"] or ()):
                found[p.pid] = p
                for c in p.children(recursive=True):
                    found[c.pid] = c
        return list(found.values())

    def cpu(self) -> float:
        total = 0.0
        for p in self.processes():
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except Exception:
                continue
        return total

    def stop(self) -> None:
        import psutil

        procs = self.processes()
        for p in procs:
            p.kill()
        psutil.wait_procs(procs, timeout=10)


# -- the parts -------------------------------------------------------------------------------


def _start_ray(tries: int = 4) -> tuple[RayCluster | None, str]:
    """A cluster, or why there is none. On a loaded box the raylet may give up waiting for its
    agent (about 30 s), so a few more tries."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return None, "Ray not installed (compare[ray])"
    why = ""
    for _ in range(tries):
        try:
            return RayCluster(), ""
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            why = f"ray start failed {tries} times: " + str(e).strip().splitlines()[-1][:100]
    return None, why


def throughput(args: argparse.Namespace, n: int) -> str:
    names = ["zero-a", "zero-b"]
    config = endpoint_config(*(sim_deployment(name, tokens=8, seed=i)
                               for i, name in enumerate(names)))
    modes: list[tuple[str, dict[str, Any]]] = [("in-process", {}), ("workers=1", {"workers": 1}),
                                               ("workers=2", {"workers": 2})]
    rows = []
    cluster = None
    if not args.no_ray:
        cluster, why = _start_ray()
        if cluster is not None:
            modes.append(("ray, 2 shards", {"workers": 2, "ray": cluster.address,
                                            "ray_tmp": cluster.tmp}))
        else:
            rows.append(["ray, 2 shards", "–", "–", "–", why])
    try:
        with pinned_endpoint(config) as ep, tempfile.TemporaryDirectory() as tmp:
            for label, extra in modes:
                spec = {"url": ep.url, "names": names, "prompts": n // len(names),
                        "out": str(Path(tmp) / label.replace(" ", "_")), "concurrency": 64,
                        **extra}
                r = _child(["run", json.dumps(spec)], key=ep.api_key,
                           env={"RAY_AUTH_MODE": "token"} if "ray" in extra else None)
                cpu_ms = r["cpu"] * 1000 / r["records"]
                rows.append([label, f"{r['records'] / r['wall']:,.0f}",
                             f"{r['records'] / max(r['span'], 1e-9):,.0f}", f"{cpu_ms:.2f}",
                             f"{r['ok']:,} ok of {r['records']:,}, wall {r['wall']:.1f} s"])
    finally:
        if cluster is not None:
            cluster.stop()
    base = {r[0]: float(r[3]) for r in rows if r[3] != "–"}
    if "ray, 2 shards" in base and "workers=2" in base:
        rows.append(["Ray's overhead per request", "", "",
                     f"{base['ray, 2 shards'] - base['workers=2']:.2f}",
                     "ray CPU/request − workers=2 CPU/request"])
    return table(["mode", "records/s (whole run)", "records/s (first → last send)",
                  "client CPU ms/request", "notes"], rows)


def rate_limit(args: argparse.Namespace, n: int) -> tuple[str, dict[str, Any]]:
    rpm = args.rpm
    config = endpoint_config(sim_deployment("limited", ttft_ms=5, tokens=8,
                                            capacity={"rpm": rpm, "window_s": 10}))
    with pinned_endpoint(config) as ep, tempfile.TemporaryDirectory() as tmp:
        spec = {"url": ep.url, "names": ["limited"], "prompts": n, "rpm": rpm,
                "out": str(Path(tmp) / "run"), "concurrency": 64, "workers": 4}
        r = _child(["run", json.dumps(spec)], key=ep.api_key)
    ideal = (r["records"] - 1) / (rpm / 60)
    ratio = r["span"] / ideal
    share = r["retries"] / r["records"]
    ok = ratio <= 1.1 and share <= 0.02
    goal = {"goal": "four shards on one rate limit: send span ≤ 1.1 × the limit-bound ideal, "
                    "429s ≤ 2 %", "result": f"{ratio:.3f} ×, {share:.2%} 429s", "met": ok}
    return table(["shards", "requests", "limit", "send span", "ideal", "span ÷ ideal", "429s",
                  "goal (≤ 1.1 ×, ≤ 2 %)"],
                 [[4, r["records"], f"{rpm:,} rpm", f"{r['span']:.1f} s", f"{ideal:.1f} s",
                   f"{ratio:.3f}", f"{share:.2%}", "met" if ok else "NOT met"]]), goal


def synthetic_run(directory: Path, rows: int, deployments: int = 10) -> None:
    """`rows` records as a sharded run leaves them: parquet parts of 1M rows and a manifest."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from compare.frame import COLUMN_KINDS

    parts = directory / "parts"
    parts.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"deployment-{i:02d}" for i in range(deployments)]
    chunk = 1_000_000
    for start in range(0, rows, chunk):
        m = min(chunk, rows - start)
        idx = pa.array(np.arange(start, start + m))
        cols: dict[str, Any] = {}
        for name, kind in COLUMN_KINDS.items():
            if kind == "float":
                cols[name] = pa.array(rng.gamma(2.0, 0.3, m))
            elif kind in ("int", "bool"):
                cols[name] = pa.array(np.ones(m, dtype=np.int64) if kind == "int"
                                      else np.zeros(m, dtype=bool))
            elif kind == "datetime":
                cols[name] = pa.nulls(m, pa.timestamp("us", tz="UTC"))
            else:
                cols[name] = pa.nulls(m, pa.string())
        prompt = pc.divide(idx, pa.scalar(deployments * 2, pa.int64()))
        cols["prompt_id"] = pc.binary_join_element_wise("p", pc.cast(prompt, pa.string()), "")
        cols["deployment"] = pc.take(pa.array(names), pc.remainder(idx, deployments))
        cols["repeat"] = pc.remainder(pc.divide(idx, pa.scalar(deployments, pa.int64())), 2)
        cols["status"] = pa.array(np.where(rng.random(m) < 0.02, "error", "ok"))
        cols["output"] = pc.binary_join_element_wise(
            "The answer is ", pc.cast(pc.remainder(idx, 997), pa.string()), "")
        pq.write_table(pa.table(cols), parts / f"part-s{start // chunk:04d}-00000.parquet")
    (directory / "manifest.json").write_text(json.dumps({
        "run_id": "synthetic", "status": "complete", "deployment_order": names,
        "parts": {"complete": True, "files": len(list(parts.iterdir()))}}))


def _leaderboard_rows(directory: str, rows: int, timeout: float) -> list[list[str]]:
    goal = f"goal ≤ {GOAL_RSS_MB} MB"
    try:
        board = _child(["leaderboard", directory], timeout=timeout)
    except ChildTimeout as e:
        return [[f"Results.load(dir, columns=7).leaderboard('latency_s'), {rows:,} rows", "–",
                 f"≥ {e.peak_mb:,.0f} MB", f"{e} → NOT met"]]
    return [[f"Results.load(dir, columns=7), {rows:,} rows", f"{board['load_s']:.1f} s",
             f"{board['load_rss']:.0f} MB", "the leaderboard's columns only"],
            [".leaderboard('latency_s') on it", f"{board['s'] - board['load_s']:.1f} s",
             f"{board['rss']:.0f} MB",
             f"{goal} → {'met' if board['rss'] <= GOAL_RSS_MB else 'NOT met'}"]]


def out_of_core(rows: int, timeout: float) -> tuple[str, list[dict[str, Any]]]:
    with tempfile.TemporaryDirectory(prefix="compare-bench-ooc-") as tmp:
        t0 = time.perf_counter()
        synthetic_run(Path(tmp), rows)
        made = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in (Path(tmp) / "parts").iterdir()) / 1e6
        summary = _child(["summary", tmp])
        from_disk = _child(["leaderboard_dir", tmp], timeout=timeout)
        tenth = rows // 10
        for part in sorted((Path(tmp) / "parts").iterdir())[max(1, tenth // 1_000_000):]:
            part.unlink()  # the first tenth (one 1M-row part) for the same leaderboard
        small = _leaderboard_rows(tmp, min(rows, 1_000_000), timeout) if rows > 1_000_000 \
            else []
    goal = f"goal ≤ {GOAL_RSS_MB} MB"
    out = [[f"Results.summarize_dir(dir), {rows:,} rows", f"{summary['s']:.1f} s",
            f"{summary['rss']:.0f} MB",
            f"{goal} → {'met' if summary['rss'] <= GOAL_RSS_MB else 'NOT met'}"],
           [f"Results.leaderboard_dir(dir, 'latency_s'), {rows:,} rows",
            f"{from_disk['s']:.1f} s", f"{from_disk['rss']:.0f} MB",
            f"{goal} → {'met' if from_disk['rss'] <= GOAL_RSS_MB else 'NOT met'}"],
           *small]
    note = (f"{rows:,} synthetic records (10 deployments, 2 repeats, 2 % errors) as parquet "
            f"parts, {size:,.0f} MB on disk, made in {made:.0f} s. Each line a fresh process; "
            "RSS is the process's peak (VmHWM), imports included.\n\n")
    goals = [{"goal": f"{rows:,} records from disk: {what} at ≤ {GOAL_RSS_MB} MB peak RSS",
              "result": f"{got['rss']:.0f} MB in {got['s']:.1f} s",
              "met": got["rss"] <= GOAL_RSS_MB}
             for what, got in (("summarize_dir", summary), ("leaderboard_dir", from_disk))]
    return note + table(["what", "time", "peak RSS", "notes"], out), goals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--rpm", type=int, default=2400)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--leaderboard-timeout", type=float, default=300.0)
    common_args(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        args.requests, args.rows, args.rpm, args.no_ray = 200, 20_000, 6000, True
    head = header("6. Sharded runs: processes, Ray, shared rate limit, out of core", args.smoke)
    speed = throughput(args, args.requests)
    limited, limit_goal = rate_limit(args, 40 if args.smoke else args.rpm // 60 * 12)
    on_disk, disk_goals = out_of_core(args.rows, args.leaderboard_timeout)
    parts = [
        "**Throughput** against a zero-latency simulated deployment (2 deployments, "
        f"{args.requests:,} requests, 64 in flight; the endpoint pinned to core 0, the client "
        "processes free on both cores, so on this 2-core box 2 workers share a core with the "
        "server). Whole-run figures include starting the worker processes (about 2–3 s of CPU "
        "each: imports) or connecting to Ray:\n\n" + speed,
        "**Four shards, one rate limit** (a simulated deployment that refuses beyond "
        f"{args.rpm:,} requests/min over 10 s windows; the deployment's requests_per_minute "
        "set to the same):\n\n" + limited,
        "**Out of core** (`compare.stats` leaderboard with its default extras: p50 with a "
        "bootstrap interval, cost per 1k prompts):\n\n" + on_disk,
    ]
    body = head + "\n" + "\n\n".join(parts) + "\n"
    print(body)
    write_section("shards", body, results_path(args),
                  None if args.smoke else [limit_goal, *disk_goals])
    return 0


if __name__ == "__main__":
    sys.exit(main())
