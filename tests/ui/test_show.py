"""`compare show RUN`: a saved run side by side in the terminal, exactly as printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from compare.records import Record
from compare.results import Results


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run with fixed texts and latencies: two prompts, three deployments, two repeats."""
    rows = []
    answers = {
        "alpha": "Paris is the capital of France.",
        "beta": "The capital of France is Paris, a city on the Seine with about two million "
                "people.",
    }
    for repeat in (0, 1):
        for name, text in answers.items():
            rows.append(Record(run_id="r1", prompt_id="capital", deployment=name, repeat=repeat,
                               endpoint_kind="azure-inference", output=text,
                               latency_s=0.25 + repeat, ttft_s=0.1))
            rows.append(Record(run_id="r1", prompt_id="tea", deployment=name, repeat=repeat,
                               endpoint_kind="azure-inference", output="Boil water.\nSteep.",
                               latency_s=1.5, ttft_s=0.2))
        rows.append(Record(run_id="r1", prompt_id="capital", deployment="gamma", repeat=repeat,
                           endpoint_kind="azure-inference", status="content_filtered",
                           error_type="ContentFilterError", error_message="violence: medium"))
        rows.append(Record(run_id="r1", prompt_id="tea", deployment="gamma", repeat=repeat,
                           endpoint_kind="azure-inference", status="timeout",
                           error_type="EndpointTimeout", error_message="read timeout"))
    prompts = pd.DataFrame({"id": ["capital", "tea"],
                            "prompt": ["What is the capital of France?", "How do I make tea?"]})
    out = tmp_path_factory.mktemp("show") / "run"
    Results(Results.from_records(rows).frame, prompts=prompts).save(out)
    return out


def show(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "compare", "show", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "COLUMNS": "100"})


def test_side_by_side_in_columns_with_status_under_each(run_dir: Path) -> None:
    done = show(str(run_dir), "--width", "80")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout == """\
== capital =====================================================================
What is the capital of France?

alpha                    | beta                     | gamma
======================== | ======================== | ========================
Paris is the capital of  | The capital of France is | (the content filter
France.                  | Paris, a city on the     | answered instead of the
                         | Seine with about two     | model)
                         | million people.          |
------------------------ | ------------------------ | ------------------------
ok, 0.25 s, repeat=0 of  | ok, 0.25 s, repeat=0 of  | content_filtered,
2 repeats                | 2 repeats                | repeat=0 of 2 repeats

== tea =========================================================================
How do I make tea?

alpha                    | beta                     | gamma
======================== | ======================== | ========================
Boil water.              | Boil water.              | EndpointTimeout: read
Steep.                   | Steep.                   | timeout
------------------------ | ------------------------ | ------------------------
ok, 1.50 s, repeat=0 of  | ok, 1.50 s, repeat=0 of  | timeout, repeat=0 of 2
2 repeats                | 2 repeats                | repeats
"""


def test_narrow_terminal_gets_bands_and_cut_answers(run_dir: Path) -> None:
    done = show(str(run_dir), "--width", "30", "--prompt", "capital", "--deployment", "beta",
                "--deployment", "alpha", "--repeat", "1", "--max-lines", "2")
    assert done.returncode == 0
    assert done.stdout == """\
== capital ===================
What is the capital of France?

beta
==============================
The capital of France is
... +2 lines (--full)
------------------------------
ok, 1.25 s, repeat=1 of 2
repeats

alpha
==============================
Paris is the capital of
France.
------------------------------
ok, 1.25 s, repeat=1 of 2
repeats
"""
    assert all(len(line) <= 30 for line in done.stdout.splitlines())


def test_unknown_prompt_or_deployment_is_one_line(run_dir: Path) -> None:
    done = show(str(run_dir), "--prompt", "capitol")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (f"error: --prompt: {run_dir} has no prompt 'capitol' (did you mean "
                           "'capital'?); it has: capital, tea\n")
    done = show(str(run_dir), "--deployment", "delta")
    assert done.returncode == 2
    assert done.stderr == (f"error: --deployment: {run_dir} has no deployment 'delta' (did you "
                           "mean 'beta'?); it has: alpha, beta, gamma\n")
    done = show(str(run_dir.parent / "nope"))
    assert done.returncode == 2
    assert done.stderr == f"error: {run_dir.parent / 'nope'}: no such run directory\n"
