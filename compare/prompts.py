"""Prompt sets: from a Python list, a DataFrame, a CSV or a JSONL file.

Each prompt has an `id`, the chat `messages` to send (a single `prompt` text becomes one user
message; `system` is prepended), an optional `reference` answer and `tags`, and template `vars`.

Fields (dict keys, JSONL keys, CSV/DataFrame columns):

- ``id``         optional; default ``p-`` + 8 hex digits of a hash of the messages, so an id
                 follows its text when rows are reordered or added (a checkpoint stays valid);
                 16 hex digits for the rare different prompts whose 8 digits collide.
- ``prompt``     the user text, or
- ``messages``   the full conversation: a list of ``{"role", "content"}`` (JSON text in CSV).
- ``system``     optional system message.
- ``vars``       optional mapping; when present, ``{name}`` in prompt/system/messages is filled
                 from it (``{{`` and ``}}`` for literal braces). Only plain names: a conversion or
                 format spec (``{x!r}``, ``{x:>10}``) is an error, never evaluated. Without vars,
                 text is sent as is.
                 In CSV and DataFrames also as ``vars.<name>`` columns.
- ``reference``  optional reference answer.
- ``tags``       optional list of strings (in CSV: ``a;b`` or ``a,b`` or a JSON list).

Any bad row raises one `PromptSetError` naming the file (or list/DataFrame), the line or row and
the field.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import hashlib
import io
import json
import os
import string
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, overload

from compare.errors import PromptSetError

FIELDS: Final = ("id", "prompt", "messages", "system", "vars", "reference", "tags")
ROLES: Final = ("system", "developer", "user", "assistant")
VAR_PREFIX: Final = "vars."


@dataclass(frozen=True)
class Prompt:
    """One prompt. `messages` is what is sent (templates already filled)."""

    id: str
    messages: list[dict[str, Any]]
    reference: str | None = None
    tags: tuple[str, ...] = ()
    vars: dict[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def text(self) -> str:
        """The last user message as text (what a table or chart shows for this prompt)."""
        for message in reversed(self.messages):
            if message["role"] == "user":
                return _content_text(message["content"])
        return ""

    @property
    def system(self) -> str | None:
        for message in self.messages:
            if message["role"] in ("system", "developer"):
                return _content_text(message["content"])
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "messages": [dict(m) for m in self.messages],
            "reference": self.reference,
            "tags": list(self.tags),
            "vars": dict(self.vars),
        }


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    # Content parts (multimodal form): keep the text parts.
    texts = (p.get("text") for p in content if isinstance(p, Mapping))
    return " ".join(t for t in texts if isinstance(t, str) and t)


class PromptSet(Sequence[Prompt]):
    """An ordered, id-unique collection of prompts. Index by position or by id."""

    def __init__(self, prompts: Iterable[Prompt], *, source: str | None = None) -> None:
        self._prompts: list[Prompt] = list(prompts)
        self.source = source
        self._by_id: dict[str, Prompt] = {}
        for prompt in self._prompts:
            if prompt.id in self._by_id:
                raise PromptSetError(f"duplicate id {prompt.id!r}", source=source, field="id")
            self._by_id[prompt.id] = prompt

    @overload
    def __getitem__(self, key: int) -> Prompt: ...
    @overload
    def __getitem__(self, key: slice) -> PromptSet: ...
    @overload
    def __getitem__(self, key: str) -> Prompt: ...

    def __getitem__(self, key: int | slice | str) -> Prompt | PromptSet:
        if isinstance(key, str):
            return self._by_id[key]
        if isinstance(key, slice):
            return PromptSet(self._prompts[key], source=self.source)
        return self._prompts[key]

    def __len__(self) -> int:
        return len(self._prompts)

    def __iter__(self) -> Iterator[Prompt]:
        return iter(self._prompts)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, str):
            return item in self._by_id
        return item in self._prompts

    def __repr__(self) -> str:
        where = f", source={self.source!r}" if self.source else ""
        return f"PromptSet({len(self)} prompts{where})"

    @property
    def ids(self) -> list[str]:
        return [p.id for p in self._prompts]

    def filter(self, tags: str | Iterable[str]) -> PromptSet:
        """Prompts that carry any of `tags`."""
        wanted = {tags} if isinstance(tags, str) else set(tags)
        return PromptSet([p for p in self if wanted & set(p.tags)], source=self.source)

    def to_frame(self) -> Any:
        """A pandas DataFrame: id, text, system, reference, tags, n_messages."""
        import pandas as pd

        return pd.DataFrame(
            {
                "id": [p.id for p in self],
                "text": [p.text for p in self],
                "system": [p.system for p in self],
                "reference": [p.reference for p in self],
                "tags": [list(p.tags) for p in self],
                "n_messages": [len(p.messages) for p in self],
            }
        )


# -- building one prompt from a row ------------------------------------------------------------


class _Where:
    """Where a row came from, for error messages."""

    def __init__(self, source: str, line: int | None) -> None:
        self.source = source
        self.line = line

    def error(self, message: str, field: str | None = None) -> PromptSetError:
        text = f"field {field!r}: {message}" if field else message
        return PromptSetError(text, source=self.source, line=self.line, field=field)


def _is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and value != value:  # NaN from pandas / CSV
        return True
    return isinstance(value, str) and not value.strip()


def _fill(text: str, variables: Mapping[str, Any], where: _Where, field: str) -> str:
    """`{name}` → str(vars[name]); `{{`/`}}` → literal braces. Nothing else.

    Deliberately not `str.format`: a conversion or format spec from a data file ({x!r},
    {x:d}, {x:>1000000000}) would raise from inside the formatter or allocate without bound.
    """
    if not variables:
        return text
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as e:
        raise where.error(
            f"bad template: {e} (use {{{{ and }}}} for literal braces)", field
        ) from None
    out: list[str] = []
    for literal, name, spec, conversion in parts:
        out.append(literal)
        if name is None:
            continue
        if not name.isidentifier():
            raise where.error(f"template field {{{name}}} must be a plain variable name", field)
        if conversion is not None or spec:
            shown = name + (f"!{conversion}" if conversion is not None else "")
            shown += f":{spec}" if spec else ""
            raise where.error(
                f"template field {{{shown}}}: only plain {{{name}}} is supported "
                "(no conversions or format specs; use {{ and }} for literal braces)",
                field,
            )
        if name not in variables:
            known = ", ".join(sorted(variables))
            raise where.error(f"template variable {{{name}}} is not in vars ({known})", field)
        if _is_blank(variables[name]) and not isinstance(variables[name], str):
            # null / NaN would be sent as the text "None" / "nan".
            raise where.error(f"template variable {{{name}}} has no value (null)", field)
        out.append(_var_text(variables[name], name, where, field))
    return "".join(out)


def _var_text(value: Any, name: str, where: _Where, field: str) -> str:
    try:
        return value if isinstance(value, str) else str(value)
    except (ValueError, RecursionError) as e:  # e.g. an int past Python's digit limit
        raise where.error(
            f"template variable {{{name}}} cannot be shown as text: {e}", field
        ) from None


def _messages(row: Mapping[str, Any], variables: Mapping[str, Any], where: _Where) -> list[dict]:
    has_prompt = not _is_blank(row.get("prompt"))
    has_messages = not _is_blank(row.get("messages"))
    if has_prompt and has_messages:
        raise where.error("give either 'prompt' or 'messages', not both", "messages")
    if not has_prompt and not has_messages:
        if "prompt" in row or "messages" not in row:
            raise where.error("empty prompt", "prompt")
        raise where.error("empty messages", "messages")
    messages: list[dict[str, Any]]
    if has_prompt:
        prompt = row["prompt"]
        if not isinstance(prompt, str):
            raise where.error(f"must be text, got {type(prompt).__name__}", "prompt")
        messages = [{"role": "user", "content": _fill(prompt, variables, where, "prompt")}]
    else:
        messages = _parse_messages(row["messages"], variables, where)
    system = row.get("system")
    if not _is_blank(system):
        if not isinstance(system, str):
            raise where.error(f"must be text, got {type(system).__name__}", "system")
        if any(m["role"] in ("system", "developer") for m in messages):
            raise where.error("given both 'system' and a system message in 'messages'", "system")
        messages.insert(0, {"role": "system", "content": _fill(system, variables, where, "system")})
    return messages


def _parse_messages(raw: Any, variables: Mapping[str, Any], where: _Where) -> list[dict]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError) as e:
            raise where.error(f"not valid JSON: {_json_problem(e)}", "messages") from None
    if not isinstance(raw, list) or not raw:
        raise where.error("must be a non-empty list of {role, content} objects", "messages")
    out: list[dict[str, Any]] = []
    for i, message in enumerate(raw):
        label = f"messages[{i}]"
        if not isinstance(message, Mapping):
            raise where.error("must be an object with role and content", label)
        extra = set(message) - {"role", "content", "name"}
        if extra:
            raise where.error(
                f"unknown key(s) {sorted(extra)}; allowed: role, content, name", label
            )
        role = message.get("role")
        if role not in ROLES:
            raise where.error(
                f"bad role {role!r}{_hint(role, ROLES)}; allowed: {', '.join(ROLES)}", label
            )
        content = message.get("content")
        if isinstance(content, str):
            if not content.strip():
                raise where.error("empty content", label)
            content = _fill(content, variables, where, label)
        elif not (isinstance(content, list) and content):
            raise where.error("content must be text (or a non-empty list of parts)", label)
        else:
            _check_parts(content, where, label)
        item = {"role": role, "content": content}
        if "name" in message:
            if not isinstance(message["name"], str) or not message["name"].strip():
                raise where.error("name must be non-empty text", label)
            item["name"] = message["name"]
        out.append(item)
    if not any(m["role"] == "user" for m in out):
        raise where.error("needs at least one user message", "messages")
    return out


def _check_parts(parts: list[Any], where: _Where, label: str) -> None:
    """Content parts (multimodal form): objects with a `type`; a text part's `text` is text.
    Other part types (image_url, input_audio, ...) are passed on as given."""
    for j, part in enumerate(parts):
        if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
            raise where.error(f"content[{j}] must be an object with a 'type'", label)
        if part["type"] == "text" and not isinstance(part.get("text"), str):
            raise where.error(f"content[{j}] is a text part without 'text' text", label)


def _vars(row: Mapping[str, Any], where: _Where) -> dict[str, Any]:
    variables: dict[str, Any] = {}
    raw = row.get("vars")
    if not _is_blank(raw):
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except (ValueError, RecursionError) as e:
                raise where.error(f"not valid JSON: {_json_problem(e)}", "vars") from None
        if not isinstance(raw, Mapping) or not all(isinstance(k, str) for k in raw):
            raise where.error("must be a mapping of name to value", "vars")
        variables.update(raw)
    for key, value in row.items():
        if isinstance(key, str) and key.startswith(VAR_PREFIX) and not _is_blank(value):
            name = key[len(VAR_PREFIX) :]
            if not name.isidentifier():
                raise where.error("variable names must be identifiers", key)
            variables[name] = value
    return variables


def _tags(raw: Any, where: _Where) -> tuple[str, ...]:
    if _is_blank(raw):
        return ()
    if type(raw).__name__ == "ndarray":  # a DataFrame cell built from numpy arrays
        raw = raw.tolist()
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):
            try:
                raw = json.loads(text)
            except (ValueError, RecursionError) as e:
                raise where.error(f"not valid JSON: {_json_problem(e)}", "tags") from None
        else:
            sep = ";" if ";" in text else ","
            raw = [t.strip() for t in text.split(sep) if t.strip()]
    if isinstance(raw, list | tuple) and all(isinstance(t, str) and t.strip() for t in raw):
        return tuple(t.strip() for t in raw)
    raise where.error("must be a list of non-empty strings", "tags")


def _json_problem(e: Exception) -> str:
    """What json.loads disliked. Besides syntax errors (with a column), the decoder raises a
    RecursionError for deep nesting and a plain ValueError for integers past Python's digit limit;
    neither may escape a loader."""
    if isinstance(e, json.JSONDecodeError):
        return f"{e.msg} (column {e.colno})"
    if isinstance(e, RecursionError):
        return "nested too deeply"
    return str(e)


def _auto_id(messages: list[dict[str, Any]], digits: int = 8) -> str:
    digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()
    return f"p-{digest[:digits]}"


# 8 hex digits are 32 bits: among 10,000 prompts two different ones share an id with ~1 %
# probability, among 100,000 almost surely. Colliding prompts get this many digits instead.
LONG_ID_DIGITS: Final = 16


def _hint(word: Any, choices: Iterable[str]) -> str:
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_keys(row: Mapping[str, Any], where: _Where, what: str) -> None:
    for key in row:
        if not isinstance(key, str):
            raise where.error(f"{what} names must be text, got {key!r}")
        if key in FIELDS or key.startswith(VAR_PREFIX):
            continue
        raise where.error(
            f"unknown {what} {key!r}{_hint(key, FIELDS)}; allowed: {', '.join(FIELDS)} "
            f"and {VAR_PREFIX}<name>",
            key,
        )


def _prompt(row: Mapping[str, Any], where: _Where, what: str = "key") -> Prompt:
    try:
        return _build_prompt(row, where, what)
    except PromptSetError:
        raise
    except (TypeError, ValueError, RecursionError) as e:
        # Backstop for values no check above foresaw (from Python lists and DataFrames anything
        # can arrive: an int past the digit limit as id, unserialisable content parts, ...):
        # still one PromptSetError naming the row, never a raw exception from inside.
        raise where.error(f"cannot read this row: {type(e).__name__}: {e}") from None


def _build_prompt(row: Mapping[str, Any], where: _Where, what: str) -> Prompt:
    _check_keys(row, where, what)
    variables = _vars(row, where)
    messages = _messages(row, variables, where)
    raw_id = row.get("id")
    if _is_blank(raw_id):
        pid = _auto_id(messages)
    else:
        if isinstance(raw_id, float) and raw_id.is_integer():
            raw_id = int(raw_id)  # pandas reads an integer id column with blanks as float
        if not isinstance(raw_id, str | int) or isinstance(raw_id, bool):
            raise where.error(f"must be text or an integer, got {raw_id!r}", "id")
        pid = str(raw_id).strip()
        if not pid.isprintable():
            # Ids key checkpoints and label tables; a line break or escape sequence breaks both.
            raise where.error(
                f"must not contain line breaks, tabs or control characters, got {pid[:40]!r}", "id"
            )
    reference = row.get("reference")
    if _is_blank(reference):
        reference = None
    elif not isinstance(reference, str):
        if isinstance(reference, int | float) and not isinstance(reference, bool):
            reference = str(reference)  # numeric answers read from CSV/DataFrames
        else:
            raise where.error(f"must be text, got {type(reference).__name__}", "reference")
    prompt = Prompt(
        id=pid,
        messages=messages,
        reference=reference,
        tags=_tags(row.get("tags"), where),
        vars=variables,
    )
    _check_unicode(prompt, where, from_prompt=not _is_blank(row.get("prompt")))
    return prompt


def _check_unicode(prompt: Prompt, where: _Where, from_prompt: bool) -> None:
    """Lone surrogates ("\\ud800" in JSON, or from Python) cannot be encoded as UTF-8: the SDKs
    would fail on every send and the results files on save. Reject them here, by field."""
    parts: list[tuple[str, Any]] = []
    for i, message in enumerate(prompt.messages):
        if from_prompt:
            label = "system" if message["role"] == "system" else "prompt"
        else:
            label = f"messages[{i}]"
        parts.append((label, message))
    parts += [("id", prompt.id), ("reference", prompt.reference), ("tags", prompt.tags)]
    parts += [(f"vars.{k}", v) for k, v in prompt.vars.items()]
    for label, value in parts:
        try:
            json.dumps(value, ensure_ascii=False, default=str).encode("utf-8")
        except UnicodeEncodeError:
            raise where.error(
                "contains a lone surrogate (e.g. \\ud800), which is not valid Unicode text", label
            ) from None


class _Builder:
    """Collects prompts and rejects duplicate ids with the place of the first one.

    Two *different* prompts whose automatic ids collide (a 32-bit hash) are not duplicates: both
    get a longer automatic id, decided from the whole set, so ids still do not depend on order.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.prompts: list[Prompt] = []
        self.first: dict[str, str] = {}
        self.holders: dict[str, list[Prompt]] = {}
        self.collided: set[str] = set()

    def add(self, prompt: Prompt, where: _Where, place: str) -> None:
        if prompt.id in self.first:
            holders = self.holders[prompt.id]
            if self._hash_collision(prompt, holders):
                self.collided.add(prompt.id)
                holders.append(prompt)
                self.prompts.append(prompt)
                return
            auto = prompt.id.startswith("p-") and len(prompt.id) == 10
            why = " (the same messages; give each an explicit id)" if auto else ""
            raise where.error(
                f"duplicate id {prompt.id!r}, first at {self.first[prompt.id]}{why}", "id"
            )
        self.first[prompt.id] = place
        self.holders[prompt.id] = [prompt]
        self.prompts.append(prompt)

    @staticmethod
    def _hash_collision(prompt: Prompt, holders: list[Prompt]) -> bool:
        if any(h.messages == prompt.messages for h in holders):
            return False  # the same prompt twice: a real duplicate
        return all(_auto_id(p.messages) == p.id for p in (prompt, *holders))

    def result(self) -> PromptSet:
        if not self.prompts:
            raise PromptSetError("no prompts", source=self.source)
        prompts = self.prompts
        if self.collided:
            prompts = [
                dataclasses.replace(p, id=_auto_id(p.messages, LONG_ID_DIGITS))
                if p.id in self.collided
                else p
                for p in prompts
            ]
        return PromptSet(prompts, source=self.source)


