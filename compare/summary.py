"""The per-deployment summary table: counts by status, failure rate, timing percentiles, decode
rate, tokens, cost, and the mean of each score.

Percentiles of ttft_s and latency_s use timed rows only (status ok and not replayed from a
checkpoint); `n_timing` says how many. `error_rate` is the share of rows that failed (error,
timeout, rate_limited, incomplete): a content filter verdict is an answer, counted apart in
`content_filtered`. Token and cost totals cover every row (cached included).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

from compare.records import FAILED_STATUSES, STATUSES

PERCENTILES: Final = (50, 90, 99)
TIMING_METRICS: Final = ("ttft_s", "latency_s")
SCORE_PREFIX: Final = "score_"
SUMMARY_COLUMNS: Final = (
    "n",
    "ok",
    "error_rate",
    *STATUSES[1:],
    "cached",
    "n_timing",
    *(f"{m}_p{q}" for m in TIMING_METRICS for q in PERCENTILES),
    "decode_tps_mean",
    "prompt_tokens",
    "completion_tokens",
    "cost",
)


def timing_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows that count for latency statistics: status ok and not replayed from a checkpoint."""
    return frame[(frame["status"] == "ok") & ~frame["cached"]]


def _percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else math.nan


def _row(dep: str, d: pd.DataFrame, t: pd.DataFrame, scores: list[str]) -> dict[str, Any]:
    n = len(d)
    row: dict[str, Any] = {"deployment": dep, "n": n, "ok": int((d["status"] == "ok").sum())}
    failed = int(d["status"].isin(list(FAILED_STATUSES)).sum())
    row["error_rate"] = failed / n if n else math.nan
    for status in STATUSES[1:]:
        row[status] = int((d["status"] == status).sum())
    row["cached"] = int(d["cached"].sum())
    row["n_timing"] = len(t)
    for metric in TIMING_METRICS:
        values = t[metric].dropna().to_numpy()
        for q in PERCENTILES:
            row[f"{metric}_p{q}"] = _percentile(values, q)
    row["decode_tps_mean"] = float(t["decode_tps"].mean()) if len(t) else math.nan
    for name in ("prompt_tokens", "completion_tokens", "cost"):
        row[name] = float(d[name].sum(min_count=1))
    for column in scores:
        row[f"{column}_mean"] = float(d[column].mean()) if d[column].notna().any() else math.nan
    return row


def summarize(frame: pd.DataFrame, deployments: Sequence[str]) -> pd.DataFrame:
    """One row per deployment (in `deployments` order), indexed by name."""
    timing = timing_rows(frame)
    scores = [c for c in frame.columns if c.startswith(SCORE_PREFIX)]
    rows = [_row(dep, frame[frame["deployment"] == dep], timing[timing["deployment"] == dep],
                 scores) for dep in deployments]
    out = pd.DataFrame(rows)
    if out.empty:
        out = pd.DataFrame(columns=["deployment", *SUMMARY_COLUMNS])
    return out.set_index("deployment")
