"""nbval runs these notebooks in fresh kernels that inherit this process's environment: keep the
kernels off the user's IPython profile and matplotlib cache, so outputs do not depend on them."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def pytest_configure(config: object) -> None:
    base = Path(tempfile.mkdtemp(prefix="compare-nbval-"))
    for name in ("IPYTHONDIR", "MPLCONFIGDIR"):
        (base / name).mkdir()
        os.environ[name] = str(base / name)
