"""JSON scorers: `json_valid` (the output is JSON) and `json_schema` (and valid against a schema).

The JSON is the whole output (surrounding whitespace ignored) or, failing that, the content of
the first fenced code block (```json ... ``` or ``` ... ```), the form chat models often use.
Prose around unfenced JSON ("Here it is: {...}") does not count: a caller that parses the
output would fail on it too.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from compare.errors import ConfigError
from compare.prompts import Prompt
from compare.scorers.base import Score, Scorer

_FENCE: Final = re.compile(r"```[ \t]*(?:json|JSON|jsonc|javascript)?[ \t]*\r?\n(.*?)```", re.S)
_NOT_JSON: Final = object()
_JSON_SPACE: Final = " \t\n\r"  # the whitespace json.loads skips
# What a JSON value (as Python's json reads it, NaN and Infinity included) can start with.
_JSON_STARTS: Final = frozenset('{["-0123456789tfnNI')


def extract_json(text: str) -> tuple[Any, str | None]:
    """(value, None) for the JSON in `text`, or (a sentinel, the parse error) when there is none.

    Tries the whole text, then the first fenced code block.
    """
    start = text.lstrip(_JSON_SPACE)[:1]
    if start and start not in _JSON_STARTS and "```" not in text:
        # No JSON value starts this way (the common case of prose): skip the parser's exception.
        return _NOT_JSON, f"not JSON: the text starts with {start!r}"
    try:
        return json.loads(text), None
    except (ValueError, RecursionError) as e:
        error = f"not JSON: {e}"
    fence = _FENCE.search(text)
    if fence is not None:
        try:
            return json.loads(fence.group(1)), None
        except (ValueError, RecursionError) as e:
            error = f"fenced block is not JSON: {e}"
    return _NOT_JSON, error


class JsonValid(Scorer):
    """1 when the output is JSON (whole, or in a fenced block), else 0 with the parse error."""

    name = "json_valid"
    kind = "binary"

    def score_text(self, output: str, reference: str | None, prompt: Prompt | None) -> Score:
        _, error = extract_json(output)
        return Score(float(error is None), explanation=error)


class JsonSchema(Scorer):
    """1 when the output is JSON that validates against `schema` (jsonschema, the draft the
    schema's `$schema` names, else the latest), else 0 with the first error in `explanation`.

    `schema` is a dict or a path to a .json file.
    """

    name = "json_schema"
    kind = "binary"

    def __init__(self, schema: Mapping[str, Any] | str | os.PathLike[str], **kwargs: Any) -> None:
        from jsonschema import exceptions, validators

        self.schema = _load_schema(schema)
        cls = validators.validator_for(self.schema)
        try:
            cls.check_schema(self.schema)
        except exceptions.SchemaError as e:
            raise ConfigError(f"invalid JSON schema: {e.message}", field="schema") from None
        self.validator = cls(self.schema)
        super().__init__(**kwargs)

    def score_text(self, output: str, reference: str | None, prompt: Prompt | None) -> Score:
        from jsonschema import exceptions

        value, error = extract_json(output)
        if error is not None:
            return Score(0.0, explanation=error)
        if self.validator.is_valid(value):
            return Score(1.0)
        best = exceptions.best_match(self.validator.iter_errors(value))
        if best is None:
            return Score(1.0)
        where = "/".join(str(p) for p in best.absolute_path) or "(root)"
        return Score(0.0, explanation=f"schema: at {where}: {best.message}")


def _load_schema(schema: Mapping[str, Any] | str | os.PathLike[str]) -> dict[str, Any]:
    if isinstance(schema, Mapping):
        return dict(schema)
    if isinstance(schema, bool):  # `true`/`false` are valid schemas, but surely a mistake here
        raise ConfigError("schema must be a dict or a path to a .json file", field="schema")
    path = Path(schema)
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read schema file: {e.strerror}", source=str(path)) from None
    except ValueError as e:
        raise ConfigError(f"schema file is not JSON: {e}", source=str(path)) from None
    if not isinstance(loaded, dict):
        raise ConfigError("a schema file must hold a JSON object", source=str(path))
    return loaded
