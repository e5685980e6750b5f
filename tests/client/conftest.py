"""One local endpoint whose simulated deployments each carry one fault, for the adapter tests.

A single server process (started once per session through the SERVER's `local_endpoint`) serves
every fault as its own deployment, so each test picks a behaviour by deployment name.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from compare.deployments import Deployment
from compare.endpoints import ChatRequest, EndpointPool
from compare.endpoints.deployment_endpoint import DeploymentEndpoint
from compare.prompts import Prompt
from compare.runner.plan import build_request
from compare.server.local import LocalEndpoint, local_endpoint

KINDS = ("azure-inference", "azure-openai", "openai")
HANG_S = 30.0
# Fixed timing so the adapters' timestamps can be checked against what the server was told.
TIMED = {"ttft_ms": 80, "itl_ms": 15, "tokens": 8}


def _sim(**extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "backend": "simulated",
        "simulated": {"seed": 7, "output_tokens": 6, "ttft_ms": 2, "itl_ms": 1},
    }
    spec.update(extra)
    return spec


def _fault(name: str, **options: Any) -> dict[str, Any]:
    return _sim(faults=[{"fault": name, **options}])


STATUS_FAULTS = ("400", "401", "403", "408", "422", "500", "502", "503", "504")

FAULT_CONFIG: dict[str, Any] = {
    "region": "test-region",
    "deployments": {
        "ok": _sim(),
        "timed": _sim(
            simulated={
                "seed": 3,
                "output_tokens": TIMED["tokens"],
                "ttft_ms": TIMED["ttft_ms"],
                "itl_ms": TIMED["itl_ms"],
            }
        ),
        "filtered": _sim(
            content_filter=[
                {"category": "violence", "severity": "medium", "terms": ["forbidden"]},
            ]
        ),
        "limited": _sim(capacity={"rpm": 1000, "tpm": 1000000}),
        "vectors": {"backend": "simulated", "model_type": "embeddings",
                    "simulated": {"seed": 5, "dimensions": 16}},
        **{f"f-{code}": _fault(code) for code in STATUS_FAULTS},
        "f-429": _fault("429", retry_after_s=1.5),
        "f-429-ms": _fault("429_retry_after_ms", retry_after_s=2.25),
        "f-429-none": _fault("429_no_retry_after"),
        "reset-before": _fault("reset_before_response"),
        "reset-mid": _fault("reset_mid_stream", after_tokens=3),
        "hang-before": _fault("hang_before_headers", hang_s=HANG_S),
        "hang-mid": _fault("hang_mid_stream", after_tokens=3, hang_s=HANG_S),
        "comments": _fault("sse_comments"),
        "crlf": _fault("crlf"),
        "error-event": _fault("error_event_mid_stream", after_tokens=3),
        "no-finish": _fault("no_finish_reason"),
    },
}


@pytest.fixture(scope="session")
def fault_endpoint() -> Iterator[LocalEndpoint]:
    with local_endpoint(config=FAULT_CONFIG) as ep:
        yield ep


def base_url(endpoint: LocalEndpoint, kind: str) -> str:
    return endpoint.url + "/openai/v1" if kind == "openai" else endpoint.url


@contextlib.asynccontextmanager
async def open_endpoint(d: Deployment) -> AsyncIterator[DeploymentEndpoint]:
    """One deployment's endpoint from a pool of its own, closed on exit."""
    async with EndpointPool() as pool:
        yield pool.get(d)


def request_for(d: Deployment, messages: list[dict[str, Any]], *, stream: bool = True,
                **overrides: Any) -> ChatRequest:
    """The request the runner would send: the deployment's defaults merged once."""
    return build_request(Prompt("test", messages), d, overrides, stream)
