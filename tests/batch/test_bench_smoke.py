"""The batch client benchmark at smoke size: it runs end to end through `bench/run_all.py`,
prints its table and writes its RESULTS.md section (the numbers of a smoke run mean nothing)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_batch_client_benchmark_smoke(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run_all.py"), "--smoke", "--only",
         "batch-client", "--results", str(results)],
        capture_output=True, text=True, timeout=240, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    for row in ("build JSONL (streamed to disk)", "upload (streamed from disk)",
                "parse lines → records → checkpoint", "client peak RSS (VmHWM)"):
        assert row in proc.stdout, proc.stdout[-3000:]
    section = results.read_text(encoding="utf-8").split("<!-- bench:batch-client -->", 1)[1]
    assert "smoke size" in section and "500 ok" in section
