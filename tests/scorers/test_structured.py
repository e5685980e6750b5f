"""json_valid and json_schema: whole-output JSON, fenced blocks, schema errors named."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compare.errors import ConfigError
from compare.scorers import extract_json, json_schema, json_valid

SCHEMA = {"type": "object", "required": ["name", "age"],
          "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}


@pytest.mark.parametrize(("text", "ok"), [
    ('{"a": 1}', True), ("  [1, 2]\n", True), ("42", True),
    ('Here it is:\n```json\n{"a": 1}\n```\nDone.', True), ('```\n{"a": 1}\n```', True),
    ('Here it is: {"a": 1}', False), ("{'a': 1}", False), ("", False),
    ('```json\n{"a": }\n```', False),
])
def test_json_valid(text: str, ok: bool) -> None:
    score = json_valid().score_text(text, None, None)
    assert score.value == float(ok)
    assert (score.explanation is None) == ok


def test_json_schema_agrees_with_jsonschema() -> None:
    scorer = json_schema(SCHEMA)
    cases = ['{"name": "Ann", "age": 30}', '{"name": "Ann", "age": "30"}', '{"name": "Ann"}',
             "[1]", '```json\n{"name": "Bo", "age": 2}\n```']
    for text in cases:
        value, _ = extract_json(text)
        want = jsonschema.Draft202012Validator(SCHEMA).is_valid(value)
        assert scorer.score_text(text, None, None).value == float(want)
    bad = scorer.score_text('{"name": "Ann", "age": "30"}', None, None)
    assert bad.explanation == "schema: at age: '30' is not of type 'integer'"
    assert scorer.score_text("nope", None, None).explanation.startswith("not JSON")


def test_json_schema_from_file_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(SCHEMA))
    assert json_schema(path).score_text('{"name": "A", "age": 1}', None, None).value == 1.0
    with pytest.raises(ConfigError, match="invalid JSON schema"):
        json_schema({"type": "no-such-type"})
    with pytest.raises(ConfigError, match="cannot read schema file"):
        json_schema(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="not JSON"):
        json_schema(tmp_path / "bad.json")


@given(st.text(alphabet=st.sampled_from(list(' \t\n\r\xa0{}[]":,0123456789-.eEtruefalsnNIa')),
               max_size=20))
@settings(max_examples=400, deadline=None)
def test_json_detection_agrees_with_json_loads(text: str) -> None:
    try:
        json.loads(text)
        parses = True
    except ValueError:
        parses = False
    assert (extract_json(text)[1] is None) == parses
