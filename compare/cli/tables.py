"""The summary table as `compare run`, `compare summary` and `compare demo` print it: counts as
integers, seconds to the millisecond, rates to 0.1, cost to a hundredth of a cent, the mean of each
score, and under it the definitions of the metrics it shows (a line per scorer: its kind and
direction, from the run's manifest).
"""

from __future__ import annotations

import math
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
    "tokens_source": str,
}
_COUNT_COLUMNS: Final = frozenset({"n", "ok", *STATUS_COUNTS})
# Batch deployments have no latency: their batches' turnaround is shown when a run has some.
BATCH_SHOWN: Final = ("batch_turnaround_s_p50", "batch_turnaround_s_max")
SCORE_PREFIX: Final = "score_"
MEAN_SUFFIX: Final = "_mean"
KIND_TEXT: Final = {
    "binary": "binary (1 = pass), so the mean is the pass rate",
    "ordinal": "ordinal",
    "continuous": "continuous",
}


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
    if "tokens_source" in table.columns and not table["tokens_source"].isin(
            ["usage", "none"]).all():
        # Some decode rate counts content chunks (a server streaming no usage): say which.
        shown.insert(shown.index("decode_tps_mean") + 1, "tokens_source")
    scores = score_mean_columns(table)
    table = table[shown[:3] + counted + shown[3:] + scores]
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
    legend = [summary_legend(table.columns, counted), *score_legend(results)]
    return text + "\n" + "\n".join(legend)


def score_mean_columns(table: Any) -> list[str]:
    """The summary's `score_<name>_mean` columns, in frame order."""
    return [str(c) for c in table.columns
            if str(c).startswith(SCORE_PREFIX) and str(c).endswith(MEAN_SUFFIX)]


def describe_score(results: Any, column: str) -> str:
    """What a score column is: kind, who graded it, which prompts, direction — from the
    manifest's scorer entry (kind and direction inferred as compare.stats does without one)."""
    from compare.stats.metrics import metric_info

    scorers = results.manifest.get("scorers") or {}
    meta = scorers.get(column.removeprefix(SCORE_PREFIX)) or {}
    info = metric_info(results.frame, column, scorers)
    parts = [KIND_TEXT.get(info.kind, info.kind)]
    if meta.get("judge"):
        parts.append(f"graded by deployment {meta['judge']!r}")
    if meta.get("embed"):
        parts.append(f"embeddings from deployment {meta['embed']!r}")
    if meta.get("tags"):
        parts.append(f"on prompts tagged {', '.join(meta['tags'])}")
    bias = meta.get("length_bias") or {}
    if isinstance(bias.get("spearman_rho"), float) and not math.isnan(bias["spearman_rho"]):
        parts.append(f"length bias: Spearman rho of grade with answer length "
                     f"{bias['spearman_rho']:+.2f} (n={bias['n']})")
    consistency = meta.get("position_consistency") or {}
    if consistency.get("n") and not math.isnan(consistency.get("share", math.nan)):
        parts.append(f"position consistency {consistency['share']:.0%} of {consistency['n']} "
                     "pairs keep their verdict when the answers swap")
    direction = "higher" if info.higher_is_better else "lower"
    return f"{', '.join(parts)}; {direction} is better"


def score_legend(results: Any) -> list[str]:
    """One line per score column: what its mean in the summary is."""
    columns = [c for c in results.frame.columns if str(c).startswith(SCORE_PREFIX)]
    return [f"  {c}_mean: mean of {c} over the rows it scored ({describe_score(results, c)})"
            for c in columns]


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
    if "tokens_source" in columns:
        legend.append("  tokens_source: what decode_tps_mean counts — usage tokens, or content "
                      "chunks where the server streamed no usage (never both in one mean)")
    if BATCH_SHOWN[0] in columns:
        legend.append(f"  {METRICS['batch_turnaround_s']}; _p50/_max over a deployment's "
                      "batches (batch rows have no latency)")
    legend.append("  completion_tokens: total over all rows (from usage)")
    if "cost" in columns:
        legend.append("  cost: total over all rows, from the deployments' per-1k-token prices")
    return "\n".join(legend)


def format_scores(results: Any, names: list[str]) -> str:
    """The mean of the named scores per deployment (rows without a score left out), with a
    legend line per score."""
    import pandas as pd

    columns = [f"{SCORE_PREFIX}{n}" for n in names]
    table = results.summary()[[f"{c}{MEAN_SUFFIX}" for c in columns]]
    with pd.option_context("display.width", 200, "display.max_columns", 40):
        text = table.to_string(formatters={c: _cell(c) for c in table.columns})
    legend = [line for line in score_legend(results)
              if line.split(":", 1)[0].strip().removesuffix(MEAN_SUFFIX) in columns]
    return "\n".join([text, *legend])
