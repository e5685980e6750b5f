"""`compare run`: send a prompt set to deployments, write the run directory, print the summary."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from compare.cli.args import add_progress, positive_int, progress_enabled
from compare.cli.judges import add_score_arg, checked_scorers, local_names, run_judges
from compare.cli.outcome import (
    CHARTS_FILE,
    EXIT_CODES_HELP,
    interrupted,
    print_where,
    read_file,
    report_failures,
    report_scoring,
    write_charts,
)
from compare.cli.source import (
    Chosen,
    add_source_args,
    check_keys,
    deployments_from_args,
    local_endpoint_for,
)
from compare.cli.tables import format_summary

OVERRIDES = ("temperature", "max_tokens", "top_p", "seed")


def add_parser(sub: Any) -> None:
    """Register `compare run`."""
    p = sub.add_parser("run", help="run a prompt set against deployments", epilog=EXIT_CODES_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Send every prompt to every deployment REPEATS times; "
                                   "write OUT/results.parquet, manifest.json, charts.png and "
                                   "the records.jsonl checkpoint (rerun with the same --out to "
                                   "resume), then print the summary.")
    p.add_argument("--prompts", "-p", required=True, metavar="FILE",
                   help="prompt set: .jsonl, .csv or .json")
    add_source_args(p)
    p.add_argument("--repeats", "-n", type=positive_int, default=1, metavar="N")
    p.add_argument("--out", "-o", metavar="DIR", help="run directory (default runs/<run id>); "
                   "an existing one is resumed")
    p.add_argument("--fresh", action="store_true",
                   help="start over in --out instead of resuming the run there")
    p.add_argument("--run-id", metavar="ID")
    p.add_argument("--concurrency", type=positive_int, default=32, metavar="N",
                   help="global in-flight limit (default 32)")
    p.add_argument("--max-attempts", type=positive_int, default=5, metavar="N",
                   help="attempts per request incl. retries (default 5)")
    p.add_argument("--workers", type=positive_int, metavar="N",
                   help="run in N processes on this machine, the prompt × deployment × repeat "
                        "keys sharded among them; rate limits hold across all of them")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="run the shards on a Ray cluster: auto, host:port or local (needs "
                        "compare[ray]; --workers is then the number of shards; --out must be "
                        "on a filesystem every node writes)")
    p.add_argument("--no-stream", action="store_true", help="non-streaming requests (no TTFT)")
    p.add_argument("--no-charts", action="store_true", help=f"do not write OUT/{CHARTS_FILE}")
    p.add_argument("--temperature", type=float)
    p.add_argument("--max-tokens", type=positive_int, dest="max_tokens")
    p.add_argument("--top-p", type=float, dest="top_p")
    p.add_argument("--seed", type=int)
    add_score_arg(p)
    add_progress(p)
    p.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    """Run, print the summary and where the results are; exit 1 when rows failed."""
    from compare.prompts import load_prompts
    from compare.runner import new_run_id, run

    prompts = read_file(args.prompts, load_prompts, "prompt set")
    scorers = checked_scorers(args.score)
    out = Path(args.out) if args.out else Path("runs") / new_run_id()
    overrides = {k: getattr(args, k) for k in OVERRIDES if getattr(args, k) is not None}
    with local_endpoint_for(args, local_names(args)) as ep:
        chosen = deployments_from_args(args, ep)
        judges = run_judges(args, chosen, args.score, ep)
        check_keys(chosen)
        check_keys(Chosen(judges, chosen.origin))
        try:
            # fail_fast: a deployment whose first request shows it cannot be used at all
            # stops the run (exit 2), one line per such deployment. A sharded run cannot stop
            # every shard at once: each warns and goes on without it.
            sharded = args.workers is not None or args.ray is not None
            results = run(prompts, chosen.deployments, repeats=args.repeats, out=out,
                          stream=not args.no_stream, concurrency=args.concurrency,
                          max_attempts=args.max_attempts, progress=progress_enabled(args),
                          run_id=args.run_id, fresh=args.fresh, fail_fast=not sharded,
                          workers=args.workers, ray=args.ray, scorers=scorers or None,
                          score_with=judges or None, **overrides)
        except KeyboardInterrupt:
            return interrupted(out)
    print(format_summary(results))
    chart = None if args.no_charts else write_charts(results, out / CHARTS_FILE)
    print_where(out, chart)
    return max(report_failures(results), report_scoring(results, scorers))
