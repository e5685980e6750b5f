"""The `compare` parser: the top level and one subcommand per module in compare.cli."""

from __future__ import annotations

import argparse

from compare.cli import (
    delegate,
    demo,
    deployments,
    diff,
    report,
    run,
    score,
    show,
    stats,
    summary,
)
from compare.cli.args import Parser

TOP_EPILOG = """exit codes (details: compare COMMAND --help):
  0    done (every row ok, or content_filtered)
  1    done, but some rows or judge calls failed; `compare diff --fail-if-worse M`: the
       new run is significantly worse on M
  2    usage or configuration error (argument, file, missing key)
  130  interrupted; rerun the same command to resume"""


def build_parser() -> argparse.ArgumentParser:
    """`compare` and its subcommands, in the order `compare --help` lists them."""
    parser = Parser(
        prog="compare",
        description="Fan one prompt set out to several LLM deployments and compare outputs, "
                    "latencies, tokens, cost and scores, and whether the differences are real.",
        epilog=TOP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    run.add_parser(sub)
    score.add_parser(sub)
    summary.add_parser(sub)
    stats.add_parser(sub)
    diff.add_parser(sub)
    show.add_parser(sub)
    report.add_parser(sub)
    deployments.add_parser(sub)
    demo.add_parser(sub)
    delegate.add_parsers(sub)
    return parser
