"""Structured output and log probabilities on the local endpoint's chat routes.

`response_format` ({"type": "json_object"} or {"type": "json_schema", "json_schema": {"name",
"schema"}}) is read here once; the llama backend turns it into a llama.cpp grammar (so a small
model can only produce valid JSON), the simulated backend writes a JSON value that matches the
schema. `logprobs` / `top_logprobs` are read here too and answered in the OpenAI shape
(`choices[0].logprobs.content[]`: token, logprob, bytes, top_logprobs).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any, Final

from compare.server.azure_errors import bad

MAX_TOP_LOGPROBS: Final = 20  # OpenAI's bound on top_logprobs


@dataclass(frozen=True)
class ResponseFormat:
    """What the client asked the reply to be: "json_object" (any JSON object) or
    "json_schema" (a JSON value matching `schema`)."""

    type: str
    schema: dict[str, Any] | None = None


def parse_response_format(body: dict[str, Any]) -> ResponseFormat | None:
    """The request's response_format, None for absent or {"type": "text"}; 400 when malformed."""
    fmt = body.get("response_format")
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        raise bad("'response_format.type' must be text, json_object or json_schema",
                  "response_format")
    if kind == "text":
        return None
    if kind == "json_object":
        return ResponseFormat("json_object")
    spec = fmt.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or \
            not isinstance(schema, dict):
        raise bad("'response_format.json_schema' must be an object with a 'name' (string) and "
                  "a 'schema' (JSON Schema object)", "response_format.json_schema")
    return ResponseFormat("json_schema", schema)


def parse_logprobs(body: dict[str, Any], extra: dict[str, Any]) -> int | None:
    """How many alternatives per token the client wants (0 = the chosen token only), or None
    when it asked for no log probabilities. Read from the body or, on the inference route, from
    pass-through parameters (taken out of `extra`: they are honoured, not passed on)."""
    source = extra if "logprobs" in extra else body
    wanted = source.get("logprobs")
    top = source.get("top_logprobs")
    extra.pop("logprobs", None)
    extra.pop("top_logprobs", None)
    if wanted is not None and not isinstance(wanted, bool):
        raise bad("'logprobs' must be a boolean", "logprobs")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or
                            not 0 <= top <= MAX_TOP_LOGPROBS):
        raise bad(f"'top_logprobs' must be an integer from 0 to {MAX_TOP_LOGPROBS}",
                  "top_logprobs")
    if not wanted:
        if top is not None:
            raise bad("'top_logprobs' needs 'logprobs': true", "top_logprobs")
        return None
    return top or 0


def llama_grammar(fmt: ResponseFormat) -> Any:
    """The llama.cpp grammar that only admits replies of `fmt` (llama-cpp-python's own
    JSON grammar, or its JSON-Schema-to-GBNF converter)."""
    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

    if fmt.type == "json_schema" and fmt.schema is not None:
        return LlamaGrammar.from_json_schema(json.dumps(fmt.schema), verbose=False)
    return LlamaGrammar.from_string(JSON_GBNF, verbose=False)


def sample_json(schema: dict[str, Any] | None, rng: random.Random, words: list[str]) -> Any:
    """A JSON value matching the common JSON Schema keywords (type, enum, const, properties,
    required, items, minimum/maximum): what the simulated backend answers for json_schema."""
    if not schema:
        return {"answer": " ".join(words[:6])}
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return rng.choice(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return sample_json(rng.choice(schema[key]), rng, words)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties") or {}
        return {name: sample_json(sub, rng, words) for name, sub in props.items()
                if isinstance(sub, dict)}
    if kind == "array":
        item = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        return [sample_json(item, rng, words) for _ in range(max(1, schema.get("minItems", 1)))]
    if kind in ("integer", "number"):
        low, high = int(schema.get("minimum", 0)), int(schema.get("maximum", 10))
        return rng.randint(low, max(low, high))
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return " ".join(words[: rng.randint(3, 8)])


def token_logprobs(token: str, chosen: float, top: list[tuple[str, float]],
                   n_top: int) -> dict[str, Any]:
    """One entry of `logprobs.content` in the OpenAI schema."""
    return {"token": token, "logprob": chosen, "bytes": list(token.encode("utf-8")),
            "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode("utf-8"))}
                             for t, lp in top[:n_top]]}
