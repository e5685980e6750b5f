"""`compare report RUN [-o FILE]`: the run as one self-contained HTML file (compare.report)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from compare._checks import hint
from compare.cli.args import UsageError
from compare.cli.outcome import EXIT_CODES_HELP, EXIT_OK

DEFAULT_NAME = "report.html"


def add_parser(sub: Any) -> None:
    """Register `compare report`."""
    p = sub.add_parser("report", help="one self-contained HTML report of a run",
                       epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Write one HTML file with the summary, charts (embedded), "
                                   "the mean of each score, statistics (leaderboards, the paired "
                                   "comparison against a baseline with its forest plot, quality "
                                   "against cost and latency), outputs side by side, rows not ok "
                                   "and the manifest without secrets: something to mail or "
                                   "attach to a pull request.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", "-o", metavar="FILE",
                   help=f"where to write it (default RUN_DIR/{DEFAULT_NAME})")
    p.add_argument("--title", help="heading (default: 'compare report: RUN_ID')")
    p.add_argument("--baseline", metavar="NAME",
                   help="the deployment the others are compared with (default: the first)")
    p.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    """Load RUN_DIR, write the report, say where."""
    from compare.report import write_report
    from compare.results import Results

    results = Results.load(args.run_dir)
    names = results.deployments
    if args.baseline is not None and args.baseline not in names:
        raise UsageError(f"--baseline {args.baseline}: {args.run_dir} has no deployment "
                         f"{args.baseline!r}{hint(args.baseline, names)}; it has: "
                         f"{', '.join(names)}")
    target = Path(args.out) if args.out else Path(args.run_dir) / DEFAULT_NAME
    path = write_report(results, target, title=args.title, baseline=args.baseline)
    print(f"report: {path} ({path.stat().st_size // 1024} KiB)")
    return EXIT_OK
