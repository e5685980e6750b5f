"""What every benchmark shares: pinned servers, CPU clocks, tables, RESULTS.md sections, JSON.

The machine has 2 cores: the server (the ground-truth server `truth_server.py`, or compare's local
endpoint) is pinned to core 0 and the benchmark's own process (the client) to core 1, so client
CPU per request is not mixed with the server's work. Other processes on the box are not pinned,
so each table notes the load average it ran under.

Only `compare`'s public API is imported at module level, and compare's local endpoint only by
the benchmarks that use it: `before_after.py` runs these scripts against an older revision's
`compare/` too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_FILE = BENCH_DIR / "RESULTS.md"
SERVER_CPU = 0
CLIENT_CPU = 1


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))


def pin_self(cpu: int = CLIENT_CPU) -> bool:
    """Pin this process (all its current threads) to one core; False when it has fewer cores."""
    return _pin(os.getpid(), cpu)


def _pin(pid: int, cpu: int) -> bool:
    if cpu >= os.cpu_count() or len(os.sched_getaffinity(pid)) < 2:  # type: ignore[operator]
        return False
    # sched_setaffinity on a pid moves only that thread: move every thread of the process.
    tasks = Path(f"/proc/{pid}/task")
    tids = [int(t) for t in os.listdir(tasks)] if tasks.exists() else [pid]
    for tid in tids:
        with suppress(OSError):
            os.sched_setaffinity(tid, {cpu})
    return True


@contextmanager
def pinned_endpoint(config: dict[str, Any], *, cpu: int = SERVER_CPU,
                    **kwargs: Any) -> Iterator[Any]:
    """compare's local endpoint (a subprocess) with `config`, pinned to `cpu`."""
    from compare.server.local import local_endpoint

    with local_endpoint(config=config, **kwargs) as ep:
        if ep._proc is not None:
            _pin(ep._proc.pid, cpu)
        yield ep


class TruthServer:
    """A running `truth_server.py` process: `url`, and `log()` of its receive / write times."""

    def __init__(self, url: str, proc: subprocess.Popen[str]) -> None:
        self.url = url
        self.proc = proc

    def log(self, *, clear: bool = True) -> dict[str, list[float]]:
        """{request id: [received, first chunk written, last chunk written]} (perf_counter)."""
        with urllib.request.urlopen(f"{self.url}/_truth/log?clear={int(clear)}", timeout=30) as r:
            data: dict[str, list[float]] = json.loads(r.read())
        return data


