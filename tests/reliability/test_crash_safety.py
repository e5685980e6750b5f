"""Crash safety: a run killed at random points (SIGKILL) or interrupted (SIGINT) loses nothing.

A real run (a subprocess, like a user's script or `compare run`) against the local endpoint is
killed over and over at random points — during start-up, while resuming, with requests in
flight — and restarted on the same run directory. After every kill:

- every record that was finished before is still there (0 finished records lost);
- no finished request was sent again: the server's per-prompt request counts of finished
  prompts never move (0 finished requests re-sent);
- the checkpoint and `Results.load` always load, also with a torn last line (a kill mid-write,
  simulated by appending half a line), and `Results.load` shows every finished record.

The last restart runs to the end: every prompt ends with exactly one ok record.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from compare.checkpoint import latest_by_key, read_checkpoint
from compare.results import Results
from compare.server.local import local_endpoint
from tests.conftest import missing_part

from ._support import python_env, server_process

SIGKILL_LOOPS = int(os.environ.get("RELIABILITY_KILLS", "22"))
N_PROMPTS = max(400, 20 * SIGKILL_LOOPS)  # enough that the loop never finishes the run
CONCURRENCY = 4
DEPLOYMENT = "crash"
SEED = int(os.environ.get("RELIABILITY_SEED", "20261125"))

CONFIG = {"deployments": {DEPLOYMENT: {
    "backend": "simulated",
    "simulated": {"seed": 3, "output_tokens": 4, "ttft_ms": 40, "itl_ms": 2},
}}}

SCRIPT = f"""
import asyncio, sys
from compare.deployments import Deployment
from compare.runner import run
url, prompts, out, how = sys.argv[1:5]
dep = Deployment(name="crash", endpoint=url, kind="azure-inference", api_key_env="REL_KEY")
def go():
    run(prompts, [dep], out=out, concurrency={CONCURRENCY}, progress=False, max_attempts=2)
async def in_a_loop():
    # As in Jupyter: run() called while an event loop is running (it runs on a thread).
    go()
try:
    if how == "loop":
        # run_until_complete, not asyncio.run: like ipykernel, it leaves SIGINT's default
        # handler (KeyboardInterrupt in the main thread) in place.
        asyncio.new_event_loop().run_until_complete(in_a_loop())
    else:
        go()
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.fixture(scope="module")
def server():
    with local_endpoint(config=CONFIG) as ep:
        yield ep


def _prompt_text(i: int) -> str:
    return f"crash safety prompt number {i}"


@pytest.fixture
def prompts_file(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"id": f"p{i:03d}", "prompt": _prompt_text(i)}) + "\n"
                            for i in range(N_PROMPTS)))
    return path


