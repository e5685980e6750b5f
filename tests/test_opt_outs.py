"""The one way a test meets a missing optional part: fail with the fix, or skip when its opt-out
variable is 1, and a run that skipped anything that way says so at its end."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests import conftest
from tests.conftest import missing_part, opt_out_summary

REPO = Path(__file__).resolve().parents[1]


def test_missing_part_fails_with_the_fix_unless_opted_out(monkeypatch: pytest.MonkeyPatch) -> None:
    used: Counter[str] = Counter()
    monkeypatch.setattr(conftest, "OPT_OUTS_USED", used)  # this run's summary lists real skips
    monkeypatch.delenv("COMPARE_SKIP_WIDGET", raising=False)
    with pytest.raises(pytest.fail.Exception, match=r"widget is missing: pip install widget, "
                                                    r"or set COMPARE_SKIP_WIDGET=1"):
        missing_part("widget", fix="pip install widget", opt_out="COMPARE_SKIP_WIDGET")
    monkeypatch.setenv("COMPARE_SKIP_WIDGET", "0")  # only 1 opts out
    with pytest.raises(pytest.fail.Exception):
        missing_part("widget", fix="pip install widget", opt_out="COMPARE_SKIP_WIDGET")
    assert not used
    monkeypatch.setenv("COMPARE_SKIP_WIDGET", "1")
    with pytest.raises(pytest.skip.Exception, match="skipped because COMPARE_SKIP_WIDGET=1"):
        missing_part("widget", fix="pip install widget", opt_out="COMPARE_SKIP_WIDGET")
    assert used == {"COMPARE_SKIP_WIDGET": 1}


def test_summary_names_each_opt_out_and_its_count() -> None:
    assert opt_out_summary(Counter()) == []
    lines = opt_out_summary(Counter({"COMPARE_SKIP_RAY": 2, "COMPARE_SKIP_BROWSER": 5}))
    assert lines[1:] == ["  COMPARE_SKIP_BROWSER=1: 5 skipped", "  COMPARE_SKIP_RAY=1: 2 skipped"]


def test_a_run_ends_by_listing_the_opt_outs_it_used(tmp_path: Path) -> None:
    (tmp_path / "test_needs_part.py").write_text(
        "from tests.conftest import missing_part\n"
        "def test_a():\n"
        "    missing_part('part', fix='install it', opt_out='COMPARE_SKIP_PART')\n"
        "def test_b():\n"
        "    missing_part('part', fix='install it', opt_out='COMPARE_SKIP_PART')\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    cmd = [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider",
           "-c", str(tmp_path / "pytest.ini"), str(tmp_path / "test_needs_part.py")]
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "COMPARE_SKIP_PART": "1"}
    opted = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert opted.returncode == 0, opted.stdout[-2000:] + opted.stderr[-2000:]
    assert "2 skipped" in opted.stdout
    assert "COMPARE_SKIP_PART=1: 2 skipped" in opted.stdout
    env.pop("COMPARE_SKIP_PART")
    failed = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1 and "2 failed" in failed.stdout
    assert "opt-out" not in failed.stdout
    assert "install it, or set COMPARE_SKIP_PART=1" in failed.stdout
