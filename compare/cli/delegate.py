"""`compare serve` and `compare app`: commands with their own parsers, handed their arguments as
given (`compare serve --help` is the local endpoint's help, `compare app --help` the web app's).
"""

from __future__ import annotations

from typing import Any, Final

DELEGATED: Final = ("serve", "app")


def add_parsers(sub: Any) -> None:
    """List the delegated commands in `compare --help` (their arguments are parsed elsewhere)."""
    sub.add_parser("serve", help="start the local endpoint (see `compare serve --help`)",
                   add_help=False)
    sub.add_parser("app", help="start the explorer app (see `compare app --help`)",
                   add_help=False)


def delegate(command: str, argv: list[str]) -> int:
    """Run `compare serve` (compare.server) or `compare app` (compare.voila) with `argv`."""
    if command == "serve":
        from compare.server.__main__ import main as serve_main

        code = serve_main(argv)
    else:
        from compare.voila import main as app_main

        code = app_main(argv)
    return int(code or 0)
