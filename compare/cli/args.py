"""Argument parsing shared by every command: the parser class whose errors are one line (exit 2)
with a did-you-mean for unknown flags and choices, and the argparse types that parse a value once,
where it is read (`--only`, counts, variable names).

`compare app` (compare.voila) uses the same types, so a name list means the same everywhere.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Any, Final, NoReturn

from compare._checks import hint

# Flags people bring from other tools, and the one they mean here.
FLAG_ALIASES: Final = {
    "--model": "--deployment",
    "--models": "--deployment",
    "--api-key": "--api-key-env",
    "--key": "--api-key-env",
    "--output": "--out",
}
_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INVALID_CHOICE: Final = re.compile(r"invalid choice: '([^']*)' \(choose from (.*)\)")


class UsageError(Exception):
    """A bad command line; printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise UsageError instead of printing usage and exiting,
    and whose unknown flags and choices get a did-you-mean."""

    def error(self, message: str) -> NoReturn:
        found = _INVALID_CHOICE.search(message)
        if found:
            message += hint(found.group(1), re.findall(r"'([^']*)'", found.group(2)))
        raise UsageError(f"{self.prog}: {message}")

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            chosen = self._subcommand(parsed)
            raise UsageError(f"{chosen.prog}: {unrecognized(extras, chosen)}")
        return parsed

    def _subcommand(self, parsed: argparse.Namespace) -> argparse.ArgumentParser:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = action.choices.get(getattr(parsed, action.dest, None) or "")
                if chosen is not None:
                    return chosen
        return self


def unrecognized(extras: Sequence[str], parser: argparse.ArgumentParser) -> str:
    """'unrecognized argument --model (did you mean '--deployment'?)': flags only, never the
    values after them (one could be a key pasted where it does not belong)."""
    flags = [e.split("=", 1)[0] for e in extras if e.startswith("-")]
    shown = flags or [e if len(e) <= 40 else e[:37] + "..." for e in extras]
    known = [o for o in parser._option_string_actions if o.startswith("--")]
    parts = []
    for flag in shown:
        alias = FLAG_ALIASES.get(flag)
        suggestion = f" (did you mean {alias!r}?)" if alias in known else hint(flag, known)
        parts.append(flag + (suggestion if flag.startswith("-") else ""))
    word = "argument" if len(parts) == 1 else "arguments"
    return f"unrecognized {word} {', '.join(parts)}"


def name_list(text: str) -> list[str]:
    """argparse type of `--only`: comma-separated deployment names, in the order given."""
    found = [n.strip() for n in text.split(",") if n.strip()]
    if not found:
        raise argparse.ArgumentTypeError("give at least one deployment name (a,b,c)")
    duplicates = sorted({n for n in found if found.count(n) > 1})
    if duplicates:
        raise argparse.ArgumentTypeError(f"{duplicates[0]!r} is named twice")
    return found


def env_name(text: str) -> str:
    """argparse type of `--api-key-env`: the NAME of an environment variable, never a key."""
    if not _ENV_NAME.fullmatch(text):
        # Not echoed: what was given may be the key itself.
        raise argparse.ArgumentTypeError(
            "give the name of an environment variable (letters, digits and _, e.g. "
            "MY_AZURE_KEY) that holds the key, not the key itself")
    return text


def positive_int(text: str) -> int:
    """argparse type of counts (`--repeats`, `--concurrency`, ...): an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_progress(p: argparse.ArgumentParser) -> None:
    """--progress / --no-progress (default: a bar when stderr is a terminal)."""
    p.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="show a progress bar (default: when stderr is a terminal)")
    p.add_argument("--no-progress", dest="progress", action="store_false")


def progress_enabled(args: Any) -> bool:
    """Whether to draw a progress bar: the flag when given, else whether stderr is a terminal."""
    import sys

    if args.progress is not None:
        return bool(args.progress)
    return sys.stderr.isatty()
