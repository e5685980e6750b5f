"""The summary table as `compare run`, `compare summary` and `compare demo` print it: counts as
integers, seconds to the millisecond, rates to 0.1, cost to a hundredth of a cent, and under it the
definitions of the metrics it shows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

SUMMARY_SHOWN: Final = (
    "n",
    "ok",
    "error_rate",
    "ttft_s_p50",
    "ttft_s_p90",
    "latency_s_p50",
    "latency_s_p90",
    "latency_s_p99",
    "decode_tps_mean",
    "completion_tokens",
    "cost",
)
# Status counts shown (after error_rate) when any row has them.
STATUS_COUNTS: Final = ("error", "timeout", "rate_limited", "incomplete", "content_filtered")
_FORMATS: Final = {
    "error_rate": "{:.1%}".format,
    "decode_tps_mean": "{:.1f}".format,
    "completion_tokens": "{:.0f}".format,
    "cost": "{:.4f}".format,
}
_COUNT_COLUMNS: Final = frozenset({"n", "ok", *STATUS_COUNTS})
# Batch deployments have no latency: their batches' turnaround is shown when a run has some.
BATCH_SHOWN: Final = ("batch_turnaround_s_p50", "batch_turnaround_s_max")


def _cell(column: str) -> Callable[[Any], str]:
    fmt = _FORMATS.get(column)
    if fmt is None:
        fmt = "{:.0f}".format if column in _COUNT_COLUMNS else "{:.3f}".format

    def cell(value: Any) -> str:
        return "-" if value is None or value != value else fmt(value)  # NaN → "-"
    return cell


def summary_view(results: Any) -> tuple[Any, dict[str, Callable[[Any], str]]]:
    """The summary columns shown (status counts only when some row has them, cost only when
    priced) and a formatter per column: what the CLI prints and the HTML report shows."""
    table = results.summary()
    shown = [c for c in SUMMARY_SHOWN if c in table.columns]
    counted = [s for s in STATUS_COUNTS if s in table.columns and table[s].sum() > 0]
    if "n_batches" in table.columns and table["n_batches"].sum() > 0:
        shown += list(BATCH_SHOWN)
    table = table[shown[:3] + counted + shown[3:]]
    if "cost" in table.columns and table["cost"].isna().all():
        table = table.drop(columns="cost")
    return table, {c: _cell(c) for c in table.columns}


def format_summary(results: Any) -> str:
    """The summary table plus the definitions of the metrics it shows."""
    import pandas as pd

    table, formatters = summary_view(results)
    counted = [s for s in STATUS_COUNTS if s in table.columns]
    with pd.option_context("display.width", 200, "display.max_columns", 40):
        text = table.to_string(formatters=formatters)
    return text + "\n" + summary_legend(table.columns, counted)


def summary_legend(columns: Any, counted: list[str]) -> str:
    """The definitions of the summary columns shown, one per line."""
    from compare.records import METRICS

    legend = [
        "  n: rows (prompts × repeats); ok: rows with status ok; error_rate: share of rows that "
        "failed (error, timeout, rate_limited, incomplete; content_filtered is a result, not a "
        "failure)" + ("; " + ", ".join(counted) + ": rows with that status" if counted else ""),
    ]
    for metric in ("ttft_s", "latency_s", "decode_tps"):
        legend.append(f"  {metric}: {METRICS[metric]}")
    legend.append("  _p50/_p90/_p99: percentiles over rows with status ok, not replayed from a "
                  "checkpoint; decode_tps_mean: mean over the same rows")
    if BATCH_SHOWN[0] in columns:
        legend.append(f"  {METRICS['batch_turnaround_s']}; _p50/_max over a deployment's "
                      "batches (batch rows have no latency)")
    legend.append("  completion_tokens: total over all rows (from usage)")
    if "cost" in columns:
        legend.append("  cost: total over all rows, from the deployments' per-1k-token prices")
    return "\n".join(legend)
