"""`compare run` with batch deployments: `--kind azure-openai-batch`, `--batch-poll`,
`--cancel-batches-on-interrupt`, the printed turnaround, and errors as one line (exit 2)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from compare.server.local import local_endpoint

from ._support import CONFIG, batches_of, ledger, wait_for


@pytest.fixture(scope="module")
def ep():
    with local_endpoint(config=CONFIG) as endpoint:
        yield endpoint


def _cli(ep, tmp_path: Path, *flags: str) -> list[str]:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"c{i}", "prompt": f"cli prompt {i}"}) + "\n"
                               for i in range(20)))
    return [sys.executable, "-m", "compare.cli", "run", "-p", str(prompts), "--endpoint",
            ep.url, "--api-key-env", "BATCH_CLI_KEY", *flags, "-o", str(tmp_path / "out"),
            "--no-progress", "--no-charts"]


def _env(ep) -> dict[str, str]:
    return dict(os.environ, BATCH_CLI_KEY=ep.api_key, PYTHONUNBUFFERED="1")


def test_standard_and_batch_from_the_command_line(ep, tmp_path) -> None:
    cmd = _cli(ep, tmp_path, "--kind", "azure-openai", "--deployment", "std", "--kind",
               "azure-openai-batch", "--deployment", "twin-batch", "--batch-poll", "0.05")
    proc = subprocess.run(cmd, env=_env(ep), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "batch_turnaround_s_p50" in proc.stdout and "batch turnaround (s)" in proc.stdout
    assert "twin-batch" in proc.stdout and "completed, 20/20 done" in proc.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["batches"]["twin-batch"]["poll_s"] == 0.05
    assert manifest["batches"]["twin-batch"]["parts"][0]["status"] == "completed"


def test_batch_poll_below_a_minute_against_azure_is_a_usage_error(tmp_path) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"id": "a", "prompt": "x"}\n')
    cmd = [sys.executable, "-m", "compare.cli", "run", "-p", str(prompts), "--endpoint",
           "https://my-resource.openai.azure.com", "--kind", "azure-openai-batch",
           "--api-key-env", "BATCH_CLI_KEY", "--deployment", "gpt-4o-mini-batch",
           "--batch-poll", "5", "-o", str(tmp_path / "out"), "--no-progress"]
    proc = subprocess.run(cmd, env=dict(os.environ, BATCH_CLI_KEY="k" * 20),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "batch_poll_s must be at least 60 seconds" in proc.stderr
    soon = [*cmd[:cmd.index("--batch-poll")], "--batch-poll", "soon", "--no-progress"]
    bad = subprocess.run(soon,
                         env=dict(os.environ, BATCH_CLI_KEY="k" * 20), capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "positive number of seconds" in bad.stderr


def test_ctrl_c_with_the_cancel_flag(ep, tmp_path) -> None:
    cmd = _cli(ep, tmp_path, "--kind", "azure-openai-batch", "--deployment", "slow-batch",
               "--batch-poll", "0.05", "--cancel-batches-on-interrupt")
    proc = subprocess.Popen(cmd, env=_env(ep), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    out = tmp_path / "out"
    wait_for(lambda: any(e["event"] == "created" for e in ledger(out)) or
             proc.poll() is not None)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "cancelled 1 batch" in err and "run the same command again to resume" in err
    run_id = json.loads((out / "manifest.json").read_text())["run_id"]
    (batch,) = batches_of(ep, run_id)
    assert batch.cancelling_at is not None


def test_compare_deployments_checks_a_batch_deployment(ep, tmp_path) -> None:
    base = [sys.executable, "-m", "compare.cli", "deployments", "--endpoint", ep.url,
            "--kind", "azure-openai-batch", "--api-key-env", "BATCH_CLI_KEY", "--deployment",
            "twin-batch"]
    proc = subprocess.run(base, env=_env(ep), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "batch API answered" in proc.stdout
    refused = subprocess.run(base, env=dict(_env(ep), BATCH_CLI_KEY="not-the-key-0123456789"),
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "key refused" in refused.stdout + refused.stderr
