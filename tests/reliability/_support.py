"""Shared helpers of the reliability tests: sim configs, free ports, record checks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

# Fast, fixed simulated timing: 6 tokens, 1 ms apart.
SIM: dict[str, Any] = {"seed": 7, "output_tokens": 6, "ttft_ms": 1, "itl_ms": 1}
REPO = Path(__file__).resolve().parents[2]


def sim_dep(*faults: dict[str, Any], **extra: Any) -> dict[str, Any]:
    dep: dict[str, Any] = {"backend": "simulated", "simulated": dict(SIM), **extra}
    if faults:
        dep["faults"] = list(faults)
    return dep


def free_port() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_row_per_key(frame: pd.DataFrame, n_prompts: int, deployments: list[str],
                    repeats: int) -> None:
    """Exactly one final record per prompt × deployment × repeat, nothing more."""
    assert len(frame) == n_prompts * len(deployments) * repeats, frame[
        ["prompt_id", "deployment", "repeat", "status"]]
    sizes = frame.groupby(["prompt_id", "deployment", "repeat"]).size()
    assert (sizes == 1).all() and len(sizes) == len(frame)
    assert sorted(set(frame["deployment"])) == sorted(deployments)


def python_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_py(code: str, *, env: dict[str, str] | None = None, timeout: float = 120,
           cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env or python_env(), timeout=timeout, cwd=cwd)


def server_process(endpoint: Any) -> Any:
    """The psutil.Process listening on a LocalEndpoint's port (others may be running)."""
    import psutil

    port = int(endpoint.url.rsplit(":", 1)[1])
    pids = {c.pid for c in psutil.net_connections("inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port and c.pid}
    assert len(pids) == 1, f"listeners on port {port}: {pids}"
    return psutil.Process(pids.pop())