# -- sources -----------------------------------------------------------------------------------


def _from_list(items: Sequence[Any], source: str) -> PromptSet:
    builder = _Builder(source)
    for i, item in enumerate(items):
        place = f"item {i}"
        where = _Where(f"{source} {place}", None)
        if isinstance(item, str):
            row: Mapping[str, Any] = {"prompt": item}
        elif isinstance(item, Prompt):
            builder.add(item, where, place)
            continue
        elif isinstance(item, Mapping):
            row = item
        else:
            raise where.error(f"must be a string or a dict, got {type(item).__name__}")
        builder.add(_prompt(row, where), where, place)
    return builder.result()


def _from_jsonl(text: str, source: str) -> PromptSet:
    builder = _Builder(source)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = _Where(source, number)
        try:
            item = json.loads(line)
        except (ValueError, RecursionError) as e:
            raise where.error(f"not valid JSON: {_json_problem(e)}") from None
        if isinstance(item, str):
            item = {"prompt": item}
        if not isinstance(item, dict):
            raise where.error(f"each line must be a JSON object, got {type(item).__name__}")
        builder.add(_prompt(item, where), where, f"line {number}")
    return builder.result()


CSV_FIELD_LIMIT: Final = 2**31 - 1


def _delimiter(text: str) -> str:
    """',' unless the header is one field that splits on ';' or a tab into known columns: what
    spreadsheets in many locales save as "CSV" (an unknown column 'id;prompt' otherwise)."""
    first = text.split("\n", 1)[0].strip("\r")
    if "," not in first:
        for sep in (";", "\t"):
            names = [n.strip().strip('"') for n in first.split(sep)]
            if len(names) > 1 and all(n in FIELDS or n.startswith(VAR_PREFIX) for n in names):
                return sep
    return ","


