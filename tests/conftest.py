"""Shared fixtures: the local endpoint over real HTTP (owned by the server side, used by all).

- `sim_endpoint` (session): the shipped simulated deployments only (sim-fast, sim-slow); starts in
  about a second.
- `llama_endpoint` (session): the whole shipped deployments file, real GGUF models included.
- `make_endpoint_server(config, **kwargs)` (factory): an endpoint for an ad-hoc deployments dict
  (same shape as the YAML); every one it made is stopped at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from compare.server.local import LocalEndpoint, local_endpoint

SIM_DEPLOYMENTS = ["sim-fast", "sim-slow"]


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
