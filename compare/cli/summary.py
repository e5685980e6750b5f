"""`compare summary RUN_DIR`: the per-deployment summary of a saved (or interrupted) run."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from compare.cli.outcome import EXIT_CODES_HELP, EXIT_OK
from compare.cli.tables import format_summary


def add_parser(sub: Any) -> None:
    """Register `compare summary`."""
    p = sub.add_parser("summary", help="print the summary of a run directory",
                       epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Per-deployment summary of runs/NAME (results.parquet, or "
                                   "records.jsonl of an interrupted run).")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    """Print the summary as a table (with metric definitions), CSV or JSON."""
    from compare.results import Results

    results = Results.load(args.run_dir)
    if args.format == "csv":
        results.summary().to_csv(sys.stdout)
    elif args.format == "json":
        print(results.summary().to_json(orient="index", indent=2))
    else:
        print(format_summary(results))
    return EXIT_OK
