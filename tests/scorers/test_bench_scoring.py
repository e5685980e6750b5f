"""bench/bench_scoring.py runs end to end at smoke size and prints its table (the numbers
are not asserted: at this size on a shared machine they mean nothing)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_scoring_benchmark_smoke(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_scoring.py"), "--smoke", "--results",
         str(results)],
        capture_output=True, text=True, timeout=180, cwd=ROOT, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    for label in ("| scorer", "wall s", "CPU s", "+RSS MB", "all together", "chrf", "bleu",
                  "json_schema"):
        assert label in proc.stdout, label
    section = results.read_text(encoding="utf-8")
    assert "<!-- bench:scoring -->" in section and "smoke size" in section
