"""Sharded runs over worker processes against the local endpoint, over real HTTP: one run
directory, resume, a worker or the driver killed mid-run, four shards under one rate limit."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import compare
from compare.errors import ConfigError
from compare.results import Results
from compare.runner.progress import BAR_FACTORY
from tests.scale._support import (
    lines_written,
    resent_after_finished,
    rows_per_key,
    shard_processes,
    sim,
    wait_for_lines,
)

ROOT = Path(__file__).resolve().parents[2]


class RecordingBar:
    """A tqdm stand-in (our progress interface): what the run's one bar was told."""

    def __init__(self) -> None:
        self.created: list[int] = []
        self.n = 0
        self.postfix = ""
        self.closed = False

    def __call__(self, *, total: int, initial: int = 0, **_: object) -> RecordingBar:
        self.created.append(total)
        self.n = initial
        return self

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def close(self) -> None:
        self.closed = True


def test_two_workers_make_one_run_that_resumes_without_sending(make_endpoint_server,
                                                               tmp_path: Path) -> None:
    ep = make_endpoint_server({"deployments": {"a": sim(seed=1), "b": sim(seed=2)}})
    prompts = [f"question {i}" for i in range(40)]
    out = tmp_path / "run"
    res = compare.run(prompts, ep, repeats=2, out=out, workers=2, progress=False)
    assert len(res) == 160 and set(res.frame["status"]) == {"ok"}
    assert not res.frame.duplicated(["prompt_id", "deployment", "repeat"]).any()
    shard_files = sorted(p.name for p in out.glob("records-*.jsonl"))
    assert len(shard_files) == 2 and not (out / "records.jsonl").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["rows"] == 160
    assert manifest["sharding"]["shards"] == 2 and manifest["parts"]["complete"]
    # The same keys as an in-process run, each answered once.
    assert sorted(rows_per_key(out).values()) == [1] * 160
    pd.testing.assert_frame_equal(Results.summarize_dir(out), res.summary(),
                                  check_dtype=False)

    written = lines_written(out)
    again = compare.run(prompts, ep, repeats=2, out=out, workers=2, progress=False)
    assert lines_written(out) == written  # nothing sent again
    assert len(again) == 160 and again.frame["cached"].all()
    assert again.run_id == res.run_id

    narrow = Results.load(out, columns=["deployment", "status", "latency_s"])
    assert list(narrow.frame.columns) == ["deployment", "status", "latency_s"]
    assert isinstance(narrow.frame["deployment"].dtype, pd.CategoricalDtype)  # one code a row
    assert str(res.frame["deployment"].dtype) == "string"  # the whole frame: as in-process
    # An in-process rerun in the same directory reads the shards' rows as its own.
    inproc = compare.run(prompts, ep, repeats=2, out=out, progress=False)
    assert inproc.frame["cached"].all() and lines_written(out) == written


async def test_a_killed_worker_is_restarted_and_resends_no_finished_key(
        make_endpoint_server, tmp_path: Path) -> None:
    ep = make_endpoint_server({"deployments": {"slow": sim(ttft_ms=40)}})
    out = tmp_path / "run"
    bar = RecordingBar()
    BAR_FACTORY.set(bar)  # one bar for the whole run, fed by both shards
    task = asyncio.ensure_future(compare.arun(
        [f"q{i}" for i in range(120)], ep, out=out, workers=2, concurrency=4))
    await wait_for_lines(out, 15)
    victims = shard_processes()
    assert len(victims) == 2
    victims[0].send_signal(signal.SIGKILL)
    res = await asyncio.wait_for(task, 120)
    assert len(res) == 120 and set(res.frame["status"]) == {"ok"}
    assert resent_after_finished(out) == []
    assert max(rows_per_key(out).values()) == 1
    assert bar.created == [120] and bar.n == 120 and bar.closed
    assert "slow 120 done/0 " in bar.postfix


DRIVER = """
import sys, compare
from compare.deployments import Deployment
deps = [Deployment(name="slow", kind="azure-inference", endpoint=sys.argv[1], api_key=sys.argv[2])]
compare.run([f"q{i}" for i in range(150)], deps, out=sys.argv[3], workers=2, concurrency=4,
            progress=False)
"""