class CrashLoop:
    """One run directory, restarted again and again; checks the invariants after every stop."""

    def __init__(self, server: Any, prompts: Path, out: Path, rng: random.Random) -> None:
        self.server = server
        self.prompts = prompts
        self.out = out
        self.rng = rng
        self.finished: set[str] = set()  # prompt ids with an ok record
        self.counts: dict[str, int] = {}  # server requests per prompt text at the last stop
        self.kills = 0
        self.torn = 0
        self.completed = False

    def _command(self, cli: bool | str) -> list[str]:
        if cli is True:
            return [sys.executable, "-m", "compare.cli", "run", "-p", str(self.prompts),
                    "--endpoint", self.server.url, "--kind", "azure-inference",
                    "--deployment", DEPLOYMENT, "--concurrency", str(CONCURRENCY),
                    "--max-attempts", "2", "-o", str(self.out), "--no-progress"]
        how = "loop" if cli == "loop" else "plain"
        return [sys.executable, "-c", SCRIPT, self.server.url, str(self.prompts), str(self.out),
                how]

    def _lines(self) -> int:
        try:
            return (self.out / "records.jsonl").read_bytes().count(b"\n")
        except FileNotFoundError:
            return 0

    def step(self, sig: signal.Signals, *, cli: bool | str = False, early: bool = False) -> None:
        env = python_env(REL_KEY=self.server.api_key, AZURE_AI_CHAT_KEY=self.server.api_key)
        start_lines = self._lines()
        proc = subprocess.Popen(self._command(cli), env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        if early:
            # Anywhere in start-up (imports, reading the checkpoint, opening clients) or in the
            # first requests, but never more than a few records in.
            until = time.monotonic() + self.rng.uniform(0.05, 2.0)
            while (time.monotonic() < until and self._lines() < start_lines + 10
                   and proc.poll() is None):
                time.sleep(0.005)
        else:
            target = start_lines + self.rng.randint(1, 10)
            deadline = time.monotonic() + 60
            while self._lines() < target and proc.poll() is None:
                assert time.monotonic() < deadline, "the run made no progress"
                time.sleep(0.005)
            time.sleep(self.rng.uniform(0, 0.03))  # mid-request, mid-write, between writes
        if proc.poll() is None:
            proc.send_signal(sig)
            self.kills += 1
        _, err = proc.communicate(timeout=60)
        if proc.returncode == 0:
            self.completed = True
        elif sig == signal.SIGINT and not early:
            assert proc.returncode == 130, err
            assert "Traceback" not in err, err
        else:
            assert proc.returncode == -signal.SIGKILL, err
        self.check(after_sigint=sig == signal.SIGINT and proc.returncode == 130)

    def tear(self) -> None:
        """What a kill in the middle of a write leaves: the first part of a line, no newline."""
        path = self.out / "records.jsonl"
        if not path.exists() or not path.read_bytes().strip():
            return
        last = path.read_bytes().rstrip(b"\n").rsplit(b"\n", 1)[-1]
        with open(path, "ab") as f:
            f.write(last[: self.rng.randint(1, len(last) - 1)])
        self.torn += 1

    def check(self, *, after_sigint: bool = False) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the torn-line notice
            rows = read_checkpoint(self.out)
            loaded = Results.load(self.out) if self.out.exists() else None
        ok = [r for r in rows if r["status"] == "ok"]
        finished = {r["prompt_id"] for r in ok}
        lost = self.finished - finished
        assert not lost, f"finished records lost after a kill: {sorted(lost)[:5]}"
        # A finished key is written once: never re-sent and re-recorded.
        assert len(ok) == len(finished), "a finished request was recorded twice"
        if loaded is not None:
            in_results = set(loaded.frame.loc[loaded.frame["status"] == "ok", "prompt_id"])
            missing = finished - in_results
            assert not missing, f"Results.load misses finished records: {sorted(missing)[:5]}"
            if after_sigint:
                assert loaded.manifest.get("status") == "interrupted"
                assert len(loaded) == len(latest_by_key(rows))
        counts = dict(self.server.stats()[DEPLOYMENT]["prompts"])
        for pid in self.finished:
            text = _prompt_text(int(pid[1:]))
            assert counts.get(text, 0) == self.counts.get(text, 0), (
                f"finished prompt {pid} was sent again")
        self.finished = finished
        self.counts = counts

    def finish(self) -> Results:
        env = python_env(REL_KEY=self.server.api_key)
        proc = subprocess.run(self._command(False), env=env, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
        before = set(self.finished)
        self.check()
        res = Results.load(self.out)
        frame = res.frame
        assert len(frame) == N_PROMPTS and frame["prompt_id"].is_unique
        assert (frame["status"] == "ok").all()
        # Exactly the records finished before the last start were replayed, not re-sent.
        assert set(frame.loc[frame["cached"], "prompt_id"]) == before
        counts = self.server.stats()[DEPLOYMENT]["prompts"]
        assert all(counts.get(_prompt_text(i), 0) >= 1 for i in range(N_PROMPTS))
        return res


def test_sigkill_at_random_points_loses_nothing(server, prompts_file, tmp_path) -> None:
    rng = random.Random(SEED)
    loop = CrashLoop(server, prompts_file, tmp_path / "run", rng)
    for i in range(SIGKILL_LOOPS):
        loop.step(signal.SIGKILL, early=rng.random() < 0.25)
        if i % 4 == 3:
            loop.tear()
        assert not loop.completed, "the run finished before the kill loop ended; add prompts"
    finished_before = len(loop.finished)
    res = loop.finish()
    sent = sum(server.stats()[DEPLOYMENT]["prompts"].values())
    print(f"\nSIGKILL loop (seed {SEED}): {loop.kills} kills, {loop.torn} torn lines, "
          f"{finished_before} records finished before the last start, "
          f"{int(res.frame['cached'].sum())} replayed, {sent} requests for {N_PROMPTS} prompts "
          f"({sent - N_PROMPTS} re-sent after being in flight at a kill)")
    assert loop.kills >= 20


def test_sigint_keeps_everything_and_mixes_with_sigkill(server, prompts_file, tmp_path) -> None:
    rng = random.Random(SEED + 1)
    loop = CrashLoop(server, prompts_file, tmp_path / "run", rng)
    # Ctrl-C through the CLI, through a script using run(), and through run() called inside a
    # running event loop (a Jupyter kernel interrupt); a SIGKILL in between leaves
    # results.parquet of the interrupted run behind, older than the checkpoint.
    plan = [(signal.SIGINT, True), (signal.SIGINT, False), (signal.SIGINT, "loop"),
            (signal.SIGKILL, False), (signal.SIGINT, True), (signal.SIGKILL, "loop"),
            (signal.SIGINT, "loop")]
    for sig, cli in plan:
        loop.step(sig, cli=cli)
    res = loop.finish()
    assert res.manifest["status"] == "complete"


async def test_explorer_stop_keeps_every_finished_record(server, tmp_path) -> None:
    """The explorer's Stop button: finished records stay in its checkpoint, results and view."""
    if importlib.util.find_spec("ipywidgets") is None:
        missing_part("ipywidgets", fix="pip install '.[notebook]' (make test installs it)",
                     opt_out="COMPARE_SKIP_NOTEBOOK")
    import asyncio

    from compare.deployments_file import local_deployments
    from compare.explorer import Explorer

    before = dict(server.stats()[DEPLOYMENT]["prompts"])
    texts = [f"explorer stop {i}" for i in range(200)]
    explorer = Explorer(local_deployments(server, names=[DEPLOYMENT]), prompts=texts,
                        out_dir=tmp_path / "explorer", concurrency=CONCURRENCY)
    explorer.run_clicked()
    deadline = time.monotonic() + 60
    while len(explorer.records) < 10:
        assert time.monotonic() < deadline and explorer.error is None, explorer.error
        await asyncio.sleep(0.01)
    explorer.stop_clicked()
    results = await explorer.wait()
    assert explorer.stopped and results is not None
    run_dirs = list((tmp_path / "explorer").iterdir())
    assert len(run_dirs) == 1
    rows = read_checkpoint(run_dirs[0])
    shown = {(r.prompt_id, r.repeat) for r in explorer.records}
    assert 10 <= len(rows) < len(texts)
    assert {(r["prompt_id"], r["repeat"]) for r in rows} == shown
    assert set(results.frame["prompt_id"]) == {r["prompt_id"] for r in rows}
    loaded = Results.load(run_dirs[0])
    assert len(loaded) == len(rows) and loaded.manifest["status"] == "interrupted"
    # Each finished prompt was sent exactly once.
    counts = server.stats()[DEPLOYMENT]["prompts"]
    by_id = dict(zip(explorer.prompts.ids, texts, strict=True))
    for row in rows:
        text = by_id[row["prompt_id"]]
        assert counts.get(text, 0) - before.get(text, 0) == 1


async def test_the_endpoint_dying_mid_run_loses_nothing(tmp_path) -> None:
    """The server is SIGKILLed mid-run: the run still ends (no hang), one record per key; a
    rerun against a new endpoint sends exactly the unfinished ones."""
    import asyncio

    from compare.deployments_file import local_deployments
    from compare.runner import Backoff, arun

    prompts = [f"server death {i}" for i in range(120)]
    out = tmp_path / "run"
    with local_endpoint(config=CONFIG) as first:
        server_proc = server_process(first)
        deps = local_deployments(first, names=[DEPLOYMENT], read_timeout_s=2,
                                 connect_timeout_s=1)
        seen: list[str] = []
        task = asyncio.ensure_future(arun(
            prompts, deps, out=out, concurrency=CONCURRENCY, max_attempts=2,
            backoff=Backoff(base_s=0.01, cap_s=0.02), progress=False,
            on_record=lambda r: seen.append(r.status)))
        deadline = time.monotonic() + 60
        while len(seen) < 20:
            assert time.monotonic() < deadline and not task.done()
            await asyncio.sleep(0.005)
        server_proc.kill()
        res = await asyncio.wait_for(task, 60)
    frame = res.frame
    assert len(frame) == len(prompts) and frame["prompt_id"].is_unique
    ok = frame[frame["status"] == "ok"]
    failed = frame[frame["status"] != "ok"]
    assert len(ok) >= 20 and len(failed) > 0
    assert set(failed["error_type"]) <= {"TransportError", "IncompleteStreamError",
                                         "EndpointTimeout"}, set(failed["error_type"])
    assert res.manifest["status"] == "complete"

    with local_endpoint(config=CONFIG) as second:
        deps = local_deployments(second, names=[DEPLOYMENT])
        again = await arun(prompts, deps, out=out, concurrency=CONCURRENCY, progress=False)
        sent = second.stats()[DEPLOYMENT]["received"]
    assert len(again) == len(prompts) and (again.frame["status"] == "ok").all()
    assert sent == len(failed)
    assert set(again.frame.loc[again.frame["cached"], "prompt_id"]) == set(ok["prompt_id"])
