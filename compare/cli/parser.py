"""The `compare` parser: the top level and one subcommand per module in compare.cli."""

from __future__ import annotations

import argparse

from compare.cli import delegate, demo, deployments, report, run, show, summary
from compare.cli.args import Parser
from compare.cli.outcome import EXIT_CODES_HELP


def build_parser() -> argparse.ArgumentParser:
    """`compare` and its subcommands, in the order `compare --help` lists them."""
    parser = Parser(
        prog="compare",
        description="Fan one prompt set out to several LLM deployments and compare outputs, "
                    "latencies, tokens and cost.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    run.add_parser(sub)
    summary.add_parser(sub)
    show.add_parser(sub)
    report.add_parser(sub)
    deployments.add_parser(sub)
    demo.add_parser(sub)
    delegate.add_parsers(sub)
    return parser
