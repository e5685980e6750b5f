"""What the batch tests share: the local endpoint's config, deployments pointing at it, and the
server's own view of files and batches (through the openai SDK), to count uploads and batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import openai

from compare.deployments import Deployment
from compare.deployments_file import local_deployments

SIM = {"seed": 5, "output_tokens": 5, "ttft_ms": 2, "itl_ms": 1}
FILTER = [{"category": "violence", "terms": ["attack"], "apply_to": "prompt"}]
CONFIG: dict[str, Any] = {"deployments": {
    # A standard and a global-batch deployment of the same simulated model: same seed, so the
    # same prompt reads the same on both.
    "std": {"backend": "simulated", "model": "twin-simulated", "simulated": SIM,
            "content_filter": FILTER},
    "twin-batch": {"backend": "simulated", "deployment_type": "global-batch",
                   "model": "twin-simulated", "simulated": SIM, "content_filter": FILTER,
                   "batch": {"concurrency": 8}},
    # 2 at a time, ~0.25 s each: a 20-line batch runs for about 2.5 s.
    "slow-batch": {"backend": "simulated", "deployment_type": "global-batch",
                   "simulated": {"seed": 2, "output_tokens": 3, "ttft_ms": 200, "itl_ms": 20},
                   "batch": {"concurrency": 2}},
    "quota-batch": {"backend": "simulated", "deployment_type": "global-batch",
                    "simulated": {"seed": 3, "output_tokens": 2, "ttft_ms": 300, "itl_ms": 0},
                    "batch": {"concurrency": 1, "enqueued_tokens": 60}},
}}
POLL_S = 0.05
PRICES = {"price_input_per_1k": 0.5, "price_output_per_1k": 2.0}


def batch_dep(ep: Any, name: str, *, kind: str = "azure-openai-batch", **fields: Any
              ) -> Deployment:
    """A batch deployment on the local endpoint, polled every POLL_S seconds."""
    fields.setdefault("batch_poll_s", POLL_S)
    (dep,) = local_deployments(ep, kind=kind, names=[name], **fields)
    return dep


def sdk(ep: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{ep.url}/openai/v1", api_key=ep.api_key, max_retries=0)


def batches_of(ep: Any, run_id: str) -> list[Any]:
    """The server's batches made by run `run_id` (our create metadata names it)."""
    return [b for b in sdk(ep).batches.list(limit=100)  # every page
            if (b.metadata or {}).get("compare_run") == run_id]


def uploads_of(ep: Any, run_id: str) -> list[Any]:
    """Input files the server holds for run `run_id` (our file names start with it)."""
    return [f for f in sdk(ep).files.list(purpose="batch") if f.filename.startswith(run_id)]


def ledger(out: Path) -> list[dict[str, Any]]:
    path = out / "batches.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def wait_for(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def one_record_per_key(frame: Any, n: int) -> None:
    assert len(frame) == n, frame[["prompt_id", "deployment", "repeat", "status"]]
    assert not frame.duplicated(["prompt_id", "deployment", "repeat"]).any()


# A run in a child process (like a user's script), to be killed or interrupted.
CHILD = """
import sys
from compare.deployments import Deployment
from compare.runner import run
url, name, out, n, cancel = sys.argv[1:6]
dep = Deployment(name="b", kind="azure-openai-batch", endpoint=url, api_key_env="BATCH_TEST_KEY",
                 deployment=name, batch_poll_s=0.05)
prompts = [{"id": f"k{i:02d}", "prompt": f"child prompt {i}"} for i in range(int(n))]
try:
    run(prompts, [dep], out=out, progress=False, cancel_batches_on_interrupt=cancel == "1")
except KeyboardInterrupt:
    sys.exit(130)
"""


def start_child(ep: Any, name: str, out: Path, n: int, *, cancel: bool = False
                ) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", BATCH_TEST_KEY=ep.api_key)
    return subprocess.Popen([sys.executable, "-c", CHILD, ep.url, name, str(out), str(n),
                             "1" if cancel else "0"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
