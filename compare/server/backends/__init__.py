"""Backends of the local endpoint: what turns a validated request into text or vectors.

`base` defines the interface (GenParams in, Generation out; vectors for embeddings), `simulated`
needs no model, `llama` runs GGUF weights through llama-cpp-python, `sentence` runs
sentence-transformers embedding models (each imported only when a deployment needs it).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from compare.server.backends.base import Backend
from compare.server.backends.simulated import SimulatedBackend
from compare.server.deployment_spec import ServerConfig


def unavailable(config: ServerConfig) -> dict[str, str]:
    """Deployments whose optional dependencies are missing here, with the reason (and the
    install command)."""
    from compare.server.backends.sentence import unavailable_reason

    out = {}
    for spec in config.deployments:
        reason = unavailable_reason(spec)
        if reason is not None:
            out[spec.name] = reason
    return out


def servable(config: ServerConfig) -> ServerConfig:
    """`config` without the deployments that cannot load here."""
    missing = unavailable(config)
    if not missing:
        return config
    kept = tuple(d for d in config.deployments if d.name not in missing)
    return dataclasses.replace(config, deployments=kept)


class Pools:
    """The loaded models behind the backends (closed when the server stops)."""

    def __init__(self) -> None:
        self.pools: list[Any] = []

    def close(self) -> None:
        """Close every pool (waits for running generations)."""
        for pool in self.pools:
            pool.close()


def build_backends(config: ServerConfig) -> tuple[dict[str, Backend], Pools]:
    """Backends by deployment name, and the pools of loaded models; each weights file or model
    directory loads once."""
    backends: dict[str, Backend] = {}
    pools = Pools()
    llama_specs = [d for d in config.deployments if d.backend == "llama"]
    if llama_specs:
        from compare.server.backends.llama import ModelPool

        pool = ModelPool()
        pool.load(llama_specs)
        pools.pools.append(pool)
        for spec in llama_specs:
            backends[spec.name] = pool.backend(spec)
    encoder_specs = [d for d in config.deployments if d.backend == "sentence-transformers"]
    if encoder_specs:
        from compare.server.backends.sentence import EncoderPool

        encoders = EncoderPool()
        pools.pools.append(encoders)
        for spec in encoder_specs:
            backends[spec.name] = encoders.backend(spec)  # type: ignore[assignment]
    for spec in config.deployments:
        if spec.backend == "simulated":
            backends[spec.name] = SimulatedBackend(spec)
    return backends, pools
