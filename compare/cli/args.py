"""Argument parsing shared by every command: the parser class whose errors are one line (exit 2),
and the argparse types that parse a value once, where it is read (`--only`, counts).

`compare app` (compare.voila) uses the same types, so a name list means the same everywhere.
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn


class UsageError(Exception):
    """A bad command line; printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise UsageError instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def name_list(text: str) -> list[str]:
    """argparse type of `--only`: comma-separated deployment names, in the order given."""
    found = [n.strip() for n in text.split(",") if n.strip()]
    if not found:
        raise argparse.ArgumentTypeError("give at least one deployment name (a,b,c)")
    duplicates = sorted({n for n in found if found.count(n) > 1})
    if duplicates:
        raise argparse.ArgumentTypeError(f"{duplicates[0]!r} is named twice")
    return found


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
