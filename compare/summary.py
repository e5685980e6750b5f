"""The per-deployment summary table: counts by status, failure rate, timing percentiles, decode
rate, tokens, cost, and the mean of each score.

Percentiles of ttft_s and latency_s use timed rows only (status ok, not replayed from a
checkpoint, not answered by a batch); `n_timing` says how many. Batch deployments have no
latency: their rows show `n_batches` and the batches' turnaround (created → ended, median and
maximum over batches) instead. `error_rate` is the share of rows that failed (error,
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
    "n_batches",
    "batch_turnaround_s_p50",
    "batch_turnaround_s_max",
    "prompt_tokens",
    "completion_tokens",
    "cost",
)


def timing_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows that count for latency statistics: status ok, not replayed from a checkpoint, and
    not answered by a batch (batch rows have no latency)."""
    mask = (frame["status"] == "ok") & ~frame["cached"]
    if "batch_id" in frame.columns:
        mask &= frame["batch_id"].isna()
    return frame[mask]


def _turnarounds(d: pd.DataFrame) -> np.ndarray:
    """One turnaround per batch of these rows (every row of a batch carries the same one)."""
    if "batch_id" not in d.columns:
        return np.array([])
    batches = d[d["batch_id"].notna()].drop_duplicates("batch_id")
    return batches["batch_turnaround_s"].dropna().to_numpy(dtype=float)


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
    turnarounds = _turnarounds(d)
    row["n_batches"] = int(d["batch_id"].nunique()) if "batch_id" in d.columns else 0
    row["batch_turnaround_s_p50"] = _percentile(turnarounds, 50)
    row["batch_turnaround_s_max"] = float(turnarounds.max()) if len(turnarounds) else math.nan
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
