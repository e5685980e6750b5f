"""The adapters against a real model (SmolLM2-135M through llama.cpp) on the local endpoint."""

from __future__ import annotations

import pytest

from compare.deployments_file import local_deployments
from compare.endpoints import EndpointPool
from compare.endpoints.base import ChatRequest
from compare.server.local import LocalEndpoint

from .conftest import KINDS

pytestmark = [pytest.mark.llama, pytest.mark.timeout(600)]


async def test_same_greedy_answer_through_every_adapter(llama_endpoint: LocalEndpoint) -> None:
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    texts = {}
    async with EndpointPool() as pool:
        for kind in KINDS:
            (d,) = local_deployments(llama_endpoint, kind=kind, names=["smollm2-precise"])
            for stream in (True, False):
                c = await pool.get(d).chat(
                    ChatRequest(d.name, messages, stream=stream, max_tokens=12, temperature=0)
                )
                assert c.finish_reason in ("stop", "length")
                assert c.prompt_tokens and c.completion_tokens
                assert c.model and "SmolLM2" in c.model
                if stream:
                    assert c.first_token_at is not None and c.chunk_times
                texts[(kind, stream)] = c.text
    # Greedy decoding with a fresh cache: the same words whichever SDK and wire format.
    assert len(set(texts.values())) == 1, texts
    assert next(iter(texts.values())).strip()
