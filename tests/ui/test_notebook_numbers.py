"""nbval checks the notebooks' deterministic numbers: a stored number changed must fail it.

notebooks/sanitize.cfg masks only what varies from run to run (measured timings marked "≈",
timestamps, ports, temp paths). The end-to-end check runs nbval with that sanitizer in a
subprocess, as `make test` does, on two copies of the batch notebook (simulated deployments
only, a few seconds): the copy as stored must pass, the copy with one stored token count changed
must fail on exactly that cell. The static checks cover every local notebook without running it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbval.plugin import get_sanitize_patterns

REPO = Path(__file__).resolve().parents[2]
SANITIZER = REPO / "notebooks" / "sanitize.cfg"
CHEAP = REPO / "notebooks" / "06-batch.ipynb"
LOCAL = [p for p in sorted((REPO / "notebooks").glob("*.ipynb")) if p.stem != "04-azure"]
DECIMAL = re.compile(r"(?<![\d.≈])\d+\.\d+")
NUMBER = re.compile(r"(?<![\w.≈])\d+(?:\.\d+)?(?![\w.])")


def sanitize(text: str, patterns: list[tuple[str, str]]) -> str:
    """What nbval compares of a stored text: the cfg as nbval reads it, applied in order."""
    for regex, replace in patterns:
        text = re.sub(regex, replace, text)
    return text


def stored_texts(path: Path) -> list[tuple[int, str]]:
    """(cell index, text) of every compared text output: streams and text mime types."""
    texts = []
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        for out in cell.get("outputs", []):
            if "text" in out:
                texts.append((index, out["text"]))
            for mime, value in out.get("data", {}).items():
                if mime.startswith("text/"):
                    texts.append((index, value))
    return texts


def corrupt_token_count(src: Path, dst: Path) -> tuple[int, str, str]:
    """Copy src to dst with the first prompt_tokens total of the per-deployment table changed."""
    nb = json.loads(src.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for number, cell in enumerate(code, start=1):
        for out in cell["outputs"]:
            plain = "".join(out.get("data", {}).get("text/plain", []))
            if "prompt_tokens" not in plain:
                continue
            found = DECIMAL.search(plain.split("\n", 2)[2])  # first value under the header
            assert found is not None, "the token table holds no number to change"
            old = found.group(0)
            new = str(int(old.split(".")[0]) + 1) + "." + old.split(".")[1]
            out["data"]["text/plain"] = plain.replace(old, new, 1)
            dst.write_text(json.dumps(nb, indent=1), encoding="utf-8")
            return number, old, new
    raise AssertionError(f"{src.name}: no stored table of prompt_tokens")


def run_nbval(workdir: Path, *notebooks: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HOME=str(workdir / "home"),
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    for name in ("IPYTHONDIR", "MPLCONFIGDIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR",
                 "JUPYTER_RUNTIME_DIR"):
        (workdir / name).mkdir(parents=True)
        env[name] = str(workdir / name)
    (workdir / "home").mkdir()
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--nbval",
         "--nbval-sanitize-with", str(SANITIZER), "--rootdir", str(workdir),
         "-rf", *notebooks],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=240, check=False)


def test_a_changed_stored_number_fails_nbval_and_the_stored_copy_passes(tmp_path: Path) -> None:
    (tmp_path / "stored.ipynb").write_bytes(CHEAP.read_bytes())
    cell, old, new = corrupt_token_count(CHEAP, tmp_path / "changed.ipynb")
    assert old != new
    run = run_nbval(tmp_path, "stored.ipynb", "changed.ipynb")
    report = run.stdout + run.stderr
    failed = re.findall(r"^FAILED (\S+ \d+)", report, re.MULTILINE)
    assert failed == [f"changed.ipynb::Cell {cell - 1}"], report[-3000:]  # nbval counts from 0
    assert "Cell outputs differ" in report and new in report, report[-3000:]
    assert re.search(r"\b1 failed, \d+ passed\b", report), report[-3000:]


@pytest.mark.parametrize("path", LOCAL, ids=lambda p: p.stem)
def test_stored_numbers_survive_the_sanitizer(path: Path) -> None:
    """Every number marked measured (≈) is masked; every other number stays compared: changing
    its last digit changes what nbval compares."""
    patterns = get_sanitize_patterns(SANITIZER.read_text(encoding="utf-8"))
    kept = 0
    for _, text in stored_texts(path):
        clean = sanitize(text, patterns)
        assert "≈" not in clean.replace("≈<MEASURED>", ""), (
            f"{path.name}: a number marked measured (≈) escaped the sanitizer: {clean[:200]!r}")
        for found in NUMBER.finditer(clean):
            kept += 1
            last = str((int(found.group(0)[-1]) + 1) % 10)
            altered = text.replace(found.group(0), found.group(0)[:-1] + last)
            assert sanitize(altered, patterns) != clean, f"{path.name}: {found.group(0)} is masked"
    assert kept > 0, f"{path.name}: nbval compares no number of its outputs"
