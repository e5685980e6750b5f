"""`compare score RUN_DIR --score SPEC ...`: score a saved (or interrupted) run without
re-sending its prompts. Judge and embedding calls are checkpointed in RUN_DIR/judge_records.jsonl,
so scoring that was killed resumes where it stopped.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Final

from compare.cli.args import UsageError, positive_int
from compare.cli.judges import add_score_arg, called, checked_scorers, score_judges
from compare.cli.outcome import EXIT_INTERRUPTED, report_scoring
from compare.cli.source import (
    LOCAL,
    Chosen,
    add_source_args,
    deployments_from_args,
    local_endpoint_for,
    missing_key,
)
from compare.cli.tables import format_scores

EPILOG: Final = """where judge and embedding deployments are found:
  the deployments flags (--deployments FILE, --endpoint/--kind/--deployment NAME, --local),
  else among the run's deployments (RUN_DIR/manifest.json says where they were; keys come from
  the environment), else on the run's endpoint when all its deployments share one.

exit codes:
  0    scored
  1    scored, but some judge/embedding calls failed (their rows score NaN; rerun to retry)
  2    usage or configuration error (argument, run directory, missing key)
  130  interrupted; finished judge calls kept in RUN_DIR/judge_records.jsonl (rerun to resume)"""


def add_parser(sub: Any) -> None:
    """Register `compare score`."""
    p = sub.add_parser("score", help="score a saved run (judges, references) without re-running",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Score the answers of RUN_DIR with one or more scorers; add "
                                   "score_<name> columns to its results.parquet, the long "
                                   "scores.parquet and the scorers to manifest.json, then print "
                                   "the mean of each score per deployment. Scoring again with "
                                   "a scorer of the same name replaces its scores.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    add_score_arg(p, required=True)
    add_source_args(p, "judge and embedding deployments", default_file=False)
    p.add_argument("--concurrency", type=positive_int, default=8, metavar="N",
                   help="rows scored at once (default 8); each judge deployment's own "
                        "concurrency still applies")
    p.add_argument("--max-attempts", type=positive_int, default=5, metavar="N",
                   help="attempts per judge/embedding call incl. retries (default 5)")
    p.set_defaults(func=command)


def _given(args: argparse.Namespace, endpoint: Any, wanted: list[str]) -> Chosen | None:
    """The deployments the flags name, None when no deployments flag was given."""
    if args.local:
        from compare.deployments_file import local_deployments

        kind = (getattr(args, "_current", None) or {}).get("kind") or "azure-inference"
        return Chosen(local_deployments(endpoint, kind=kind, names=wanted), LOCAL)
    if args.deployments or getattr(args, "targets", None):
        return deployments_from_args(args, endpoint)
    if args.only:
        raise UsageError("--only picks from --local or --deployments FILE")
    return None


def command(args: argparse.Namespace) -> int:
    """Score RUN_DIR, print the score means, say where they went."""
    import compare
    from compare.results import Results

    results = Results.load(args.run_dir)
    scorers = checked_scorers(args.score)
    wanted = list(called(args.score))
    with local_endpoint_for(args, args.only or wanted) as ep:
        found = score_judges(results, args.run_dir, args.score, _given(args, ep, wanted))
        for dep, origin in found:
            message = missing_key(dep, origin)
            if message:
                raise UsageError(message)
        calls = f" (model calls to {', '.join(d.name for d, _ in found)})" if found else ""
        print(f"scoring {args.run_dir}: {len(results)} rows with "
              f"{', '.join(s.name for s in scorers)}{calls}", file=sys.stderr)
        try:
            scored = compare.score(results, scorers, score_with=[d for d, _ in found] or None,
                                   concurrency=args.concurrency, max_attempts=args.max_attempts)
        except KeyboardInterrupt:
            return _interrupted(args.run_dir)
    print(format_scores(scored, [s.name for s in scorers]))
    columns = ", ".join(f"score_{s.name}" for s in scorers)
    print(f"\nscores: {args.run_dir}/ (results.parquet: {columns}; scores.parquet; "
          "manifest.json)")
    return report_scoring(scored, scorers)


def _interrupted(run_dir: str) -> int:
    from pathlib import Path

    from compare.checkpoint import read_checkpoint
    from compare.run_dir import JUDGE_RECORDS_FILE

    path = Path(run_dir) / JUDGE_RECORDS_FILE
    n = len(read_checkpoint(path)) if path.exists() else 0
    print(f"\ninterrupted: {n} finished judge/embedding calls kept in {path}; run the same "
          "command again to resume (nothing was written to the results)", file=sys.stderr)
    return EXIT_INTERRUPTED

