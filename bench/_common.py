"""What every benchmark shares: a pinned local endpoint, CPU clocks, tables, RESULTS.md sections.

The machine has 2 cores: the local endpoint (server) is pinned to core 0 and the benchmark's own
process (the client) to core 1, so client CPU per request is not mixed with the server's work.
Other processes on the box are not pinned, so each table notes the load average it ran under.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from compare.server.local import LocalEndpoint, local_endpoint

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
                    **kwargs: Any) -> Iterator[LocalEndpoint]:
    """The local endpoint (a subprocess) with `config`, pinned to `cpu`."""
    with local_endpoint(config=config, **kwargs) as ep:
        if ep._proc is not None:
            _pin(ep._proc.pid, cpu)
        yield ep


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


def write_section(name: str, body: str, path: Path | None) -> None:
    """Replace (or append) the `name` section of RESULTS.md, between HTML comment markers."""
    if path is None:
        return
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else RESULTS_HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else \
        text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


RESULTS_HEADER = """# Benchmark results

Written by `python bench/run_all.py` (each section by its own `bench/bench_*.py`). Every number is
a ratio or a measurement inside one run on this 2-core machine: the local endpoint pinned to core 0,
the client to core 1. Other work on the machine is not stopped; each section notes the load average.
"""


def common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds), for tests")
    parser.add_argument("--results", type=Path, default=None,
                        help="RESULTS.md to update (default: bench/RESULTS.md, none with --smoke)")


def results_path(args: argparse.Namespace) -> Path | None:
    if args.results is not None:
        return args.results
    return None if args.smoke else RESULTS_FILE


def header(title: str, smoke: bool) -> str:
    size = " (smoke size: numbers mean nothing)" if smoke else ""
    return (f"## {title}{size}\n\n_{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"load average at start {load_average()} (1 / 5 min), "
            f"{os.cpu_count()} cores on the machine._\n")
