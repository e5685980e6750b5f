"""Endpoint adapters: one per API style, behind one small async protocol.

base.py (ChatRequest, Completion, the Endpoint/SharedClient protocols) · pool.py (EndpointPool:
one SDK client per endpoint, the key read once) · deployment_endpoint.py (one deployment's view) ·
azure_inference.py, openai_sdk.py (+ azure_openai.py, openai_v1.py): the adapters ·
http_errors.py (HTTP answers and SDK exceptions → compare.errors, one table) · sse.py (event
streams) · completion.py (answers → Completion) · send_clock.py (when the request was written).
"""

from __future__ import annotations

from compare.endpoints.base import ChatRequest, Completion, Endpoint, SharedClient
from compare.endpoints.deployment_endpoint import DeploymentEndpoint
from compare.endpoints.pool import EndpointPool

__all__ = [
    "ChatRequest",
    "Completion",
    "DeploymentEndpoint",
    "Endpoint",
    "EndpointPool",
    "SharedClient",
]
