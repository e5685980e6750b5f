"""`compare diff OLD_RUN NEW_RUN`: the same deployments before and after a change, paired by
prompt and deployment name (compare.stats.diff), and a regression gate for CI pipelines:
`--fail-if-worse M` exits 1 when the new run is significantly worse on M after Holm's adjustment
(respecting the metric's direction), saying which metric, for which deployment, by how much.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import Any, Final

from compare.cli.outcome import EXIT_OK, EXIT_ROWS_FAILED
from compare.cli.stats import add_common, metric_names
from compare.cli.stats_text import (
    comparison_legend,
    comparison_view,
    level_of,
    note_lines,
    number,
    p_text,
    records,
    render,
)

EPILOG: Final = """exit codes (a regression gate for CI):
  0    no --fail-if-worse metric is significantly worse in the new run (or none was given)
  1    the new run is significantly worse on a --fail-if-worse metric, after Holm's
       adjustment over the whole table (higher or lower is better as the metric says)
  2    usage error (argument, run directory, metric missing from a run, no deployment in
       common)
  130  interrupted (nothing is written)

The verdict goes to stderr, the table to stdout (pure CSV/JSON with --format csv/json)."""


def add_parser(sub: Any) -> None:
    """Register `compare diff`."""
    p = sub.add_parser("diff", help="new run vs old run, paired by prompt; a CI regression gate",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Pair the rows of two runs by prompt and deployment name and "
                                   "test, per deployment and metric, whether the new run "
                                   "differs from the old one (new − old, with an interval and "
                                   "a Holm-adjusted p-value).")
    p.add_argument("old_run", metavar="OLD_RUN")
    p.add_argument("new_run", metavar="NEW_RUN")
    add_common(p)
    p.add_argument("--fail-if-worse", action="append", metavar="M", dest="fail_if_worse",
                   help="exit 1 when the new run is significantly worse on metric M for any "
                        "deployment (repeat for several; compared even when not in --metric)")
    p.set_defaults(func=command)


def _metrics(args: argparse.Namespace, old: Any, new: Any) -> tuple[list[str], list[str]]:
    """(metrics compared, gate metrics): --metric (default: the new run's defaults that the old
    run has too) plus every --fail-if-worse metric."""
    from compare.stats.metrics import default_metrics

    frames, runs = [old.frame, new.frame], [args.old_run, args.new_run]
    gate = metric_names(args.fail_if_worse, frames, runs, "--fail-if-worse") or []
    chosen = metric_names(args.metrics, frames, runs)
    if chosen is None:
        chosen = [m for m in default_metrics(new.frame) if m in old.frame.columns]
    return list(dict.fromkeys([*chosen, *gate])), gate


def worse_line(row: dict[str, Any], level: float) -> str:
    """'score_exact is worse for quick: 0.9 → 0.7 (diff -0.2, 95% CI ...; p_adj ...)'."""
    head = f"worse: {row['metric']} for {row['deployment']}"
    direction = "higher" if row["higher_is_better"] else "lower"
    p = f"p_adj {p_text(row['p_adj'])}; {direction} is better"
    ratio = row.get("ratio")
    if isinstance(ratio, float) and ratio == ratio:
        return (f"{head}: {number(ratio)}× the old run ({number(row['mean_a'])} → "
                f"{number(row['mean_b'])}; {level:.0%} CI {number(row['ratio_ci_low'])}× to "
                f"{number(row['ratio_ci_high'])}×; {p})")
    return (f"{head}: {number(row['mean_a'])} → {number(row['mean_b'])} (diff "
            f"{float(row['diff']):+.4g}, {level:.0%} CI {number(row['ci_low'])} to "
            f"{number(row['ci_high'])}; {p})")


def verdict(table: Any, gate: list[str], alpha: float) -> tuple[int, list[str]]:
    """The exit code and the lines that explain it (for stderr)."""
    from compare.stats import worse_rows

    if not gate:
        return EXIT_OK, []
    lines: list[str] = []
    worse_metrics = []
    for metric in gate:
        rows = worse_rows(table, metric)
        if len(rows):
            worse_metrics.append(metric)
        lines += [worse_line(r, level_of(table)) for r in rows.to_dict(orient="records")]
        untested = table[(table["metric"] == metric) & table["p_value"].isna()]
        lines += [f"not tested: {metric} for {r['deployment']}: {r['note']}"
                  for r in untested.to_dict(orient="records")]
    count = f"{len(table)} comparison{'s' if len(table) != 1 else ''}"
    where = f"Holm over {count}, alpha {alpha:g}"
    if worse_metrics:
        lines.append(f"regression: the new run is significantly worse on "
                     f"{', '.join(worse_metrics)} ({where})")
        return EXIT_ROWS_FAILED, lines
    lines.append(f"no significant regression on {', '.join(gate)} ({where})")
    return EXIT_OK, lines


def command(args: argparse.Namespace) -> int:
    """Print the table; exit 1 when a --fail-if-worse metric got significantly worse."""
    from compare.results import Results
    from compare.stats import diff

    old, new = Results.load(args.old_run), Results.load(args.new_run)
    metrics, gate = _metrics(args, old, new)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the notes are printed instead
        table = diff(old, new, metrics, args.alpha, test=args.test)
    code, lines = verdict(table, gate, args.alpha)
    unmatched = table.attrs.get("unmatched") or []
    if args.format == "json":
        print(json.dumps({"old": args.old_run, "new": args.new_run, "alpha": args.alpha,
                          "comparison": records(table), "unmatched": unmatched,
                          "fail_if_worse": gate, "exit_code": code}, indent=2, default=str))
    elif args.format == "csv":
        from compare.stats import format_table

        print(format_table(table, "csv"), end="")
    else:
        print("\n".join([f"new run ({args.new_run}) vs old run ({args.old_run}), paired by "
                         "prompt and deployment:", render(comparison_view(table), args.format),
                         *comparison_legend(table), *note_lines(table)]))
    if unmatched:
        print(f"not compared (in one run only): {', '.join(unmatched)}", file=sys.stderr)
    for line in lines:
        print(line, file=sys.stderr)
    return code
