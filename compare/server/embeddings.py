"""Embeddings on the three routes: vectors from the deployment's backend, cut to `dimensions`
(and renormalised) when asked, as floats or base64 little-endian float32 as the client chose.
"""

from __future__ import annotations

import asyncio
import base64
import struct
import uuid
from typing import Any, cast

from aiohttp import web

from compare.server.backends.base import EmbeddingBackend, prompt_key
from compare.server.chat import check_online, check_operation, header_list
from compare.server.faults import strike_early
from compare.server.limits import admit
from compare.server.request_body import read_object
from compare.server.served import context, state
from compare.server.spec import AZURE_OPENAI, parse_embeddings


def _renormalised(vector: list[float]) -> list[float]:
    norm = sum(v * v for v in vector) ** 0.5
    return [v / norm for v in vector] if norm else vector


def encode(vector: list[float], dimensions: int | None, encoding_format: str) -> Any:
    """One vector as the client asked for it: the first `dimensions` (renormalised), as a list
    of floats or base64 of little-endian float32."""
    if dimensions is not None:
        vector = _renormalised(vector[:dimensions])
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector


async def handle_embeddings(request: web.Request, dialect: str) -> web.StreamResponse:
    """POST .../embeddings in `dialect`."""
    ctx = context(request)
    endpoint = state(request)
    body = await read_object(request, endpoint.config.max_body_bytes)
    dep = endpoint.pick(request, body.get("model") if dialect != AZURE_OPENAI else None)
    ctx.deployment = dep
    dep.stats.received += 1
    dep.stats.in_flight += 1
    spec = dep.spec
    check_online(spec)
    check_operation(spec, "embeddings")
    backend = cast(EmbeddingBackend, dep.backend)
    native = backend.embedding_dimensions()
    call = parse_embeddings(body, dialect, request.headers.get("extra-parameters"), native)
    if call.dropped:
        ctx.headers["x-compare-dropped-parameters"] = header_list(call.dropped)
    if call.extra:
        ctx.headers["x-compare-passed-parameters"] = header_list(call.extra)
    tokens = backend.count_input_tokens(call.inputs)
    admit(dep.limiter, spec.name, asyncio.get_running_loop().time(), tokens)
    fault = dep.faults.pick(prompt_key([{"content": t} for t in call.inputs]),
                            "\n".join(call.inputs)) if dep.faults else None
    if fault is not None:
        ctx.fault = fault.fault
        dep.stats.faults[fault.fault] += 1
        await strike_early(request, spec.name, fault)
    vectors = await backend.embed(call.inputs, ctx.t0)
    ctx.prompt_tokens = tokens
    data = [{"object": "embedding", "index": i,
             "embedding": encode(vector, call.dimensions, call.encoding_format)}
            for i, vector in enumerate(vectors)]
    result = {"id": f"embd-{uuid.uuid4().hex[:24]}", "object": "list", "data": data,
              "model": spec.model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
    return endpoint.json(request, result)
