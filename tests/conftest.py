"""Shared fixtures: the local endpoint over real HTTP (owned by the server side, used by all).

- `sim_endpoint` (session): the shipped simulated deployments only (sim-fast, sim-slow); starts in
  about a second.
- `llama_endpoint` (session): the whole shipped deployments file, real GGUF models included.
- `make_endpoint_server(config, **kwargs)` (factory): an endpoint for an ad-hoc deployments dict
  (same shape as the YAML); every one it made is stopped at teardown.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from compare.server.local import LocalEndpoint, local_endpoint

SIM_DEPLOYMENTS = ["sim-fast", "sim-slow"]


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
