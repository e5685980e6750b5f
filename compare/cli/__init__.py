"""`compare` command line: run, score, summary, stats, diff, show, report, deployments, demo,
serve, app.

One module per command (`run`, `score`, `summary`, `stats`, `diff`, `show`, `report`,
`deployments`, `demo`; `delegate` hands `serve` and `app` to compare.server and compare.voila),
plus `parser` (the top level), `args` (the parser class and argparse types), `source` (where
deployments come from), `judges` (`--score` and where judge deployments come from), `tables`
(the printed summary), `stats_text` (statistics tables and their legends) and `outcome` (exit
codes, failure report, charts, reading a user's file).

Exit codes (scripts can rely on them):
  0    done; every row ok (or content_filtered: the service answered with a filter verdict)
  1    done, but some rows failed (error, timeout, rate_limited, incomplete) or judge calls
       failed; results written. `compare diff --fail-if-worse M`: the new run is significantly
       worse on M
  2    usage or configuration error (bad argument, unreadable or invalid file, missing key)
  130  interrupted (Ctrl-C); finished records are kept in OUT/records.jsonl (judge calls in
       OUT/judge_records.jsonl) — run the same command again to resume
Errors are printed as one line naming the file or argument, without a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from compare.cli.args import UsageError
from compare.cli.outcome import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `compare` command line with `argv` (default sys.argv[1:]); the exit code."""
    from compare.cli.delegate import DELEGATED, delegate
    from compare.cli.parser import build_parser

    given = list(sys.argv[1:] if argv is None else argv)
    _say_what_the_runner_does()
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


def _say_what_the_runner_does() -> None:
    """The runner's notes for a person at a terminal (e.g. "resuming runs/x: 40 finished, 10 to
    send") go to stderr as plain lines; warnings too, without Python's file:line prefix."""
    import logging
    import warnings

    log = logging.getLogger("compare")
    if not any(getattr(h, "_compare_cli", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._compare_cli = True  # type: ignore[attr-defined]
        log.addHandler(handler)
        log.setLevel(logging.INFO)

    def show(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
        print(f"warning: {message}", file=sys.stderr)

    warnings.showwarning = show  # type: ignore[assignment]


def _guard(command: Callable[[], int]) -> int:
    """Run a command; our errors and file errors become one line on stderr, never a traceback."""
    from compare.errors import CompareError

    try:
        return int(command())
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`compare stats RUN | head`): stop quietly, as Unix tools do.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (UsageError, CompareError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (FileNotFoundError, PermissionError, IsADirectoryError) as e:
        where = f"{e.filename}: " if e.filename else ""
        print(f"error: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
