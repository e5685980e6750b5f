"""Backends of the local endpoint: what turns a validated request into a stream of text pieces.

`base` defines the interface (GenParams in, Generation out), `simulated` needs no model, `llama`
runs GGUF weights through llama-cpp-python (imported only when a llama deployment is served).
"""

from __future__ import annotations

from typing import Any

from compare.server.backends.base import Backend
from compare.server.backends.simulated import SimulatedBackend
from compare.server.deployment_spec import ServerConfig


def build_backends(config: ServerConfig) -> tuple[dict[str, Backend], Any]:
    """Backends by deployment name, and the llama model pool (None without llama deployments);
    llama weights load once per file."""
    backends: dict[str, Backend] = {}
    llama_specs = [d for d in config.deployments if d.backend == "llama"]
    pool = None
    if llama_specs:
        from compare.server.backends.llama import ModelPool

        pool = ModelPool()
        pool.load(llama_specs)
        for spec in llama_specs:
            backends[spec.name] = pool.backend(spec)
    for spec in config.deployments:
        if spec.backend == "simulated":
            backends[spec.name] = SimulatedBackend(spec)
    return backends, pool
