"""Prompt sets from lists, DataFrames, CSV, JSONL and JSON; every bad input names where and what."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from compare.errors import PromptSetError
from compare.prompts import Prompt, PromptSet, demo_prompts, load_prompts


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def jsonl(tmp_path: Path, rows: list, name: str = "p.jsonl") -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- good input ----------------------------------------------------------------------------------


def test_list_of_strings_gets_stable_hash_ids() -> None:
    ps = load_prompts(["Hello?", "What is 2+2?"])
    assert len(ps) == 2
    assert all(p.id.startswith("p-") and len(p.id) == 10 for p in ps)
    assert ps[0].messages == [{"role": "user", "content": "Hello?"}]
    # The id follows the text, not the position.
    again = load_prompts(["What is 2+2?", "Hello?", "New one"])
    assert again[1].id == ps[0].id and again[0].id == ps[1].id
    assert ps[ps[0].id] is ps[0] and ps[0].id in ps


def test_dicts_with_every_field() -> None:
    ps = load_prompts(
        [
            {
                "id": "t1",
                "prompt": "Translate {word} to {lang}.",
                "system": "Be brief, {lang} expert.",
                "vars": {"word": "cat", "lang": "French"},
                "reference": "chat",
                "tags": ["translate", "short"],
            },
            {
                "id": 7,
                "messages": [
                    {"role": "user", "content": "I am Sam."},
                    {"role": "assistant", "content": "Hi Sam."},
                    {"role": "user", "content": "Who am I?"},
                ],
                "tags": "memory;multi",
            },
        ]
    )
    t1, seven = ps
    assert t1.messages == [
        {"role": "system", "content": "Be brief, French expert."},
        {"role": "user", "content": "Translate cat to French."},
    ]
    assert (t1.reference, t1.tags, t1.system, t1.text) == (
        "chat",
        ("translate", "short"),
        "Be brief, French expert.",
        "Translate cat to French.",
    )
    assert seven.id == "7" and len(seven.messages) == 3 and seven.tags == ("memory", "multi")
    assert seven.text == "Who am I?"
    assert ps.filter("memory").ids == ["7"]


def test_braces_without_vars_are_sent_verbatim() -> None:
    (p,) = load_prompts(['Return JSON like {"a": 1}'])
    assert p.text == 'Return JSON like {"a": 1}'


def test_literal_braces_with_vars() -> None:
    (p,) = load_prompts([{"prompt": "{{x}} is {x}", "vars": {"x": 1}}])
    assert p.text == "{x} is 1"


def test_jsonl_file(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path,
        [
            {"id": "a", "prompt": "one"},
            "",
            {"id": "b", "messages": [{"role": "user", "content": "two"}], "reference": "2"},
            '"a bare string line"',
        ],
    )
    ps = load_prompts(path)
    assert ps.ids[:2] == ["a", "b"] and ps[2].text == "a bare string line"
    assert ps.source == str(path)


def test_csv_file_with_var_columns_and_multiline_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "p.csv",
        """
        id,prompt,reference,tags,vars.city
        a,"Where is {city}?",Europe,geo;short,Paris
        b,"line one
        line two",,,
        c,"JSON {""k"": 1}",,"[""x"", ""y""]",
        """,
    )
    ps = load_prompts(path)
    assert ps["a"].text == "Where is Paris?" and ps["a"].vars == {"city": "Paris"}
    assert ps["a"].tags == ("geo", "short")
    assert ps["b"].text == "line one\nline two" and ps["b"].reference is None
    assert ps["c"].text == 'JSON {"k": 1}' and ps["c"].tags == ("x", "y")


def test_dataframe() -> None:
    frame = pd.DataFrame(
        {
            "id": ["x", "y"],
            "prompt": ["Say hi", "Say {w}"],
            "vars.w": [None, "bye"],
            "reference": ["hi", None],
        }
    )
    ps = load_prompts(frame)
    assert ps["y"].text == "Say bye" and ps["x"].reference == "hi" and ps["y"].reference is None
    assert list(ps.to_frame().columns) == [
        "id",
        "text",
        "system",
        "reference",
        "tags",
        "n_messages",
    ]


def test_json_file_and_promptset_passthrough(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(["a", {"id": "b", "prompt": "bee"}]), encoding="utf-8")
    ps = load_prompts(path)
    assert len(ps) == 2 and load_prompts(ps) is ps
    assert isinstance(ps[0:1], PromptSet) and len(ps[0:1]) == 1


def test_demo_set_ships_and_loads() -> None:
    ps = demo_prompts()
    assert 6 <= len(ps) <= 12
    assert sum(p.reference is not None for p in ps) >= 3
    assert any(len(p.messages) > 2 for p in ps)  # a multi-turn prompt
    assert any(p.vars for p in ps)  # a template
    import compare

    path = Path(compare.__file__).parent / "data" / "demo_prompts.jsonl"
    assert load_prompts(path).ids == ps.ids


def test_prompt_objects_in_list() -> None:
    p = Prompt(id="z", messages=[{"role": "user", "content": "hi"}])
    assert load_prompts([p, "other"])["z"] is p


# -- bad input: one error naming source, line/row and field --------------------------------------


@pytest.mark.parametrize(
    ("rows", "line", "field", "needle"),
    [
        ([{"id": "a", "prompt": "x"}, {"id": "a", "prompt": "y"}], 2, "id", "duplicate id 'a'"),
        ([{"id": "a", "prompt": "   "}], 1, "prompt", "empty prompt"),
        ([{"id": "a"}], 1, "prompt", "empty prompt"),
        ([{"id": "a", "promt": "x"}], 1, "promt", "did you mean 'prompt'"),
        (
            [{"prompt": "x", "messages": [{"role": "user", "content": "y"}]}],
            1,
            "messages",
            "not both",
        ),
        (
            [{"messages": [{"role": "usr", "content": "x"}]}],
            1,
            "messages[0]",
            "bad role 'usr' (did you mean 'user'?)",
        ),
        ([{"messages": [{"role": "user", "content": ""}]}], 1, "messages[0]", "empty content"),
        ([{"messages": [{"role": "assistant", "content": "x"}]}], 1, "messages", "user message"),
        ([{"messages": "not json"}], 1, "messages", "not valid JSON"),
        ([{"messages": [{"role": "user", "content": "x", "tool": 1}]}], 1, "messages[0]", "tool"),
        (
            [
                {
                    "system": "s",
                    "messages": [
                        {"role": "system", "content": "t"},
                        {"role": "user", "content": "u"},
                    ],
                }
            ],
            1,
            "system",
            "both 'system'",
        ),
        ([{"prompt": "Hi {name}", "vars": {"other": 1}}], 1, "prompt", "{name} is not in vars"),
        ([{"prompt": "Hi {0}", "vars": {"a": 1}}], 1, "prompt", "plain variable name"),
        ([{"prompt": "Hi {a", "vars": {"a": 1}}], 1, "prompt", "bad template"),
        ([{"prompt": "x", "vars": [1]}], 1, "vars", "mapping"),
        ([{"prompt": "x", "tags": [1, 2]}], 1, "tags", "list of non-empty strings"),
        ([{"prompt": "x", "reference": ["a"]}], 1, "reference", "must be text"),
        ([{"prompt": 5}], 1, "prompt", "must be text"),
        ([{"id": ["x"], "prompt": "x"}], 1, "id", "text or an integer"),
        (["{not json"], 1, None, "not valid JSON"),
        (["[1, 2]"], 1, None, "JSON object"),
        (
            [{"prompt": "same"}, {"prompt": "same"}],
            2,
            "id",
            "same messages; give each an explicit id",
        ),
    ],
)
def test_bad_jsonl_rows(
    tmp_path: Path, rows: list, line: int, field: str | None, needle: str
) -> None:
    path = jsonl(tmp_path, rows)
    with pytest.raises(PromptSetError) as info:
        load_prompts(path)
    err = info.value
    assert (err.source, err.line, err.field) == (str(path), line, field), str(err)
    assert needle in str(err)
    assert str(err).startswith(f"{path}:{line}: ")


def test_blank_lines_keep_line_numbers(tmp_path: Path) -> None:
    path = jsonl(tmp_path, [{"id": "a", "prompt": "x"}, "", "", {"id": "b", "prompt": ""}])
    with pytest.raises(PromptSetError) as info:
        load_prompts(path)
    assert info.value.line == 4


@pytest.mark.parametrize(
    ("text", "line", "field", "needle"),
    [
        ("id,prompt,answer\na,x,y\n", 1, "answer", "unknown column 'answer'"),
        ("id,prompt,prompt\na,x,y\n", 1, "prompt", "duplicate column"),
        ("id,prompt\na,x\nb,\n", 3, "prompt", "empty prompt"),
        ("id,prompt\na,x\na,y\n", 3, "id", "duplicate id 'a', first at line 2"),
        ("id,prompt\na,x,extra\n", 2, None, "has 3 fields, the header has 2"),
        ('id,prompt\na,"multi\nline"\nb,\n', 4, "prompt", "empty prompt"),
        ("id,prompt,vars\na,x,{bad\n", 2, "vars", "not valid JSON"),
        (
            'id,messages\na,"[{""role"": ""bot"", ""content"": ""x""}]"\n',
            2,
            "messages[0]",
            "bad role 'bot'",
        ),
    ],
)
def test_bad_csv(tmp_path: Path, text: str, line: int, field: str | None, needle: str) -> None:
    path = tmp_path / "p.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PromptSetError) as info:
        load_prompts(path)
    err = info.value
    assert (err.line, err.field) == (line, field), str(err)
    assert needle in str(err) and str(path) in str(err)


def test_bad_dataframe_names_row_and_column() -> None:
    frame = pd.DataFrame({"prompt": ["ok", ""]}, index=[10, 11])
    with pytest.raises(PromptSetError) as info:
        load_prompts(frame)
    assert "DataFrame row 11" in str(info.value) and info.value.field == "prompt"
    with pytest.raises(PromptSetError, match="unknown column 'question'"):
        load_prompts(pd.DataFrame({"question": ["x"]}))


def test_bad_list_item_names_index() -> None:
    with pytest.raises(PromptSetError) as info:
        load_prompts(["fine", 3])
    assert "prompt list item 1" in str(info.value)
    with pytest.raises(PromptSetError, match=r"item 0.*empty prompt"):
        load_prompts([""])


def test_bad_sources(tmp_path: Path) -> None:
    with pytest.raises(PromptSetError, match="no prompts"):
        load_prompts([])
    # (.txt is one prompt per line now; .md is not a prompt file.)
    with pytest.raises(PromptSetError, match=r"unsupported prompt file type '\.md'"):
        load_prompts(tmp_path / "p.md")
    with pytest.raises(PromptSetError, match="cannot read prompt file"):
        load_prompts(tmp_path / "missing.jsonl")
    with pytest.raises(PromptSetError, match="cannot read prompts from a int"):
        load_prompts(42)
    empty = tmp_path / "e.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(PromptSetError, match="empty file"):
        load_prompts(empty)
    blob = tmp_path / "b.jsonl"
    blob.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(PromptSetError, match="not UTF-8"):
        load_prompts(blob)
    notlist = tmp_path / "d.json"
    notlist.write_text('{"prompt": "x"}', encoding="utf-8")
    with pytest.raises(PromptSetError, match="must hold a list"):
        load_prompts(notlist)


def test_errors_are_config_errors_not_tracebacks(tmp_path: Path) -> None:
    # One family: callers (CLI, notebooks) catch ConfigError / ValueError.
    path = jsonl(tmp_path, ["{oops"])
    with pytest.raises(ValueError):
        load_prompts(path)


def test_single_text_instead_of_list_gets_a_hint() -> None:
    with pytest.raises(PromptSetError, match=r"pass a list: \[text\]"):
        load_prompts("What is the capital of France?")


@pytest.mark.parametrize(
    "template",
    ["Hi {x!r}", "Hi {x!z}", "Hi {x:d}", "Hi {x:>1000000000}", "Hi {x:{y}}", "Hi {y:,}"],
)
def test_template_conversions_and_format_specs_are_rejected_not_evaluated(
    tmp_path: Path, template: str
) -> None:
    # str.format would raise ValueError ({x:d} on a str), or allocate a gigabyte ({x:>1e9}).
    path = jsonl(tmp_path, [{"prompt": "ok"}, {"prompt": template, "vars": {"x": "a", "y": 3}}])
    with pytest.raises(PromptSetError) as info:
        load_prompts(path)
    err = info.value
    assert (err.source, err.line, err.field) == (str(path), 2, "prompt"), str(err)
    assert "only plain {x}" in str(err) or "only plain {y}" in str(err)


def test_template_values_are_inserted_verbatim() -> None:
    # Values that look like templates or format specs are not expanded again.
    (p,) = load_prompts(
        [{"system": "S {a}", "prompt": "{a} and {b} {{c}}", "vars": {"a": "{b!r}", "b": 2.5}}]
    )
    assert p.messages == [
        {"role": "system", "content": "S {b!r}"},
        {"role": "user", "content": "{b!r} and 2.5 {c}"},
    ]


HOSTILE_JSON = {
    "deep.jsonl": ('{"prompt": "x", "vars": ' + "[" * 100_000 + "]" * 100_000 + "}\n", 1),
    "deep.json": ("[" * 100_000 + "]" * 100_000, None),
    "huge-int.jsonl": ('{"prompt": "a"}\n{"prompt": "x", "id": ' + "9" * 5000 + "}\n", 2),
    "huge-int.json": ('[{"prompt": "x", "id": ' + "9" * 5000 + "}]", None),
    "deep-messages.csv": ('id,messages\na,"' + "[" * 100_000 + '"\n', 2),
    "latin-1.jsonl": ('{"prompt": "a"}\n{"prompt": "caf\xe9"}\n', 2),
}


@pytest.mark.parametrize("name", list(HOSTILE_JSON))
def test_hostile_files_are_prompt_set_errors_with_a_line(tmp_path: Path, name: str) -> None:
    text, line = HOSTILE_JSON[name]
    path = tmp_path / name
    path.write_bytes(text.encode("latin-1" if name.startswith("latin") else "utf-8"))
    with pytest.raises(PromptSetError) as info:
        load_prompts(path)
    assert (info.value.source, info.value.line) == (str(path), line), str(info.value)
    assert len(str(info.value)) < 300


def test_values_python_cannot_show_are_row_errors() -> None:
    huge = 10**5000  # str() of an int past 4300 digits raises ValueError
    with pytest.raises(PromptSetError, match=r"item 0: .*cannot read this row"):
        load_prompts([{"prompt": "x", "id": huge}])
    with pytest.raises(PromptSetError, match=r"item 0: field 'prompt': .*\{x\} cannot be shown"):
        load_prompts([{"prompt": "{x}", "vars": {"x": huge}}])
    parts = [{"type": "text", "text": "hi", "odd": {1, 2}}]  # not JSON: no auto id
    with pytest.raises(PromptSetError, match=r"item 0: .*not JSON serializable"):
        load_prompts([{"messages": [{"role": "user", "content": parts}]}])


def test_dataframe_duplicate_columns_and_numpy_tags() -> None:
    frame = pd.DataFrame([["a", "b"]], columns=["prompt", "prompt"])
    with pytest.raises(PromptSetError, match="duplicate column 'prompt'") as info:
        load_prompts(frame)  # pandas' to_dict would silently keep only one of them
    assert info.value.field == "prompt"
    frame = pd.DataFrame({"prompt": ["a", "b"], "tags": [["x"], np.array(["y", "z"])]})
    assert [p.tags for p in load_prompts(frame)] == [("x",), ("y", "z")]


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"prompt": "hi \ud800"}, "prompt"),
        ({"prompt": "x", "system": "\ud800"}, "system"),
        ({"prompt": "x", "reference": "\udc00"}, "reference"),
        ({"prompt": "x", "vars": {"k": "\ud800"}}, "vars.k"),
        (
            {
                "messages": [
                    {"role": "system", "content": "s"},
                    {"role": "user", "content": "\ud800"},
                ]
            },
            "messages[1]",
        ),
    ],
)
def test_lone_surrogates_are_rejected_by_field(tmp_path: Path, row: dict, field: str) -> None:
    # Valid JSON ("\ud800" escapes), but not encodable as UTF-8: the openai SDK raised
    # UnicodeEncodeError on every send, and saving results would fail too.
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "fine"}\n' + json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(PromptSetError, match="lone surrogate") as info:
        load_prompts(path)
    assert (info.value.line, info.value.field) == (2, field)


def test_csv_fields_longer_than_the_csv_module_default(tmp_path: Path) -> None:
    # csv's default field limit is 128 KiB: a long-context prompt failed as "not valid CSV".
    text = "word " * 60_000
    path = write(tmp_path, "p.csv", f'id,prompt\nlong,"{text}"\n')
    assert load_prompts(path)["long"].text == text


@pytest.mark.parametrize("pid", ["a\nb", "a\tb", "a\x1b[2J", "a\ud800"])
def test_ids_with_control_characters_are_rejected(pid: str) -> None:
    with pytest.raises(PromptSetError, match="control characters") as info:
        load_prompts([{"prompt": "x", "id": pid}])
    assert info.value.field == "id"


@pytest.mark.parametrize(
    ("message", "needle"),
    [
        ({"content": [{"type": "text", "text": 5}]}, "text part without 'text' text"),
        ({"content": [5]}, "must be an object with a 'type'"),
        ({"content": [{"text": "no type"}]}, "must be an object with a 'type'"),
        ({"content": "x", "name": 5}, "name must be non-empty text"),
    ],
)
def test_bad_content_parts_and_names(tmp_path: Path, message: dict, needle: str) -> None:
    # A numeric text part used to load, then crash Prompt.text / to_frame() with TypeError.
    path = jsonl(tmp_path, [{"messages": [{"role": "user", **message}]}])
    with pytest.raises(PromptSetError, match=needle) as info:
        load_prompts(path)
    assert (info.value.line, info.value.field) == (1, "messages[0]")


def test_non_text_parts_pass_through() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    parts = [{"type": "text", "text": "What is this?"}, image]
    (p,) = load_prompts([{"messages": [{"role": "user", "content": parts}]}])
    assert p.messages[0]["content"] == parts and p.text == "What is this?"


def test_automatic_id_hash_collisions_get_longer_ids(tmp_path: Path) -> None:
    # Automatic ids are 32 bits of a hash: these two different prompts share "p-7605165b" (found
    # among 100,000 generated ones). Loading used to fail with "duplicate id ... the same
    # messages", which was untrue; now both get a 16-digit id, the same in either order.
    texts = ["Question 8039: what is 8039?", "Question 77439: what is 77439?"]
    first = load_prompts(texts)
    assert [len(i) for i in first.ids] == [18, 18] and len(set(first.ids)) == 2
    assert load_prompts(texts[::-1]).ids == first.ids[::-1]
    assert all(i.startswith("p-7605165b") for i in first.ids)
    # Others keep their short ids; the same text twice is still a duplicate.
    assert len(load_prompts(["other", *texts])[0].id) == 10
    path = jsonl(tmp_path, [{"prompt": t} for t in (texts[0], texts[1], texts[0])])
    with pytest.raises(PromptSetError, match="same messages") as info:
        load_prompts(path)
    assert info.value.line == 3


@pytest.mark.parametrize("sep", [";", "\t"])
def test_semicolon_and_tab_separated_csv(tmp_path: Path, sep: str) -> None:
    # Spreadsheets in many locales save "CSV" with ';': it failed as unknown column 'id;prompt'.
    rows = ["id", "prompt", "vars.x"], ["a", "Hi, {x}", "you"], ["b", 'say "ok"', ""]
    text = "\n".join(sep.join(f'"{c}"' if '"' in c else c for c in r) for r in rows) + "\n"
    path = write(tmp_path, "p.csv", text.replace('"ok"', '""ok""'))
    ps = load_prompts(path)
    assert [p.text for p in ps] == ["Hi, you", 'say "ok"']
    # A comma-separated file with one column stays comma-separated.
    assert load_prompts(write(tmp_path, "q.csv", "prompt\nHi; there\n"))[0].text == "Hi; there"


@pytest.mark.parametrize("value", [None, float("nan")])
def test_template_variable_without_a_value(value: object) -> None:
    # It was filled in as the text "None" / "nan" and sent.
    with pytest.raises(PromptSetError, match=r"\{who\} has no value"):
        load_prompts([{"prompt": "Hi {who}", "vars": {"who": value}}])
    # An empty string is a value.
    assert load_prompts([{"prompt": "Hi{who}", "vars": {"who": ""}}])[0].text == "Hi"


def test_spreadsheet_headers_match_fields_without_regard_to_case(tmp_path) -> None:
    comma = tmp_path / "a.csv"
    comma.write_text("ID,Prompt,Reference,Vars.topic\n1,Tell me about {topic},x,cats\n")
    p = load_prompts(comma)[0]
    assert (p.id, p.text, p.reference) == ("1", "Tell me about cats", "x")
    semicolon = tmp_path / "b.csv"
    semicolon.write_text("Id;PROMPT\n2;hello\n")
    assert load_prompts(semicolon)[0].text == "hello"
    import pandas as pd

    frame = pd.DataFrame({" Prompt ": ["hi"], "ID": ["z"]})
    assert load_prompts(frame)[0].id == "z"


def test_a_json_literal_in_a_template_says_how_to_escape_braces(tmp_path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"prompt": "Reply as JSON {\\"a\\": {x}}", "vars": {"x": 1}}\n')
    with pytest.raises(PromptSetError) as info:
        load_prompts(path)
    assert str(info.value) == (
        f"{path}:1: field 'prompt': template field {{\"a\"}} must be a plain variable name; "
        "for literal braces (JSON in a prompt), write {{ and }}")


def test_a_txt_file_is_one_prompt_per_line(tmp_path) -> None:
    path = tmp_path / "prompts.txt"
    path.write_text("first prompt\n\n  second {not a template}  \n")
    prompts = load_prompts(path)
    assert [p.text for p in prompts] == ["first prompt", "second {not a template}"]
    assert len(set(prompts.ids)) == 2
