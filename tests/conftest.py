"""Shared fixtures: the local endpoint over real HTTP (owned by the server side, used by all).

- `sim_endpoint` (session): the shipped simulated deployments only (sim-fast, sim-slow); starts in
  about a second.
- `llama_endpoint` (session): the whole shipped deployments file, real GGUF models included.
- `make_endpoint_server(config, **kwargs)` (factory): an endpoint for an ad-hoc deployments dict
  (same shape as the YAML); every one it made is stopped at teardown.

A test that needs an optional part (Ray, chromium, a model package) calls `missing_part` when
the part is absent: the test fails with the fix, unless the part's opt-out variable is set to 1,
and then it is skipped and the run's summary lists the opt-out. No test skips silently.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest

from compare.server.local import LocalEndpoint, local_endpoint

SIM_DEPLOYMENTS = ["sim-fast", "sim-slow"]
# Opt-out variable → how many tests it skipped in this run (for the terminal summary).
OPT_OUTS_USED: Counter[str] = Counter()


def missing_part(what: str, *, fix: str, opt_out: str) -> NoReturn:
    """Fail the calling test because `what` is missing (saying `fix`); skip it instead when the
    environment variable `opt_out` is 1, counting the skip for the run's summary."""
    if os.environ.get(opt_out) == "1":
        OPT_OUTS_USED[opt_out] += 1
        pytest.skip(f"{what} is missing; skipped because {opt_out}=1", allow_module_level=True)
    pytest.fail(f"{what} is missing: {fix}, or set {opt_out}=1 to skip the tests that need it",
                pytrace=False)


def opt_out_summary(used: Counter[str]) -> list[str]:
    """The lines the run ends with when an opt-out skipped tests (none when nothing was)."""
    if not used:
        return []
    return ["tests skipped by opt-out variables (the parts they need were missing):",
            *(f"  {var}=1: {n} skipped" for var, n in sorted(used.items()))]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in opt_out_summary(OPT_OUTS_USED):
        terminalreporter.write_line(line, yellow=True)


def pytest_configure(config: pytest.Config) -> None:
    # A test run started in the background by a non-interactive shell (`cmd &`, nohup, some CI
    # runners) starts with SIGINT ignored, and every process it spawns inherits that: the tests
    # that press Ctrl-C on a child (SIGINT → exit 130) would see it run to the end. A Python
    # handler here is reset to the default on exec, so children handle SIGINT as on a terminal.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def sim_endpoint() -> Iterator[LocalEndpoint]:
    with local_endpoint(only=SIM_DEPLOYMENTS) as ep:
        yield ep


@pytest.fixture(scope="session")
def llama_endpoint() -> Iterator[LocalEndpoint]:
    with local_endpoint(startup_timeout=300) as ep:
        yield ep


@pytest.fixture
def make_endpoint_server() -> Iterator[Callable[..., LocalEndpoint]]:
    started: list[LocalEndpoint] = []

    def make(config: dict[str, Any], **kwargs: Any) -> LocalEndpoint:
        ep = local_endpoint(config=config, **kwargs)
        started.append(ep)
        return ep

    yield make
    for ep in started:
        ep.stop()
