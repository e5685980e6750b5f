"""Sharded runs on a real two-node Ray cluster on this machine (`ray start --head` plus a second
node), against the local endpoint: a shard's worker killed mid-run, four shards sharing one
rate limit. Without Ray (the compare[ray] extra) these fail, or skip with COMPARE_SKIP_RAY=1.
Ray's object store is capped at 80 MB per node and its dashboard is off, so the cluster costs
about 2 GB of memory."""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from compare.results import Results
from tests.conftest import missing_part
from tests.scale._support import lines_written, resent_after_finished, rows_per_key, sim

if importlib.util.find_spec("ray") is None:
    missing_part("Ray", fix="pip install 'compare[ray]' (make test installs it)",
                 opt_out="COMPARE_SKIP_RAY")

ROOT = Path(__file__).resolve().parents[2]
STORE_BYTES = 80 * 2**20
START_TRIES = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray_cli(*args: str, env: dict[str, str]) -> None:
    cli = str(Path(sys.executable).with_name("ray"))
    proc = subprocess.run([cli, *args], env=env, capture_output=True, text=True, timeout=240,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ray {args[0]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def _ours(temp_dir: str) -> list[psutil.Process]:
    """The cluster's processes (every one carries our temp dir), with their children."""
    found: dict[int, psutil.Process] = {}
    for p in psutil.process_iter(["cmdline"]):
        if temp_dir in " ".join(p.info["cmdline"] or ()):
            found[p.pid] = p
            for child in p.children(recursive=True):
                found[child.pid] = child
    return list(found.values())


def _stop(temp_dir: str) -> None:
    procs = _ours(temp_dir)
    for p in procs:
        p.kill()
    psutil.wait_procs(procs, timeout=10)


def _start(temp_dir: str, env: dict[str, str]) -> str:
    port = _free_port()
    common = ["--node-ip-address=127.0.0.1", f"--object-store-memory={STORE_BYTES}",
              "--disable-usage-stats"]
    _ray_cli("start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
             f"--temp-dir={temp_dir}", *common, env=env)
    _ray_cli("start", f"--address=127.0.0.1:{port}", "--num-cpus=2", *common, env=env)
    return f"127.0.0.1:{port}"


@pytest.fixture(scope="module")
def ray_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of every Ray process here: token authentication with a token of our own.

    `ray start --head` turns token authentication on and, without a token, expects one in
    ~/.ray/auth_token, which a machine that never ran Ray (or a fresh HOME) lacks. Ray reads the
    token from the file RAY_AUTH_TOKEN_PATH names before ~/.ray, so the test writes a random
    token (256 bits, as Ray generates) to its own temp dir: the head, the second node and the
    driver share it, and the user's ~/.ray is neither needed nor written."""
    token_file = tmp_path_factory.mktemp("ray-auth") / "auth_token"
    token_file.write_text(secrets.token_hex(32))
    token_file.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_TOKEN"}
    return dict(env, PYTHONPATH=str(ROOT), RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token",
                RAY_AUTH_TOKEN_PATH=str(token_file))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, ray_env: dict[str, str]) -> Iterator[str]:
    env = ray_env
    # A raylet gives up when its agent takes over ~30 s to start, which happens on a machine
    # busy with other work: such a start is cleaned up and tried again.
    error: RuntimeError | None = None
    for _ in range(START_TRIES):
        temp_dir = str(tmp_path_factory.mktemp("ray"))
        try:
            address = _start(temp_dir, env)
        except RuntimeError as e:
            error = e
            _stop(temp_dir)
            continue
        try:
            yield address
        finally:
            _stop(temp_dir)
        return
    assert error is not None
    raise error


def _shard_task_workers() -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["cmdline"]):
        if "shard_task" in " ".join(p.info["cmdline"] or ()):
            out.append(p)
    return out


# The driver runs in its own process, as a user's script would: ray.init, the run, ray.shutdown.
DRIVER = """
import json, sys, compare
url, key, out, address, workers, n, rpm, slow = sys.argv[1:]
deps = [compare.Deployment(name="slow" if slow == "1" else "limited", kind="azure-inference",
                           endpoint=url, api_key=key, requests_per_minute=float(rpm) or None)]
res = compare.run([f"q{i}" for i in range(int(n))], deps, out=out, ray=address,
                  workers=int(workers), concurrency=6, progress=False)
print(json.dumps({"rows": len(res), "engine": res.manifest["sharding"]["engine"]}))
"""


def _driver(ep, out: Path, cluster: str, env: dict[str, str], *, workers: int, n: int,
            rpm: float = 0, slow: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", DRIVER, ep.url, ep.api_key, str(out),
                             cluster, str(workers), str(n), str(rpm), "1" if slow else "0"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(driver: subprocess.Popen[str]) -> dict[str, object]:
    stdout, stderr = driver.communicate(timeout=240)
    assert driver.returncode == 0, stderr[-3000:]
    return json.loads(stdout.strip().splitlines()[-1])


def test_ray_run_survives_a_killed_worker_and_resumes_as_one_run(
        cluster: str, ray_env: dict[str, str], make_endpoint_server, tmp_path: Path) -> None:
    ep = make_endpoint_server({"deployments": {"slow": sim(ttft_ms=40)}})
    out = tmp_path / "run"
    driver = _driver(ep, out, cluster, ray_env, workers=3, n=150, slow=True)
    deadline = time.monotonic() + 180
    while not (out.exists() and lines_written(out) >= 15):
        assert driver.poll() is None and time.monotonic() < deadline, driver.stderr.read()
        time.sleep(0.05)
    victims = _shard_task_workers()
    assert victims, "no shard task was seen running"
    victims[0].kill()
    assert _finish(driver) == {"rows": 150, "engine": "ray"}
    res = Results.load(out)
    assert len(res) == 150 and set(res.frame["status"]) == {"ok"}
    assert resent_after_finished(out) == []
    assert max(rows_per_key(out).values()) == 1
    written = lines_written(out)
    assert _finish(_driver(ep, out, cluster, ray_env, workers=3, n=150, slow=True))["rows"] == 150
    assert lines_written(out) == written  # the rerun replays every key, sends none
    assert Results.load(out).frame["cached"].all()


def test_four_ray_shards_share_one_rate_limit(cluster: str, ray_env: dict[str, str],
                                              make_endpoint_server, tmp_path: Path) -> None:
    rpm = 1200
    ep = make_endpoint_server({"deployments": {
        "limited": sim(ttft_ms=5, capacity={"rpm": rpm, "window_s": 10})}})
    n = 120
    _finish(_driver(ep, tmp_path / "run", cluster, ray_env, workers=4, n=n, rpm=rpm))
    f = Results.load(tmp_path / "run").frame
    assert len(f) == n and set(f["status"]) == {"ok"}
    assert int((f["attempts"] - 1).sum()) <= 0.02 * n
    sent = f["started_at"].sort_values()
    span = (sent.iloc[-1] - sent.iloc[0]).total_seconds()
    ideal = (n - 1) / (rpm / 60)
    assert 0.95 * ideal <= span <= 1.1 * ideal, (span, ideal)
