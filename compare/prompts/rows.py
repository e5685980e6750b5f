"""One row (a dict from a list, a JSONL line, a CSV or DataFrame row) → one `Prompt`, or one
PromptSetError naming the source, line and field."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from compare._checks import hint
from compare.errors import PromptSetError
from compare.prompts.model import FIELDS, ROLES, VAR_PREFIX, Prompt, Where, is_blank
from compare.prompts.template import fill_template

# -- building one prompt from a row ------------------------------------------------------------


def _messages(row: Mapping[str, Any], variables: Mapping[str, Any], where: Where) -> list[dict]:
    has_prompt = not is_blank(row.get("prompt"))
    has_messages = not is_blank(row.get("messages"))
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
        messages = [{"role": "user", "content": fill_template(prompt, variables, where, "prompt")}]
    else:
        messages = _parse_messages(row["messages"], variables, where)
    system = row.get("system")
    if not is_blank(system):
        if not isinstance(system, str):
            raise where.error(f"must be text, got {type(system).__name__}", "system")
        if any(m["role"] in ("system", "developer") for m in messages):
            raise where.error("given both 'system' and a system message in 'messages'", "system")
        content = fill_template(system, variables, where, "system")
        messages.insert(0, {"role": "system", "content": content})
    return messages


def _parse_messages(raw: Any, variables: Mapping[str, Any], where: Where) -> list[dict]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError) as e:
            raise where.error(f"not valid JSON: {json_error_text(e)}", "messages") from None
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
                f"bad role {role!r}{hint(role, ROLES)}; allowed: {', '.join(ROLES)}", label
            )
        content = message.get("content")
        if isinstance(content, str):
            if not content.strip():
                raise where.error("empty content", label)
            content = fill_template(content, variables, where, label)
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


def _check_parts(parts: list[Any], where: Where, label: str) -> None:
    """Content parts (multimodal form): objects with a `type`; a text part's `text` is text.
    Other part types (image_url, input_audio, ...) are passed on as given."""
    for j, part in enumerate(parts):
        if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
            raise where.error(f"content[{j}] must be an object with a 'type'", label)
        if part["type"] == "text" and not isinstance(part.get("text"), str):
            raise where.error(f"content[{j}] is a text part without 'text' text", label)


def _vars(row: Mapping[str, Any], where: Where) -> dict[str, Any]:
    variables: dict[str, Any] = {}
    raw = row.get("vars")
    if not is_blank(raw):
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except (ValueError, RecursionError) as e:
                raise where.error(f"not valid JSON: {json_error_text(e)}", "vars") from None
        if not isinstance(raw, Mapping) or not all(isinstance(k, str) for k in raw):
            raise where.error("must be a mapping of name to value", "vars")
        variables.update(raw)
    for key, value in row.items():
        if isinstance(key, str) and key.startswith(VAR_PREFIX) and not is_blank(value):
            name = key[len(VAR_PREFIX) :]
            if not name.isidentifier():
                raise where.error("variable names must be identifiers", key)
            variables[name] = value
    return variables


def _tags(raw: Any, where: Where) -> tuple[str, ...]:
    if is_blank(raw):
        return ()
    if type(raw).__name__ == "ndarray":  # a DataFrame cell built from numpy arrays
        raw = raw.tolist()
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):
            try:
                raw = json.loads(text)
            except (ValueError, RecursionError) as e:
                raise where.error(f"not valid JSON: {json_error_text(e)}", "tags") from None
        else:
            sep = ";" if ";" in text else ","
            raw = [t.strip() for t in text.split(sep) if t.strip()]
    if isinstance(raw, list | tuple) and all(isinstance(t, str) and t.strip() for t in raw):
        return tuple(t.strip() for t in raw)
    raise where.error("must be a list of non-empty strings", "tags")


def json_error_text(e: Exception) -> str:
    """What json.loads disliked. Besides syntax errors (with a column), the decoder raises a
    RecursionError for deep nesting and a plain ValueError for integers past Python's digit limit;
    neither may escape a loader."""
    if isinstance(e, json.JSONDecodeError):
        return f"{e.msg} (column {e.colno})"
    if isinstance(e, RecursionError):
        return "nested too deeply"
    return str(e)


def auto_id(messages: list[dict[str, Any]], digits: int = 8) -> str:
    digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()
    return f"p-{digest[:digits]}"


# 8 hex digits are 32 bits: among 10,000 prompts two different ones share an id with ~1 %
# probability, among 100,000 almost surely. Colliding prompts get this many digits instead.
LONG_ID_DIGITS: Final = 16


def check_keys(row: Mapping[str, Any], where: Where, what: str) -> None:
    for key in row:
        if not isinstance(key, str):
            raise where.error(f"{what} names must be text, got {key!r}")
        if key in FIELDS or key.startswith(VAR_PREFIX):
            continue
        raise where.error(
            f"unknown {what} {key!r}{hint(key, FIELDS)}; allowed: {', '.join(FIELDS)} "
            f"and {VAR_PREFIX}<name>",
            key,
        )


def prompt_from_row(row: Mapping[str, Any], where: Where, what: str = "key") -> Prompt:
    try:
        return _buildprompt_from_row(row, where, what)
    except PromptSetError:
        raise
    except (TypeError, ValueError, RecursionError) as e:
        # Backstop for values no check above foresaw (from Python lists and DataFrames anything
        # can arrive: an int past the digit limit as id, unserialisable content parts, ...):
        # still one PromptSetError naming the row, never a raw exception from inside.
        raise where.error(f"cannot read this row: {type(e).__name__}: {e}") from None


def _buildprompt_from_row(row: Mapping[str, Any], where: Where, what: str) -> Prompt:
    check_keys(row, where, what)
    variables = _vars(row, where)
    messages = _messages(row, variables, where)
    raw_id = row.get("id")
    if is_blank(raw_id):
        pid = auto_id(messages)
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
    if is_blank(reference):
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
    _check_unicode(prompt, where, from_prompt=not is_blank(row.get("prompt")))
    return prompt


def _check_unicode(prompt: Prompt, where: Where, from_prompt: bool) -> None:
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
