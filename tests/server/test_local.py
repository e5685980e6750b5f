"""`local_endpoint(...)` and `python -m compare.server`: lifecycle, readiness, keys, logs."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compare.errors import CompareError, ConfigError
from compare.server.local import LocalEndpoint, local_endpoint, wait_until

from ._http import call, chat

TINY = {"deployments": {"tiny": {"backend": "simulated",
                                 "simulated": {"output_tokens": 3, "ttft_ms": 1, "itl_ms": 1}}}}


def _port_open(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, int(port))) == 0


def test_context_manager_starts_and_stops(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with local_endpoint(config=TINY, api_key="a-very-secret-key-123", log_path=log) as ep:
        assert isinstance(ep, LocalEndpoint)
        assert ep.url.startswith("http://127.0.0.1:") and not ep.url.endswith("/")
        assert ep.deployment_names == ["tiny"]
        assert _port_open(ep.url)
        pid = ep.pid
        assert pid is not None and pid == ep._proc.pid
        # The key travels in the environment, never on the command line.
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert b"a-very-secret-key-123" not in cmdline
        reply = asyncio.run(chat(ep, "tiny"))
        assert reply.status == 200
        # With a single deployment, /info needs no model name.
        info = asyncio.run(call(ep, "GET", "/info?api-version=2024-05-01-preview"))
        assert info.status == 200 and info.json["model_name"] == "tiny-simulated"
        assert ep.stats()["tiny"]["completed"] == 1
        assert "a-very-secret-key-123" not in repr(ep)
        url = ep.url
    assert not ep.running and ep.pid is None
    assert wait_until(lambda: not _port_open(url), timeout=5)
    text = log.read_text()
    assert "deployment=tiny status=200" in text
    assert "a-very-secret-key-123" not in text


def test_stop_is_idempotent_and_generated_keys_differ() -> None:
    first = local_endpoint(config=TINY)
    second = local_endpoint(config=TINY)
    try:
        assert first.api_key != second.api_key and len(first.api_key) >= 24
        assert first.url != second.url
    finally:
        first.stop()
        first.stop()
        second.stop()


def test_bad_config_fails_before_any_subprocess(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"deployments\.x\.backend"):
        local_endpoint(config={"deployments": {"x": {"backend": "gpu"}}})
    bad = tmp_path / "d.yaml"
    bad.write_text("deployments:\n  x:\n    backend: simulated\n    oops: 1\n")
    with pytest.raises(ConfigError, match=r"d\.yaml:4"):
        local_endpoint(bad)
    with pytest.raises(ConfigError):
        local_endpoint(bad, config=TINY)


def test_startup_failure_reports_the_log(tmp_path: Path) -> None:
    # A port already taken by another listener: the child exits, the error shows its log.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CompareError, match="did not start"):
            local_endpoint(config=TINY, port=port, startup_timeout=30)


def test_make_endpoint_server_fixture(make_endpoint_server) -> None:
    ep = make_endpoint_server(TINY)
    assert asyncio.run(chat(ep, "TINY")).status == 200


def _serve(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen([sys.executable, "-m", "compare.server", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("compare-server listening on "):
            break
    return proc, lines


def test_cli_generates_and_prints_a_key_once_when_none_given(tmp_path: Path) -> None:
    config = tmp_path / "d.yaml"
    config.write_text("deployments:\n  tiny: {backend: simulated}\n")
    env = {k: v for k, v in os.environ.items() if k != "COMPARE_SERVER_KEY"}
    proc, lines = _serve(["--deployments", str(config)], env)
    try:
        assert lines[-1].startswith("compare-server listening on http://127.0.0.1:")
        key_lines = [line for line in lines if "api key" in line]
        assert len(key_lines) == 1
        key = key_lines[0].rsplit(" ", 1)[1]
        ep = type("Ep", (), {"url": lines[-1].rsplit(" ", 1)[1], "api_key": key})()
        assert asyncio.run(chat(ep, "tiny")).status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert key not in err  # logs never carry the key
    assert "deployment=tiny status=200" in err


def test_cli_takes_the_key_from_env_and_reports_config_errors(tmp_path: Path) -> None:
    config = tmp_path / "d.yaml"
    config.write_text("deployments:\n  tiny: {backend: simulated}\n")
    env = dict(os.environ, COMPARE_SERVER_KEY="env-key-456")
    proc, lines = _serve(["--deployments", str(config)], env)
    try:
        assert not any("api key" in line for line in lines)
        ep = type("Ep", (), {"url": lines[-1].rsplit(" ", 1)[1], "api_key": "env-key-456"})()
        assert asyncio.run(chat(ep, "tiny")).status == 200
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    config.write_text("deployments:\n  tiny: {backend: simulated, extra: 1}\n")
    done = subprocess.run([sys.executable, "-m", "compare.server", "--deployments", str(config)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert f"{config}:2:" in done.stderr and "unknown key" in done.stderr
    assert "Traceback" not in done.stderr


def test_main_is_importable_for_the_cli() -> None:
    from compare.server.__main__ import main

    started = time.monotonic()
    with pytest.raises(SystemExit):
        main(["--help"])
    assert time.monotonic() - started < 5


def test_server_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(
        "import os, signal\n"
        "from compare.server.local import local_endpoint\n"
        f"ep = local_endpoint(config={TINY!r})\n"
        "print(ep._proc.pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == -signal.SIGKILL
    server_pid = int(done.stdout.split()[0])

    def gone() -> bool:
        try:
            os.kill(server_pid, 0)
        except ProcessLookupError:
            return True
        # A zombie (exited, not yet reaped by init) counts as gone.
        stat = Path(f"/proc/{server_pid}/stat")
        return not stat.exists() or stat.read_text().split()[2] == "Z"

    assert wait_until(gone, timeout=10)