def _from_csv(text: str, source: str) -> PromptSet:
    # The csv module's default cap (128 KiB per field) would reject long-context prompts; the
    # file is already in memory, so the cap protects nothing here. (A process-wide setting, only
    # ever raised.)
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    try:
        header = next(reader)
    except StopIteration:
        raise PromptSetError("empty file; expected a header row", source=source) from None
    except csv.Error as e:
        raise PromptSetError(f"not valid CSV: {e}", source=source, line=1) from None
    header = [h.strip() for h in header]
    header_where = _Where(source, 1)
    _check_keys(dict.fromkeys(header, ""), header_where, "column")
    dupes = {h for h in header if header.count(h) > 1}
    if dupes:
        raise header_where.error(f"duplicate column {sorted(dupes)[0]!r}", sorted(dupes)[0])
    builder = _Builder(source)
    line = reader.line_num
    while True:
        start = line + 1  # the row's first physical line (quoted fields may span lines)
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise PromptSetError(f"not valid CSV: {e}", source=source, line=start) from None
        line = reader.line_num
        if not values or all(not v.strip() for v in values):
            continue
        where = _Where(source, start)
        if len(values) != len(header):
            raise where.error(f"has {len(values)} fields, the header has {len(header)}")
        row = dict(zip(header, values, strict=True))
        builder.add(_prompt(row, where, "column"), where, f"line {start}")
    return builder.result()


