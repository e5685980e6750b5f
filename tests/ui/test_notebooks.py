"""The stored notebooks: executed, error-free, free of secrets, strict about ignored outputs.

nbval (`pytest --nbval notebooks`) re-runs them and compares outputs; these checks cover what it
does not: what is committed.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
# Sorted as the glob is; a new notebook is added here.
NAMES = ["01-quickstart", "02-explorer", "03-batch-evaluation", "04-azure", "05-quality",
         "06-batch"]
LIVE_SERVICE = "04-azure"  # the one notebook that talks to a real Azure deployment
SECRET_PATTERNS = [
    re.compile(r"(api[-_]?key|token|secret|password)[\"']?\s*[:=]\s*[\"'][A-Za-z0-9_\-]{16,}",
               re.IGNORECASE),
    re.compile(r"Bearer\s+[A-Za-z0-9_\-.]{16,}"),
    re.compile(r"\?token=[0-9a-f]{16,}"),
]


def test_the_notebooks_exist() -> None:
    assert [p.stem for p in NOTEBOOKS] == NAMES


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_with_outputs_and_no_errors(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count is not None for c in code), "store executed outputs"
    counts = [c.execution_count for c in code]
    assert counts == list(range(1, len(code) + 1)), "run top to bottom in one go"
    for cell in code:
        for out in cell.outputs:
            assert out.output_type != "error", f"{path.name}: {out.get('ename')}"
            assert out.get("name") != "stderr", f"{path.name}: stderr output {out.get('text')!r}"
    assert nb.cells[0].cell_type == "markdown", "start by saying what the notebook shows"
    assert any("assert " in c.source for c in code), "check facts with assert cells"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_secret_in_stored_notebook(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for pattern in SECRET_PATTERNS:
        found = pattern.search(text)
        assert found is None, f"{path.name}: {found.group(0)[:40]}..."


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_ignored_outputs_only_for_the_live_service(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    ignored = [c for c in nb.cells if c.cell_type == "code" and "NBVAL_IGNORE_OUTPUT" in c.source]
    if path.stem == LIVE_SERVICE:
        assert all("depends on" in c.source or "live service" in c.source for c in ignored)
        assert any("assert" in c.source and "NBVAL" not in c.source for c in nb.cells)
    else:
        assert not ignored, "local notebooks are deterministic: sanitize, do not ignore"
    assert not any("NBVAL_SKIP" in c.source for c in nb.cells)


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem != LIVE_SERVICE],
                         ids=lambda p: p.stem)
def test_local_notebooks_start_and_stop_their_endpoint(path: Path) -> None:
    source = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells)
    assert "compare.local_endpoint(" in source
    assert ".stop()" in source
