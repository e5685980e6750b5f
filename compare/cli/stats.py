"""`compare stats RUN_DIR`: is the difference between deployments real? The paired comparison
table (compare.stats.compare: per metric, b − a on per-prompt values, an interval, a test chosen
by the metric's kind, Holm over the table) and a leaderboard per metric, with a legend.
"""

from __future__ import annotations

import argparse
import json
import warnings
from typing import Any, Final

from compare._checks import hint
from compare.cli.args import UsageError
from compare.cli.outcome import EXIT_OK
from compare.cli.stats_text import (
    comparison_legend,
    comparison_view,
    leaderboard_heading,
    leaderboard_view,
    note_lines,
    omnibus_lines,
    records,
    render,
)

FORMATS: Final = ("table", "csv", "json", "markdown")
TESTS: Final = ("auto", "bootstrap", "permutation")
TABLES: Final = ("both", "compare", "leaderboard")
EPILOG: Final = """formats:
  table, markdown  the comparison and the leaderboards, with a legend (for people, READMEs)
  json             {"comparison": [...], "omnibus": [...], "leaderboards": {metric: [...]}}
  csv              one table: the comparison (--table leaderboard: the leaderboards, one row
                   per metric and deployment); every column compare.stats computes

exit codes:
  0    done
  2    usage error (argument, run directory, metric or deployment not in the run)
  130  interrupted (nothing is written)"""


def alpha_value(text: str) -> float:
    """argparse type of --alpha: a number between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number such as 0.05, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (e.g. 0.05), got {text}")
    return value


def add_common(p: argparse.ArgumentParser) -> None:
    """--metric, --alpha, --test and --format, shared with `compare diff`."""
    p.add_argument("--metric", action="append", metavar="M", dest="metrics",
                   help="a metric column (repeat for several; score_NAME or just NAME for a "
                        "score; default: every score, then latency_s, ttft_s and cost)")
    p.add_argument("--alpha", type=alpha_value, default=0.05, metavar="A",
                   help="significance level after Holm's adjustment; intervals are 1 − A "
                        "(default 0.05)")
    p.add_argument("--test", choices=TESTS, default="auto",
                   help="auto: by metric kind (McNemar, paired t, Wilcoxon, log-ratio t); or "
                        "bootstrap / permutation for every row (default auto)")
    p.add_argument("--format", choices=FORMATS, default="table")


def add_parser(sub: Any) -> None:
    """Register `compare stats`."""
    p = sub.add_parser("stats", help="is the difference real? paired tests and leaderboards",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Compare the deployments of RUN_DIR prompt by prompt: per "
                                   "metric, the difference with its interval and a p-value "
                                   "adjusted (Holm) over the whole table, and a leaderboard of "
                                   "means with intervals. Each prompt is one unit: its repeats "
                                   "are averaged.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--baseline", metavar="NAME",
                   help="compare every deployment with this one (default: every pair)")
    p.add_argument("--by", metavar="tag|COLUMN",
                   help="one comparison per prompt tag (tag) or per value of a column")
    add_common(p)
    p.add_argument("--table", choices=TABLES, default="both",
                   help="which tables to print (csv holds one: default compare)")
    p.set_defaults(func=command)


def _metric_hint(name: str, columns: list[str]) -> str:
    """Did-you-mean over the columns and the scores' short names (exatc → score_exact)."""
    import difflib

    short = {c.removeprefix("score_"): c for c in columns if c.startswith("score_")}
    close = difflib.get_close_matches(name, [*columns, *short], n=1, cutoff=0.6)
    return f" (did you mean {short.get(close[0], close[0])!r}?)" if close else ""


def metric_names(given: list[str] | None, frames: list[Any], runs: list[str],
                 flag: str = "--metric") -> list[str] | None:
    """The values of `flag` as metric columns of every frame (NAME means score_NAME when that
    is one); a run without one is a usage error naming the flag, the run and the fix."""
    from compare.stats.metrics import numeric_columns

    if not given:
        return None
    out = []
    have = [numeric_columns(frame) for frame in frames]
    for name in given:
        column = name if any(name in h for h in have) or not any(
            f"score_{name}" in h for h in have) else f"score_{name}"
        for run, columns in zip(runs, have, strict=True):
            if column in columns:
                continue
            elsewhere = [r for r, c in zip(runs, have, strict=True) if column in c]
            fix = (f"; score this run too (compare score {run} --score ...)"
                   if column.startswith("score_") and elsewhere else
                   f"; it has: {', '.join(columns)}")
            raise UsageError(f"{flag} {name}: {run} has no metric column {column!r}"
                             f"{_metric_hint(name, columns)}{fix}")
        out.append(column)
    return list(dict.fromkeys(out))