def _from_frame(frame: Any, source: str) -> PromptSet:
    builder = _Builder(source)
    columns = list(frame.columns)
    where = _Where(source, None)
    _check_keys(dict.fromkeys(columns, ""), where, "column")
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    if dupes:
        # to_dict would keep one of them silently (with only a UserWarning).
        raise where.error(f"duplicate column {dupes[0]!r}", dupes[0])
    for index, row in zip(frame.index, frame.to_dict(orient="records"), strict=True):
        place = f"row {index!r}"
        where = _Where(f"{source} {place}", None)
        builder.add(_prompt(row, where, "column"), where, place)
    return builder.result()


def load_prompts(obj: Any, *, source: str | None = None) -> PromptSet:
    """A PromptSet from a list of str/dict, a pandas DataFrame, a path (.jsonl/.csv/.json) or a
    PromptSet (returned as is). Raises PromptSetError naming the file/row and field."""
    if isinstance(obj, PromptSet):
        return obj
    if isinstance(obj, str | os.PathLike):
        return _from_path(Path(obj), source or str(obj))
    if _is_dataframe(obj):
        return _from_frame(obj, source or "DataFrame")
    if isinstance(obj, Sequence) and not isinstance(obj, bytes):
        return _from_list(obj, source or "prompt list")
    raise PromptSetError(
        f"cannot read prompts from a {type(obj).__name__}: pass a list of strings or dicts, "
        "a pandas DataFrame, or a path to a .jsonl or .csv file",
        source=source,
    )


