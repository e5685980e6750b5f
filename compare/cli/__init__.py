"""`compare` command line: run, summary, deployments, demo, serve, app.

One module per command (`run`, `summary`, `deployments`, `demo`; `delegate` hands `serve` and
`app` to compare.server and compare.voila), plus `args` (the parser class and argparse types),
`source` (where deployments come from), `tables` (the printed summary) and `outcome` (exit codes,
failure report, reading a user's file).

Exit codes (scripts can rely on them):
  0    done; every row ok (or content_filtered: the service answered with a filter verdict)
  1    done, but some rows failed (error, timeout, rate_limited, incomplete); results written
  2    usage or configuration error (bad argument, unreadable or invalid file, missing key)
  130  interrupted (Ctrl-C); finished records are kept in OUT/records.jsonl — run the same
       command again to resume
Errors are printed as one line naming the file or argument, without a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from compare.cli.args import UsageError
from compare.cli.outcome import EXIT_INTERRUPTED, EXIT_USAGE

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `compare` command line with `argv` (default sys.argv[1:]); the exit code."""
    from compare.cli.delegate import DELEGATED, delegate
    from compare.cli.parser import build_parser

    given = list(sys.argv[1:] if argv is None else argv)
    if given and given[0] in DELEGATED:
        return _guard(lambda: delegate(given[0], given[1:]))
    parser = build_parser()
    try:
        args = parser.parse_args(given)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    return _guard(lambda: args.func(args))


def _guard(command: Callable[[], int]) -> int:
    """Run a command; our errors and file errors become one line on stderr, never a traceback."""
    from compare.errors import CompareError

    try:
        return int(command())
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (UsageError, CompareError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (FileNotFoundError, PermissionError, IsADirectoryError) as e:
        where = f"{e.filename}: " if e.filename else ""
        print(f"error: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
