"""Prompt sets from their sources: a Python list, JSONL, CSV, JSON, a DataFrame; `load_prompts`."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from compare.errors import PromptSetError
from compare.prompts.model import FIELDS, VAR_PREFIX, Prompt, PromptSet
from compare.prompts.rows import (
    LONG_ID_DIGITS,
    Where,
    auto_id,
    check_keys,
    json_error_text,
    prompt_from_row,
)


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

    def add(self, prompt: Prompt, where: Where, place: str) -> None:
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
        return all(auto_id(p.messages) == p.id for p in (prompt, *holders))

    def result(self) -> PromptSet:
        if not self.prompts:
            raise PromptSetError("no prompts", source=self.source)
        prompts = self.prompts
        if self.collided:
            prompts = [
                dataclasses.replace(p, id=auto_id(p.messages, LONG_ID_DIGITS))
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
        where = Where(f"{source} {place}", None)
        if isinstance(item, str):
            row: Mapping[str, Any] = {"prompt": item}
        elif isinstance(item, Prompt):
            builder.add(item, where, place)
            continue
        elif isinstance(item, Mapping):
            row = item
        else:
            raise where.error(f"must be a string or a dict, got {type(item).__name__}")
        builder.add(prompt_from_row(row, where), where, place)
    return builder.result()


def _from_lines(text: str, source: str) -> PromptSet:
    """A .txt file: one prompt per non-blank line, sent as written (no templates), ids from
    the text."""
    builder = _Builder(source)
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            where = Where(source, number)
            builder.add(prompt_from_row({"prompt": line.strip()}, where), where, f"line {number}")
    return builder.result()


def canonical_column(name: str) -> str:
    """A CSV/DataFrame column name as the field it means: spreadsheets write `ID`, `Prompt`,
    `Vars.topic`; field names are matched without regard to case or surrounding spaces."""
    stripped = name.strip()
    lower = stripped.lower()
    if lower in FIELDS:
        return lower
    if lower.startswith(VAR_PREFIX):
        return VAR_PREFIX + stripped[len(VAR_PREFIX):]
    return stripped


def _from_jsonl(text: str, source: str) -> PromptSet:
    builder = _Builder(source)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = Where(source, number)
        try:
            item = json.loads(line)
        except (ValueError, RecursionError) as e:
            raise where.error(f"not valid JSON: {json_error_text(e)}") from None
        if isinstance(item, str):
            item = {"prompt": item}
        if not isinstance(item, dict):
            raise where.error(f"each line must be a JSON object, got {type(item).__name__}")
        builder.add(prompt_from_row(item, where), where, f"line {number}")
    return builder.result()


CSV_FIELD_LIMIT: Final = 2**31 - 1


def _delimiter(text: str) -> str:
    """',' unless the header is one field that splits on ';' or a tab into known columns: what
    spreadsheets in many locales save as "CSV" (an unknown column 'id;prompt' otherwise)."""
    first = text.split("\n", 1)[0].strip("\r")
    if "," not in first:
        for sep in (";", "\t"):
            names = [canonical_column(n.strip().strip('"')) for n in first.split(sep)]
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
    header = [canonical_column(h) for h in header]
    header_where = Where(source, 1)
    check_keys(dict.fromkeys(header, ""), header_where, "column")
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
        where = Where(source, start)
        if len(values) != len(header):
            raise where.error(f"has {len(values)} fields, the header has {len(header)}")
        row = dict(zip(header, values, strict=True))
        builder.add(prompt_from_row(row, where, "column"), where, f"line {start}")
    return builder.result()


def _from_frame(frame: Any, source: str) -> PromptSet:
    builder = _Builder(source)
    frame = frame.rename(columns=lambda c: canonical_column(c) if isinstance(c, str) else c)
    columns = list(frame.columns)
    where = Where(source, None)
    check_keys(dict.fromkeys(columns, ""), where, "column")
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    if dupes:
        # to_dict would keep one of them silently (with only a UserWarning).
        raise where.error(f"duplicate column {dupes[0]!r}", dupes[0])
    for index, row in zip(frame.index, frame.to_dict(orient="records"), strict=True):
        place = f"row {index!r}"
        where = Where(f"{source} {place}", None)
        builder.add(prompt_from_row(row, where, "column"), where, place)
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
    if suffix not in (".jsonl", ".csv", ".json", ".txt"):
        hint = ""
        if not path.exists() and (" " in source or not suffix):
            hint = " (to run one prompt text, pass a list: [text])"
        raise PromptSetError(
            f"unsupported prompt file type {suffix or '(none)'!r}; use .jsonl, .csv, .json or "
            ".txt (one prompt per line)" + hint,
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
    if suffix == ".txt":
        return _from_lines(text, source)
    if suffix == ".csv":
        return _from_csv(text, source)
    try:
        items = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise PromptSetError(
            f"not valid JSON: {json_error_text(e)}", source=source, line=getattr(e, "lineno", None)
        ) from None
    if not isinstance(items, list):
        raise PromptSetError("a .json prompt file must hold a list", source=source)
    return _from_list(items, source)


def demo_prompts() -> PromptSet:
    """The bundled demo set (short, varied prompts a 135M model can answer)."""
    path = Path(__file__).parents[1] / "data" / "demo_prompts.jsonl"
    return _from_jsonl(path.read_text(encoding="utf-8"), "demo_prompts.jsonl")