@contextmanager
def truth_server(*, ttft_ms: float, itl_ms: float, tokens: int,
                 cpu: int | None = SERVER_CPU) -> Iterator[TruthServer]:
    """`bench/truth_server.py` in its own process, pinned to `cpu` (None: not pinned); stopped
    on exit."""
    cmd = [sys.executable, str(BENCH_DIR / "truth_server.py"), "--ttft-ms", str(ttft_ms),
           "--itl-ms", str(itl_ms), "--tokens", str(tokens)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout is not None else ""
        if not line.startswith("listening on "):
            raise RuntimeError(f"truth_server.py did not start (printed {line!r})")
        if cpu is not None:
            _pin(proc.pid, cpu)
        yield TruthServer(line.split("listening on ", 1)[1].strip(), proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sim_deployment(name: str, *, ttft_ms: float = 0.0, itl_ms: float = 0.0, tokens: int = 16,
                   capacity: dict[str, Any] | None = None, seed: int = 1) -> dict[str, Any]:
    """A simulated deployment entry for a local endpoint config (fixed delays and length)."""
    entry: dict[str, Any] = {
        "backend": "simulated",
        "model": f"{name}-simulated",
        "simulated": {"seed": seed, "output_tokens": tokens, "ttft_ms": ttft_ms,
                      "itl_ms": itl_ms},
        "defaults": {"max_tokens": max(tokens, 1)},
    }
    if capacity:
        entry["capacity"] = capacity
    return {name: entry}


def endpoint_config(*entries: dict[str, Any]) -> dict[str, Any]:
    deployments: dict[str, Any] = {}
    for e in entries:
        deployments.update(e)
    return {"region": "local", "deployments": deployments}


def cpu_seconds() -> float:
    """User + system CPU of this process (all threads)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_delay_s(pid: int) -> float:
    """Seconds the process's main thread (its event loop) has waited on a run queue while
    runnable (Linux /proc/PID/schedstat, second field): time the OS kept it off a CPU it wanted.
    NaN where schedstat is not available."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return float("nan")


class Clock:
    """CPU and wall time of a block: `with Clock() as c: ...; c.cpu, c.wall`."""

    cpu = 0.0
    wall = 0.0

    def __enter__(self) -> Clock:
        self._cpu0, self._wall0 = cpu_seconds(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu = cpu_seconds() - self._cpu0
        self.wall = time.perf_counter() - self._wall0


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} / {five:.2f}"


def pct(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default)."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (also readable as plain text)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    # Numbers right-aligned, text left-aligned.
    right = [all(isinstance(r[i], int | float) or r[i] == "" for r in rows)
             for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        padded = (v.rjust(w) if r else v.ljust(w)
                  for v, w, r in zip(values, widths, right, strict=True))
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if r else (":" + "-" * (w + 1))
                          for w, r in zip(widths, right, strict=True)) + "|"
    return "\n".join([line(list(headers)), rule, *(line(r) for r in cells)])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def write_section(name: str, body: str, path: Path | None,
                  goals: Sequence[dict[str, Any]] | None = None) -> None:
    """Replace (or append) the `name` section of RESULTS.md, between HTML comment markers.

    `goals`: [{"goal", "result", "met"}] the section met or missed; kept in the section as a
    comment, from which the summary section at the top of the file is rebuilt on every write.
    """
    if path is None:
        return
    if goals is not None:
        body = body.rstrip() + "\n\n" + GOALS_MARK + json.dumps(list(goals)) + " -->\n"
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    # The header and the scripts' sections only: text outside them was not written by a script.
    blocks = [m.group(0) for m in _SECTION.finditer(old)]
    text = RESULTS_HEADER + "".join(f"\n{block}\n" for block in blocks)
    text = _replace_section(text, name, body)
    text = _replace_section(text, "summary", summary_section(text), first=True)
    path.write_text(text, encoding="utf-8")


GOALS_MARK = "<!-- goals:"
_SECTION = re.compile(r"<!-- bench:([\w-]+) -->(.*?)<!-- /bench:\1 -->", re.DOTALL)


def _replace_section(text: str, name: str, body: str, *, first: bool = False) -> str:
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text)
    if first:  # right after the file's header paragraph
        head, sep, rest = text.partition("\n\n<!-- bench:")
        return head.rstrip() + "\n\n" + block + "\n" + (sep + rest if sep else "")
    return text.rstrip() + "\n\n" + block + "\n"


def summary_section(text: str) -> str:
    """The summary table: every section's goal lines, in file order; sections without any say
    so (they were written before goals were recorded, or have none)."""
    rows = []
    for name, body in _SECTION.findall(text):
        if name == "summary":
            continue
        title = next((line[3:].split(" (smoke")[0] for line in body.splitlines()
                      if line.startswith("## ")), name)
        stamp = re.search(r"_(\d{4}-\d\d-\d\d \d\d:\d\d UTC), load average at start ([\d.]+)",
                          body)
        when = f"{stamp.group(1)}, load {stamp.group(2)}" if stamp else "–"
        marks = [line for line in body.splitlines() if line.startswith(GOALS_MARK)]
        if not marks:
            rows.append([title, when, "(no goal line: rerun its script)", "", ""])
        for mark in marks:
            for goal in json.loads(mark[len(GOALS_MARK):].rsplit("-->", 1)[0]):
                rows.append([title, when, goal["goal"], goal["result"],
                             "yes" if goal["met"] else "**no**"])
    return ("## Summary: goals and results\n\nGenerated from the goal lines that each script "
            "writes into its section below (rebuilt whenever a section is written).\n\n"
            + table(["section", "run", "goal", "result", "met"], rows) + "\n")


RESULTS_HEADER = """# Benchmark results

Written by the scripts only: `python bench/run_all.py` (each section by its own `bench/bench_*.py`),
`bench/before_after.py` (before/after sections); the summary is rebuilt from the goal lines each
script writes into its section. Every number is a ratio or a measurement inside one run on this
2-core machine: the server pinned to core 0, the client to core 1. Other work on the machine is not
stopped; each section notes the load average.
"""


def common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds), for tests")
    parser.add_argument("--results", type=Path, default=None,
                        help="RESULTS.md to update (default: bench/RESULTS.md, none with --smoke)")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write the measured rows to this JSON file (before_after.py)")
    parser.add_argument("--no-results", action="store_true",
                        help="write no RESULTS.md section (before_after.py writes its own)")


def write_json(args: argparse.Namespace, payload: dict[str, Any]) -> None:
    """The measured rows as JSON, when `--json PATH` was given."""
    if args.json is not None:
        payload = {"load_average": load_average(), **payload}
        args.json.write_text(json.dumps(payload, indent=1), encoding="utf-8")


def results_path(args: argparse.Namespace) -> Path | None:
    if getattr(args, "no_results", False):
        return None
    if args.results is not None:
        return args.results
    return None if args.smoke else RESULTS_FILE


def header(title: str, smoke: bool) -> str:
    size = " (smoke size: numbers mean nothing)" if smoke else ""
    return (f"## {title}{size}\n\n_{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"load average at start {load_average()} (1 / 5 min), "
            f"{os.cpu_count()} cores on the machine._\n")
