"""The README's examples work as written: its Python blocks run in order (one namespace, a fresh
folder, the local endpoint's simulated deployments) and every command of its shell blocks parses
with the parser that would run it (`compare ...`, `make TARGET`), without running it."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
RUNNER = """
import json, sys
namespace = {"__name__": "__readme__"}
for line, code in json.loads(sys.argv[1]):
    # Padded so a traceback names the README's own line.
    exec(compile("\\n" * (line - 1) + code, "README.md", "exec"), namespace)
"""


def blocks(language: str) -> list[tuple[int, str]]:
    """(first line of the code in README.md, code) of every ```language block."""
    text = README.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start(2)) + 1, m.group(2)) for m in BLOCK.finditer(text)
            if m.group(1) == language]


def commands(code: str) -> list[list[str]]:
    """The shell commands of a block: continuation lines joined, comments dropped."""
    joined = code.replace("\\\n", " ")
    return [words for line in joined.splitlines() if (words := shlex.split(line, comments=True))]


def test_python_blocks_run_as_written(tmp_path: Path) -> None:
    code = blocks("python")
    assert len(code) >= 4, "the README lost its Python examples"
    env = {**os.environ, "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env.pop("OPENAI_API_VERSION", None)
    done = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(code)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = done.stdout.splitlines()
    assert "What is the capital of France?" in printed
    assert 'Capital of Japan? Reply as {"city": "..."}' in printed
    assert printed[0].endswith(" 2024-10-21"), printed[0]  # the azure-openai default
    run = tmp_path / "runs" / "try"
    for name in ("results.parquet", "manifest.json", "all-charts.png", "report.html"):
        assert (run / name).stat().st_size > 0, name


def _check(words: list[str], make_targets: set[str]) -> None:
    from compare.cli.parser import build_parser

    if words[:3] == [Path(sys.executable).name, "-m", "compare"] or words[:3] == [
            "python", "-m", "compare"]:
        words = ["compare", *words[3:]]
    if words[0] == "make":
        unknown = [t for t in words[1:] if t not in make_targets]
        assert not unknown, f"make has no target {unknown}"
        return
    assert words[0] == "compare", (
        f"README command {shlex.join(words)!r}: this test knows how to dry-run `compare` and "
        "`make` only; teach it the new command")
    if words[1:2] == ["serve"]:
        from compare.server.__main__ import build_parser as serve_parser

        serve_parser().parse_args(words[2:])
    elif words[1:2] == ["app"]:
        from compare.voila import build_parser as app_parser

        app_parser().parse_args(words[2:])
    else:
        build_parser().parse_args(words[1:])


def test_shell_commands_parse() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, re.MULTILINE))
    checked = []
    for line, code in blocks("bash"):
        for words in commands(code):
            try:
                _check(words, targets)
            except SystemExit as e:  # argparse of serve/app
                pytest.fail(f"README.md:{line}: {shlex.join(words)} does not parse ({e})")
            checked.append(words[:2])
    assert ["compare", "run"] in checked and ["make", "demo"] in checked
    assert {w[1] for w in checked if w[0] == "compare"} >= {
        "run", "summary", "show", "report", "deployments", "serve", "demo", "app"}
