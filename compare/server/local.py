"""`local_endpoint(...)`: run the local endpoint in a subprocess for the length of a `with` block.

A subprocess (not a thread) so llama.cpp's threads and the server's event loop never share the
caller's GIL or event loop: it works the same in a script, in pytest and inside a Jupyter kernel.
The key travels in the child's environment, never on its command line (visible in `ps`).
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from compare.errors import CompareError, ConfigError
from compare.server.backends import servable, unavailable
from compare.server.config import load_config, parse_config, select

READY_PREFIX = "compare-server listening on "


class LocalEndpoint:
    """A running local endpoint. `url` has no trailing slash; `api_key` is hidden in repr."""

    def __init__(self, *, deployments: str | Path | None = None,
                 config: dict[str, Any] | None = None, api_key: str | None = None,
                 host: str = "127.0.0.1", port: int = 0, only: list[str] | None = None,
                 log_path: str | Path | None = None, startup_timeout: float = 120) -> None:
        if deployments is not None and config is not None:
            raise ConfigError("give either deployments (a YAML path) or config (a dict)")
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        # Validate here first: a typo reports file and line without waiting for a subprocess.
        if config is not None:
            parsed = select(parse_config(config, "<config>"), only)
            self._tmp = tempfile.TemporaryDirectory(prefix="compare-endpoint-")
            path = Path(self._tmp.name) / "deployments.yaml"
            path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
            self.deployments_file = path
        else:
            parsed = load_config(deployments, only=only)
            self.deployments_file = Path(deployments) if deployments else None
        # Deployments whose optional dependencies are missing here: left out (named ones with
        # `only` are an error), with the install command in `unavailable`.
        self.unavailable: dict[str, str] = unavailable(parsed)
        if only:
            for name, reason in self.unavailable.items():
                raise ConfigError(f"deployment {name!r} cannot load: {reason}", field="only")
        self.config = servable(parsed)
        # The chat deployments a run calls online; global-batch deployments answer batch jobs
        # only, embeddings deployments the embeddings routes.
        deps = self.config.deployments
        self.deployment_names: list[str] = [
            d.name for d in deps if not d.is_batch and d.model_type == "chat-completion"]
        self.batch_deployment_names: list[str] = [d.name for d in deps if d.is_batch]
        self.embedding_deployment_names: list[str] = [
            d.name for d in deps if d.model_type == "embeddings"]
        self.api_key: str = api_key or secrets.token_urlsafe(24)
        self.host = host
        if log_path is None:
            if self._tmp is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="compare-endpoint-")
            log_path = Path(self._tmp.name) / "server.log"
        self.log_path = Path(log_path)
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None
        self._start(port, only, startup_timeout)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"LocalEndpoint(url={self.url!r}, deployments={self.deployment_names!r}, {state})"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The server process's id while it runs (tests kill exactly this server), else None."""
        return self._proc.pid if self.running and self._proc is not None else None

    def _start(self, port: int, only: list[str] | None, timeout: float) -> None:
        cmd = [sys.executable, "-m", "compare.server", "--host", self.host, "--port", str(port)]
        if self.deployments_file is not None:
            cmd += ["--deployments", str(self.deployments_file)]
        if only:
            cmd += ["--only", ",".join(only)]
        env = dict(os.environ)
        env["COMPARE_SERVER_KEY"] = self.api_key
        env["COMPARE_SERVER_PARENT_PID"] = str(os.getpid())  # the server exits if we die
        env["PYTHONUNBUFFERED"] = "1"
        self._log = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 (lives with proc)
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.DEVNULL, env=env,
            text=True, start_new_session=True,
        )
        atexit.register(self.stop)
        found: list[str] = []
        done = threading.Event()

        def read_stdout() -> None:
            assert self._proc is not None and self._proc.stdout is not None
            for line in self._proc.stdout:  # keeps draining so the child never blocks on it
                if line.startswith(READY_PREFIX) and not found:
                    found.append(line[len(READY_PREFIX):].strip())
                    done.set()
            done.set()

        threading.Thread(target=read_stdout, name="compare-endpoint-stdout", daemon=True).start()
        done.wait(timeout)
        if not found:
            self.stop()
            raise CompareError(
                f"the local endpoint did not start within {timeout:g} s; last log lines:\n"
                + self._log_tail()
            )
        self.url = found[0].rstrip("/")

    def concurrency_of(self, name: str) -> int | None:
        """Generations deployment `name` runs at once (more in flight only wait on the server,
        and their TTFT then measures that wait): 1 for a llama deployment, the configured
        max_concurrent_requests for a simulated one, None when unlimited."""
        for spec in self.config.deployments:
            if spec.name.lower() == name.lower():
                return spec.max_concurrent_requests
        raise ConfigError(f"the local endpoint serves no deployment {name!r}; it serves: "
                          f"{', '.join(self.config.names())}", field="name")

    def shared_groups(self, names: Iterable[str] | None = None) -> list[tuple[list[str], int]]:
        """Deployments among `names` (default: `deployment_names`) that share one capacity,
        with its size: `[(["smollm2", "smollm2-precise"], 1)]` for two deployments on one
        loaded model. Only groups of two or more; the runner's `shared_limits` takes them."""
        wanted = {n.lower() for n in (self.deployment_names if names is None else names)}
        groups = []
        for group, limit in self.config.capacity_groups():
            kept = [n for n in group if n.lower() in wanted]
            if len(kept) > 1:
                groups.append((kept, limit))
        return groups

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _admin(self, method: str, path: str) -> dict[str, Any]:
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"api-key": self.api_key})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.URLError as exc:
            raise CompareError(f"the local endpoint at {self.url} did not answer {path}: "
                               f"{getattr(exc, 'reason', exc)}") from None

    def stats(self) -> dict[str, Any]:
        """Per-deployment request counts: received, completed, in_flight, by_status, faults,
        prompts (by the last user message's first 200 characters)."""
        return self._admin("GET", "/_compare/stats")["deployments"]

    def reset_stats(self) -> None:
        """Zero the counters and the first-N-attempts fault counters."""
        self._admin("POST", "/_compare/reset")

    def stop(self, timeout: float = 10) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None
        atexit.unregister(self.stop)

    def __enter__(self) -> LocalEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            proc.kill()


def local_endpoint(deployments: str | Path | None = None, *, config: dict[str, Any] | None = None,
                   api_key: str | None = None, host: str = "127.0.0.1", port: int = 0,
                   only: list[str] | None = None, log_path: str | Path | None = None,
                   startup_timeout: float = 120) -> LocalEndpoint:
    """Start the local endpoint in a subprocess and wait until it accepts requests.

    Use as `with local_endpoint(only=["sim-fast"]) as ep: ...` (stops on exit), or keep the
    returned object and call `.stop()`. `deployments` is a YAML path (default: the shipped file),
    `config` a dict of the same shape; `only` limits which deployments load.
    """
    return LocalEndpoint(deployments=deployments, config=config, api_key=api_key, host=host,
                         port=port, only=only, log_path=log_path,
                         startup_timeout=startup_timeout)


def wait_until(predicate: Any, timeout: float = 5.0, interval: float = 0.02) -> bool:
    """Poll `predicate()` until true or timeout (tests use it for server-side counters)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