def _check_args(args: argparse.Namespace, results: Any) -> None:
    names = results.deployments
    if args.baseline is not None and args.baseline not in names:
        raise UsageError(f"--baseline {args.baseline}: {args.run_dir} has no deployment "
                         f"{args.baseline!r}{hint(args.baseline, names)}; it has: "
                         f"{', '.join(names)}")
    if args.by in (None, "tag"):
        return
    frame = results.frame
    if args.by not in frame.columns:
        columns = [str(c) for c in frame.columns]
        raise UsageError(f"--by {args.by}: {args.run_dir} has no column {args.by!r}"
                         f"{hint(args.by, ['tag', *columns])}; use --by tag (prompt tags) or "
                         "a column such as a label_<key> one")
    if frame[args.by].map(lambda v: not isinstance(v, str | int | float | bool)).any():
        raise UsageError(f"--by {args.by}: column {args.by!r} holds lists, not one value per "
                         "row; --by tag splits by prompt tag")


def _leaderboards(results: Any, metrics: list[str], level: float) -> dict[str, Any]:
    return {m: results.leaderboard(m, level) for m in metrics}


def command(args: argparse.Namespace) -> int:
    """Print the comparison and the leaderboards of RUN_DIR."""
    from compare.results import Results
    from compare.stats.metrics import resolve_metrics

    results = Results.load(args.run_dir)
    _check_args(args, results)
    chosen = metric_names(args.metrics, [results.frame], [args.run_dir])
    metrics = [i.name for i in resolve_metrics(results.frame, chosen,
                                               results.manifest.get("scorers"))]
    table = None
    if len(results.deployments) >= 2 and args.table != "leaderboard":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the notes are printed instead
            table = results.compare(baseline=args.baseline, metrics=metrics, by=args.by,
                                    alpha=args.alpha, test=args.test)
    boards = (_leaderboards(results, metrics, 1 - args.alpha)
              if args.table != "compare" else {})
    print(_render(args, results, table, boards), end="")
    return EXIT_OK


def _render(args: argparse.Namespace, results: Any, table: Any, boards: dict[str, Any]) -> str:
    import pandas as pd

    from compare.stats import format_table

    if args.format == "json":
        doc: dict[str, Any] = {"run": str(args.run_dir), "alpha": args.alpha}
        if table is not None:
            doc.update(comparison=records(table), omnibus=table.attrs.get("omnibus") or [])
        if boards:
            doc["leaderboards"] = {m: records(b.reset_index()) for m, b in boards.items()}
        return json.dumps(doc, indent=2, default=str) + "\n"
    if args.format == "csv":
        if args.table == "leaderboard" or table is None:
            long = pd.concat([b.reset_index().assign(metric=m) for m, b in boards.items()]
                             or [pd.DataFrame()])
            return format_table(long[["metric", *long.columns[:-1]]], "csv")
        return format_table(table, "csv")
    return text_report(results, table, boards, args.format, args.baseline)


def text_report(results: Any, table: Any, boards: dict[str, Any], fmt: str,
                baseline: str | None) -> str:
    """The comparison and leaderboards as a text table or markdown, with their legends."""
    parts: list[str] = []
    if table is not None:
        pairs = f"each deployment vs {baseline}" if baseline else "every pair of deployments"
        parts += [f"paired comparison ({pairs}; b − a per prompt):", render(
            comparison_view(table), fmt), *comparison_legend(table), *omnibus_lines(table),
            *note_lines(table)]
    elif len(results.deployments) < 2:
        parts.append(f"one deployment ({', '.join(results.deployments)}): nothing to compare "
                     "it with")
    for board in boards.values():
        parts += ["", leaderboard_heading(board), render(leaderboard_view(board), fmt,
                                                         index=True)]
    return "\n".join(parts) + "\n"
