"""Value checks with messages a user can act on, shared by every validator (deployments, prompts,
the server's deployments file): a bounded repr, a did-you-mean hint, typed checks."""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from compare.errors import ConfigError


def show(value: object, limit: int = 80) -> str:
    """`repr` for error messages, bounded: file values can be huge (an int past Python's
    4300-digit str limit makes repr itself raise) or deeply nested."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        return f"<a {type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def hint(word: object, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or ''."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def is_number(value: Any) -> bool:
    """A finite int or float, not a bool."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float (YAML reads 400 digits as an int)
        return False


def is_int(value: Any) -> bool:
    """An int, not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def json_problem(value: Any, *, allow_nan: bool) -> str | None:
    """Why JSON cannot carry `value`, or None."""
    try:
        json.dumps(value, allow_nan=allow_nan)
    except (TypeError, ValueError, RecursionError) as e:
        return str(e) if not isinstance(e, RecursionError) else "nested too deeply"
    return None


def check_str(value: Any, name: str, *, required: bool = False) -> None:
    """`value` is None (when not required) or non-blank text; else ConfigError naming `name`."""
    if value is None and not required:
        return
    if not isinstance(value, str) or not value.strip():
        # Never echo what was given as a key, however malformed.
        got = type(value).__name__ if name == "api_key" else show(value)
        raise ConfigError(f"{name} must be a non-empty string, got {got}", field=name)


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> None:
    """`value` is one of `choices`; else ConfigError with a did-you-mean."""
    if value not in choices:
        raise ConfigError(
            f"{name} must be one of {', '.join(choices)}; got {show(value)}{hint(value, choices)}",
            field=name,
        )


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a base URL, or None. Checked here because each SDK fails differently
    on a malformed one, some only at the first request and with their own exception types
    (ValueError, httpx InvalidURL, an ExceptionGroup for an out-of-range port)."""
    if any(c.isspace() or not c.isprintable() for c in url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port outside 0-65535
    except ValueError as e:
        return f"is not a valid URL ({e})"
    if not parts.hostname:
        return "has no host name"
    if "@" in parts.netloc:
        # It would be stored with the deployment (manifests, frames): keys go in api_key.
        return "must not contain credentials (user:password@); pass the key as api_key"
    if parts.query or parts.fragment or "?" in url or "#" in url:
        return "must be a base URL without '?' or '#' (set api_version separately)"
    return None
