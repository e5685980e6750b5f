"""Validate response bodies against the official specs kept in tests/specs/ (see its README).

The specs are Swagger 2.0 (Azure AI model inference) and OpenAPI 3.0 (Azure OpenAI). Both are
turned into JSON Schema documents once: `x-nullable` / `nullable` become `anyOf [..., null]`
(jsonschema does not know them), then `$ref`s resolve inside each document through a
`referencing` registry.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

INFERENCE_SPEC = "azure-ai-model-inference-2024-05-01-preview.openapi.json"
INFERENCE_SPEC_2025 = "azure-ai-model-inference-2025-04-01.openapi.json"
OPENAI_SPEC = "azure-openai-inference-2024-10-21.json"
BATCH_SPEC = "azure-openai-authoring-2024-10-21.batch-excerpt.json"


SPECS_DIR = Path(__file__).resolve().parents[1] / "specs"


def _nullable(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _nullable(v) for k, v in node.items()}
        if node.pop("x-nullable", False) | node.pop("nullable", False):
            return {"anyOf": [node, {"type": "null"}]}
        return node
    if isinstance(node, list):
        return [_nullable(v) for v in node]
    return node


def _corrected(name: str, doc: Any) -> Any:
    if name == BATCH_SPEC:
        # The spec's one known error (see tests/specs/README.md): errors come as a list, and
        # each error's line is a number.
        errors = doc["definitions"]["BatchErrors"]["properties"]
        errors["data"] = {"type": "array", "items": {"$ref": "#/definitions/BatchErrorData"}}
        doc["definitions"]["BatchErrorData"]["properties"]["line"]["type"] = "integer"
    return doc


@cache
def _registry() -> Registry:
    registry = Registry()
    for name in (INFERENCE_SPEC, INFERENCE_SPEC_2025, OPENAI_SPEC, BATCH_SPEC):
        doc = _corrected(name, json.loads((SPECS_DIR / name).read_text(encoding="utf-8")))
        doc = _nullable(doc)
        registry = registry.with_resource(f"urn:{name}", Resource.from_contents(doc, DRAFT7))
    return registry


def _pointer(spec: str, name: str) -> str:
    return f"urn:{spec}#/{'components/schemas' if spec == OPENAI_SPEC else 'definitions'}/{name}"


def validate(body: Any, spec: str, name: str) -> None:
    """Raise jsonschema.ValidationError unless `body` matches schema `name` of `spec`."""
    schema = {"$ref": _pointer(spec, name)}
    validator = jsonschema.Draft7Validator(schema, registry=_registry())
    errors = sorted(validator.iter_errors(copy.deepcopy(body)), key=lambda e: e.path)
    if errors:
        raise errors[0]


# Which schema each kind of body must match, per dialect.
INFERENCE = {"completion": (INFERENCE_SPEC, "ChatCompletions"),
             "chunk": (INFERENCE_SPEC, "StreamingChatCompletionsUpdate"),
             "error": (INFERENCE_SPEC, "Azure.Core.Foundations.ErrorResponse"),
             "info": (INFERENCE_SPEC, "ModelInfo")}
OPENAI = {"completion": (OPENAI_SPEC, "createChatCompletionResponse"),
          "chunk": (OPENAI_SPEC, "createChatCompletionStreamResponse"),
          "error": (OPENAI_SPEC, "errorResponse")}


def check(body: Any, dialect: dict[str, tuple[str, str]], kind: str) -> None:
    spec, name = dialect[kind]
    validate(body, spec, name)
    if dialect is INFERENCE and kind in ("completion", "chunk", "info"):
        validate(body, INFERENCE_SPEC_2025, name)  # the newer GA version too


OPENAI_EMBEDDINGS_200 = ("paths/~1deployments~1{deployment-id}~1embeddings/post/responses/200/"
                         "content/application~1json/schema")


def check_openai_embeddings(body: Any) -> None:
    """The Azure OpenAI spec defines the embeddings response inline, under its path."""
    schema = {"$ref": f"urn:{OPENAI_SPEC}#/{OPENAI_EMBEDDINGS_200}"}
    jsonschema.Draft7Validator(schema, registry=_registry()).validate(body)


def check_batch_api(body: Any, name: str) -> None:
    """Validate a files/batches body against definition `name` (Batch, File, FileList,
    BatchesList, FileDelete, ErrorResponse) of the authoring spec."""
    validate(body, BATCH_SPEC, name)
