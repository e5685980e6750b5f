"""`Results.summary()` of a run directory without loading the run: one pass over its parquet
files in batches.

What is kept between batches, per deployment: counts (rows, statuses, cached, timed rows), sums
and non-null counts (decode rate, tokens, cost, scores), and the timed rows' ttft_s and latency_s
values, which exact percentiles need (16 bytes per timed row: 160 MB for ten million). The table
is the one `compare.summary.summarize` makes from the whole frame, column for column (the tests
check them against each other).
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from compare.records import FAILED_STATUSES, STATUSES
from compare.run_dir import MANIFEST_FILE, RESULTS_FILE, read_manifest
from compare.run_parts import PARTS_DIR, read_run_frame
from compare.summary import PERCENTILES, SCORE_PREFIX, SUMMARY_COLUMNS, TIMING_METRICS

BATCH_ROWS: Final = 1_000_000
SUMMED: Final = ("prompt_tokens", "completion_tokens", "cost")
INPUT_COLUMNS: Final = ("deployment", "status", "cached", *TIMING_METRICS, "decode_tps", *SUMMED)


def _codes(column: Any) -> tuple[np.ndarray, list[str]]:
    """A string column as dictionary codes (-1 for null) and the names they stand for."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    codes = pc.fill_null(column.indices, -1).to_numpy(zero_copy_only=False)
    return codes, [str(v) for v in column.dictionary.to_pylist()]


def _floats(column: Any) -> np.ndarray:
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype="float64")


class _Totals:
    def __init__(self) -> None:
        self.n = 0
        self.status: dict[str, int] = defaultdict(int)
        self.cached = 0
        self.timed: dict[str, list[np.ndarray]] = {m: [] for m in TIMING_METRICS}
        self.n_timing = 0
        self.sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])  # sum, non-null count

    def add(self, rows: np.ndarray, status: np.ndarray, names: list[str], cached: np.ndarray,
            values: dict[str, np.ndarray]) -> None:
        """One batch's rows of this deployment (a mask over the batch's arrays)."""
        self.n += int(rows.sum())
        counts = np.bincount(status[rows] + 1, minlength=len(names) + 1)
        for code, count in enumerate(counts[1:]):
            if count:
                self.status[names[code]] += int(count)
        self.cached += int((rows & cached).sum())
        ok = names.index("ok") if "ok" in names else -2
        timed = rows & (status == ok) & ~cached
        self.n_timing += int(timed.sum())
        for metric in TIMING_METRICS:
            v = values[metric][timed]
            self.timed[metric].append(v[~np.isnan(v)])
        self._sum("decode_tps", values["decode_tps"][timed])
        for name, v in values.items():
            if name not in TIMING_METRICS and name != "decode_tps":
                self._sum(name, v[rows])

    def _sum(self, name: str, v: np.ndarray) -> None:
        present = ~np.isnan(v)
        s = self.sums[name]
        s[0] += float(v[present].sum())
        s[1] += int(present.sum())

    def row(self, dep: str, scores: list[str]) -> dict[str, Any]:
        n = self.n
        row: dict[str, Any] = {"deployment": dep, "n": n, "ok": self.status.get("ok", 0)}
        failed = sum(self.status.get(s, 0) for s in FAILED_STATUSES)
        row["error_rate"] = failed / n if n else math.nan
        for status in STATUSES[1:]:
            row[status] = self.status.get(status, 0)
        row["cached"] = self.cached
        row["n_timing"] = self.n_timing
        for metric in TIMING_METRICS:
            values = np.concatenate(self.timed[metric]) if self.timed[metric] else np.array([])
            for q in PERCENTILES:
                row[f"{metric}_p{q}"] = float(np.percentile(values, q)) if len(values) \
                    else math.nan
        total, count = self.sums["decode_tps"]
        row["decode_tps_mean"] = total / count if count else math.nan
        for name in SUMMED:
            total, count = self.sums[name]
            row[name] = total if count else math.nan
        for name in scores:
            total, count = self.sums[name]
            row[f"{name}_mean"] = total / count if count else math.nan
        return row


def _dataset(d: Path, manifest: dict[str, Any]) -> Any:
    """The run's parquet rows as a pyarrow dataset, or None when they are only in record files
    (an unfinished run) or stale."""
    import pyarrow.dataset as ds

    from compare.run_parts import _newest_record_ns

    newest = _newest_record_ns(d)
    parquet = d / RESULTS_FILE
    if parquet.exists() and parquet.stat().st_mtime_ns >= newest:
        return ds.dataset(parquet, format=_parquet_format())
    if (manifest.get("parts") or {}).get("complete") and (d / PARTS_DIR).is_dir() \
            and (d / MANIFEST_FILE).stat().st_mtime_ns >= newest:
        return ds.dataset(d / PARTS_DIR, format=_parquet_format())
    return None


def _parquet_format() -> Any:
    import pyarrow.dataset as ds

    # Names and statuses repeat: read them as dictionary codes, never as one string per row.
    return ds.ParquetFileFormat(read_options={"dictionary_columns": ["deployment", "status"]})


def summarize_run(directory: str | os.PathLike[str]) -> pd.DataFrame:
    """`Results.load(directory).summary()`, computed batch by batch from the run's parquet
    files (an unfinished run, whose rows are only in record files, is loaded whole)."""
    from compare.summary import summarize

    d = Path(directory)
    manifest = read_manifest(d)
    dataset = _dataset(d, manifest)
    if dataset is None:
        frame = read_run_frame(d, manifest, None)
        return summarize(frame, _order(manifest, frame["deployment"].unique().tolist()))
    import pyarrow.compute as pc

    scores = [n for n in dataset.schema.names if n.startswith(SCORE_PREFIX)]
    totals: dict[str, _Totals] = defaultdict(_Totals)
    # One batch in memory at a time (pyarrow reads ahead several by default).
    batches = dataset.to_batches(columns=[*INPUT_COLUMNS, *scores], batch_size=BATCH_ROWS,
                                 batch_readahead=0, fragment_readahead=0)
    for batch in batches:
        deps, dep_names = _codes(batch.column("deployment"))
        status, names = _codes(batch.column("status"))
        cached = pc.fill_null(batch.column("cached"), False).to_numpy(zero_copy_only=False)
        values = {n: _floats(batch.column(n))
                  for n in (*TIMING_METRICS, "decode_tps", *SUMMED, *scores)}
        for code, dep in enumerate(dep_names):
            rows = deps == code
            if rows.any():
                totals[dep].add(rows, status, names, cached, values)
    order = _order(manifest, list(totals))
    out = pd.DataFrame([totals[dep].row(dep, scores) for dep in order])
    if out.empty:
        out = pd.DataFrame(columns=["deployment", *SUMMARY_COLUMNS])
    return out.set_index("deployment")


def _order(manifest: dict[str, Any], seen: list[str]) -> list[str]:
    """Deployments in run order (as `Results.deployments`)."""
    order = manifest.get("deployment_order") or []
    present = set(seen)
    return [d for d in order if d in present] + [d for d in seen if d not in order]
