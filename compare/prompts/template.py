"""`{name}` templates in prompt text: filled from the row's vars, nothing evaluated."""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from compare.prompts.model import Where, is_blank


def fill_template(text: str, variables: Mapping[str, Any], where: Where, field: str) -> str:
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
            raise where.error(
                f"template field {{{name}}} must be a plain variable name; for literal braces "
                "(JSON in a prompt), write {{ and }}", field)
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
        if is_blank(variables[name]) and not isinstance(variables[name], str):
            # null / NaN would be sent as the text "None" / "nan".
            raise where.error(f"template variable {{{name}}} has no value (null)", field)
        out.append(_var_text(variables[name], name, where, field))
    return "".join(out)


def _var_text(value: Any, name: str, where: Where, field: str) -> str:
    try:
        return value if isinstance(value, str) else str(value)
    except (ValueError, RecursionError) as e:  # e.g. an int past Python's digit limit
        raise where.error(
            f"template variable {{{name}}} cannot be shown as text: {e}", field
        ) from None