def _is_dataframe(obj: Any) -> bool:
    return type(obj).__name__ == "DataFrame" and hasattr(obj, "to_dict") and hasattr(obj, "columns")


def _from_path(path: Path, source: str) -> PromptSet:
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".csv", ".json"):
        hint = ""
        if not path.exists() and (" " in source or not suffix):
            hint = " (to run one prompt text, pass a list: [text])"
        raise PromptSetError(
            f"unsupported prompt file type {suffix or '(none)'!r}; use .jsonl, .csv or .json"
            + hint,
            source=source,
        )
    try:
        data = path.read_bytes()
    except OSError as e:
        raise PromptSetError(f"cannot read prompt file: {e.strerror}", source=source) from None
    try:
        text = data.decode("utf-8-sig")  # tolerate a BOM from spreadsheet exports
    except UnicodeDecodeError as e:
        raise PromptSetError(
            f"not UTF-8 text: {e.reason} (byte {data[e.start]:#04x}; save the file as UTF-8)",
            source=source,
            line=data.count(b"\n", 0, e.start) + 1,
        ) from None
    if suffix == ".jsonl":
        return _from_jsonl(text, source)
    if suffix == ".csv":
        return _from_csv(text, source)
    try:
        items = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise PromptSetError(
            f"not valid JSON: {_json_problem(e)}", source=source, line=getattr(e, "lineno", None)
        ) from None
    if not isinstance(items, list):
        raise PromptSetError("a .json prompt file must hold a list", source=source)
    return _from_list(items, source)


def demo_prompts() -> PromptSet:
    """The bundled demo set (short, varied prompts a 135M model can answer)."""
    path = Path(__file__).parent / "data" / "demo_prompts.jsonl"
    return _from_jsonl(path.read_text(encoding="utf-8"), "demo_prompts.jsonl")
