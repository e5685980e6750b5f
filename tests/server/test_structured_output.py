"""response_format (json_object / json_schema) and logprobs on the local endpoint's chat routes,
through real HTTP: the simulated backend answers schema-valid JSON, the llama backend is held to
the schema by a grammar and reports its own log probabilities in the OpenAI shape."""

from __future__ import annotations

import json
import math

import jsonschema
import pytest

from . import _schemas as schemas
from ._http import chat

GRADE_SCHEMA = {
    "type": "object",
    "properties": {"grade": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
                   "reason": {"type": "string"}},
    "required": ["grade", "reason"],
    "additionalProperties": False,
}
JSON_SCHEMA_FORMAT = {"type": "json_schema",
                      "json_schema": {"name": "grade", "schema": GRADE_SCHEMA, "strict": True}}
QUESTION = "Grade the answer 'Paris' to 'What is the capital of France?' from 1 to 5."


@pytest.mark.parametrize("kind", ["inference", "azure-openai", "openai"])
async def test_simulated_json_schema_reply_matches_the_schema(sim_endpoint, kind: str) -> None:
    for text in (QUESTION, "another question", "a third one"):
        reply = await chat(sim_endpoint, "sim-fast", kind, text=text,
                           response_format=JSON_SCHEMA_FORMAT, max_tokens=200)
        assert reply.status == 200, reply.raw
        content = reply.json["choices"][0]["message"]["content"]
        jsonschema.validate(json.loads(content), GRADE_SCHEMA)


async def test_simulated_json_object_reply_is_an_object(sim_endpoint) -> None:
    reply = await chat(sim_endpoint, "sim-fast", "openai",
                       response_format={"type": "json_object"}, max_tokens=200)
    assert isinstance(json.loads(reply.json["choices"][0]["message"]["content"]), dict)


@pytest.mark.parametrize("fmt, param", [
    ({"type": "json_schema"}, "response_format.json_schema"),
    ({"type": "json_schema", "json_schema": {"name": "x", "schema": "no"}},
     "response_format.json_schema"),
])
async def test_malformed_json_schema_is_a_400_naming_it(sim_endpoint, fmt, param) -> None:
    reply = await chat(sim_endpoint, "sim-fast", "openai", response_format=fmt)
    assert reply.status == 400
    assert reply.json["error"]["param"] == param


async def test_top_logprobs_without_logprobs_is_a_400(sim_endpoint) -> None:
    reply = await chat(sim_endpoint, "sim-fast", "openai", top_logprobs=3)
    assert reply.status == 400
    assert reply.json["error"]["param"] == "top_logprobs"


async def test_simulated_answers_logprobs_as_null_per_the_spec(sim_endpoint) -> None:
    reply = await chat(sim_endpoint, "sim-fast", "openai", logprobs=True, top_logprobs=2)
    assert reply.status == 200
    assert reply.json["choices"][0]["logprobs"] is None
    schemas.check(reply.json, schemas.OPENAI, "completion")


@pytest.mark.llama
@pytest.mark.parametrize("name", ["smollm2", "smollm2-precise"])
async def test_llama_json_schema_grammar_holds_a_small_model_to_the_schema(
        llama_endpoint, name: str) -> None:
    reply = await chat(llama_endpoint, name, "inference", text=QUESTION,
                       response_format=JSON_SCHEMA_FORMAT, max_tokens=80, temperature=0.0)
    assert reply.status == 200, reply.raw
    choice = reply.json["choices"][0]
    assert choice["finish_reason"] == "stop"
    jsonschema.validate(json.loads(choice["message"]["content"]), GRADE_SCHEMA)
    schemas.check(reply.json, schemas.INFERENCE, "completion")


@pytest.mark.llama
async def test_llama_json_object_is_valid_json(llama_endpoint) -> None:
    reply = await chat(llama_endpoint, "smollm2-precise", "openai", text="Name three colours.",
                       response_format={"type": "json_object"}, max_tokens=60)
    choice = reply.json["choices"][0]
    if choice["finish_reason"] == "stop":
        json.loads(choice["message"]["content"])
    else:  # cut by max_tokens: still a JSON prefix the grammar allowed
        assert choice["message"]["content"].lstrip().startswith(("{", "["))


@pytest.mark.llama
@pytest.mark.parametrize("kind", ["openai", "azure-openai"])
async def test_llama_logprobs_are_the_models_own_and_match_the_spec(
        llama_endpoint, kind: str) -> None:
    reply = await chat(llama_endpoint, "smollm2-precise", kind, text=QUESTION,
                       response_format=JSON_SCHEMA_FORMAT, max_tokens=40,
                       logprobs=True, top_logprobs=5)
    assert reply.status == 200, reply.raw
    schemas.check(reply.json, schemas.OPENAI, "completion")
    choice = reply.json["choices"][0]
    content = choice["logprobs"]["content"]
    assert len(content) == reply.json["usage"]["completion_tokens"]
    assert "".join(e["token"] for e in content) == choice["message"]["content"]
    for entry in content:
        assert entry["logprob"] <= 0.0
        tops = [t["logprob"] for t in entry["top_logprobs"]]
        assert len(tops) == 5 and tops == sorted(tops, reverse=True)
        assert math.fsum(math.exp(t) for t in tops) <= 1.0 + 1e-9
        # The chosen token is among the five most likely, or less likely than all of them.
        assert entry["logprob"] in tops or entry["logprob"] <= tops[-1]


@pytest.mark.llama
async def test_llama_logprobs_pass_through_on_the_inference_route(llama_endpoint) -> None:
    reply = await chat(llama_endpoint, "smollm2-precise", "inference", text=QUESTION,
                       max_tokens=8, logprobs=True, top_logprobs=3,
                       headers={"extra-parameters": "pass-through"})
    assert reply.status == 200, reply.raw
    content = reply.json["choices"][0]["logprobs"]["content"]
    assert len(content) == reply.json["usage"]["completion_tokens"]
    assert all(len(e["top_logprobs"]) == 3 for e in content)
