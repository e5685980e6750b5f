"""bench/bench_shards.py runs end to end at a tiny size (without Ray) and writes its section; the
numbers are not asserted (`make bench` measures them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_shards_smoke_writes_its_section(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run_all.py"), "--smoke", "--only", "shards",
         "--results", str(results)],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    section = results.read_text(encoding="utf-8").split("<!-- bench:shards -->", 1)[1]
    for text in ("client CPU ms/request", "workers=2", "span ÷ ideal",
                 "Results.summarize_dir(dir)", "Results.leaderboard_dir(dir, 'latency_s')",
                 "smoke size"):
        assert text in section, text