async def test_a_killed_driver_stops_its_shards_and_the_rerun_finishes(
        make_endpoint_server, tmp_path: Path) -> None:
    import psutil

    ep = make_endpoint_server({"deployments": {"slow": sim(ttft_ms=40)}})
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, ep.url, ep.api_key, str(out)],
                              env=env)
    try:
        await wait_for_lines(out, 15)
        shards = shard_processes(psutil.Process(driver.pid))
        assert len(shards) == 2
        driver.send_signal(signal.SIGKILL)
        _, alive = psutil.wait_procs(shards, timeout=15)
        assert alive == []  # each shard saw the coordinator go and stopped
    finally:
        driver.kill()
        driver.wait()
    kept = lines_written(out)
    assert 15 <= kept < 150
    deps = [compare.Deployment(name="slow", kind="azure-inference", endpoint=ep.url,
                               api_key=ep.api_key)]
    res = await compare.arun([f"q{i}" for i in range(150)], deps, out=out, workers=2,
                             concurrency=4, progress=False)
    assert len(res) == 150 and set(res.frame["status"]) == {"ok"}
    assert int(res.frame["cached"].sum()) >= 15
    assert resent_after_finished(out) == []


def test_four_shards_hold_one_deployments_rate_limit_together(make_endpoint_server,
                                                              tmp_path: Path) -> None:
    rpm = 1200  # 20 requests/s; the service refuses beyond 200 in any 10 s
    ep = make_endpoint_server({"deployments": {
        "limited": sim(ttft_ms=5, capacity={"rpm": rpm, "window_s": 10})}})
    deps = [compare.Deployment(name="limited", kind="azure-inference", endpoint=ep.url,
                               api_key=ep.api_key, requests_per_minute=rpm)]
    n = 160
    res = compare.run([f"q{i}" for i in range(n)], deps, out=tmp_path / "run", workers=4,
                      progress=False)
    f = res.frame
    assert len(f) == n and set(f["status"]) == {"ok"}
    refused = int((f["attempts"] - 1).sum())
    assert refused <= 0.02 * n
    sent = f["started_at"].sort_values()
    span = (sent.iloc[-1] - sent.iloc[0]).total_seconds()
    ideal = (n - 1) / (rpm / 60)
    assert span <= 1.1 * ideal, (span, ideal)
    assert span >= 0.95 * ideal  # paced, not a burst the service happened to accept


def test_sharded_runs_say_what_they_need(tmp_path: Path) -> None:
    deps = [compare.Deployment(name="x", kind="openai", endpoint="http://127.0.0.1:9",
                               api_key="k" * 10)]
    with pytest.raises(ConfigError, match="need out=DIR"):
        compare.run(["hi"], deps, workers=2)
    with pytest.raises(ConfigError, match="workers must be a positive integer"):
        compare.run(["hi"], deps, workers=0, out=tmp_path)
    with pytest.raises(ConfigError, match="on_record is not available"):
        compare.run(["hi"], deps, workers=2, out=tmp_path, on_record=print)
    with pytest.raises(ConfigError, match=r"no record column .latncy_s.*latency_s"):
        Results.load(tmp_path, columns=["latncy_s"])


def test_cli_run_with_workers(make_endpoint_server, tmp_path: Path) -> None:
    ep = make_endpoint_server({"deployments": {"a": sim(seed=1), "b": sim(seed=2)}})
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"question {i}"}) + "\n"
                               for i in range(10)))
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "compare", "run", "-p", str(prompts), "--endpoint", ep.url,
         "--kind", "azure-inference", "--deployment", "a", "--deployment", "b", "--out",
         str(out), "--workers", "2", "--no-charts", "--no-progress"],
        capture_output=True, text=True, timeout=240, check=False,
        env=dict(os.environ, PYTHONPATH=str(ROOT), AZURE_AI_CHAT_KEY=ep.api_key))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"results: {out}/ (parts/*.parquet, manifest.json, records-*.jsonl)" in proc.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sharding"] == {**manifest["sharding"], "engine": "processes", "shards": 2}
    assert len(Results.load(out)) == 20
