"""The benchmarks' smoke versions: every script runs end to end at a tiny size and prints (and
writes) its table. The numbers are not asserted: on a shared 2-core machine they mean nothing at
this size; `make bench` measures them for real."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN_ALL = ROOT / "bench" / "run_all.py"

# name → (a column header its table must have, a row label it must have)
EXPECTED = {
    "overhead": ("runner ÷ bare", "azure-openai"),
    "accuracy": ("TTFT err p99 ms", "raw aiohttp (floor)"),
    "ratelimit": ("wall ÷ ideal", "SDK retries + gather"),
    "scale": ("measure", "peak RSS of the run (VmHWM)"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_benchmark_smoke_prints_and_writes_its_table(name: str, tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, str(RUN_ALL), "--smoke", "--only", name, "--results", str(results)],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    column, row = EXPECTED[name]
    assert column in proc.stdout and row in proc.stdout, proc.stdout[-3000:]
    text = results.read_text(encoding="utf-8")
    section = text.split(f"<!-- bench:{name} -->", 1)[1].split(f"<!-- /bench:{name} -->", 1)[0]
    assert column in section and row in section
    assert "smoke size" in section  # a smoke table never passes for real numbers


@pytest.mark.llama
def test_endpoint_benchmark_smoke(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, str(RUN_ALL), "--smoke", "--only", "endpoint", "--results",
         str(results)],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "in-process tok/s" in proc.stdout and "smollm2" in proc.stdout
    assert "<!-- bench:endpoint -->" in results.read_text(encoding="utf-8")


def test_before_after_smoke(tmp_path: Path) -> None:
    """The before/after mode checks out a revision in a temporary git worktree, runs a script
    against it and the current tree, writes one section, and removes the worktree."""
    results = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "before_after.py"), "--rev", "HEAD", "--script",
         "accuracy", "--rounds", "1", "--smoke", "--results", str(results)],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    text = results.read_text(encoding="utf-8")
    assert "<!-- bench:before-after-accuracy-" in text and "after ÷ before" in text
    assert "## Summary: goals and results" in text and "no CPU regression" in text
    worktrees = subprocess.run(["git", "-C", str(ROOT), "worktree", "list"], capture_output=True,
                               text=True, check=True).stdout
    assert "bench-before-after-" not in worktrees  # its temporary worktree is gone
