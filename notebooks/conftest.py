"""nbval runs these notebooks in fresh kernels that inherit this process's environment: keep the
kernels off the user's IPython profile and matplotlib cache, so outputs do not depend on them.

Each cell is one pytest item under pytest-timeout's default deadline (300 s). The quality
notebook's run cell sends 120 requests and 147 judge calls, most of them to two llama.cpp models
on one thread each: a few minutes on an idle machine, longer on a busy CI runner, so its cells
get a longer deadline.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

CELL_DEADLINE_S = {"05-quality.ipynb": 1800}


def pytest_configure(config: object) -> None:
    base = Path(tempfile.mkdtemp(prefix="compare-nbval-"))
    for name in ("IPYTHONDIR", "MPLCONFIGDIR"):
        (base / name).mkdir()
        os.environ[name] = str(base / name)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        deadline = CELL_DEADLINE_S.get(item.path.name)
        if deadline is not None:
            item.add_marker(pytest.mark.timeout(deadline))
