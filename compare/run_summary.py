"""`Results.summary()` and `.leaderboard()` of a run directory without loading the run: one
deployment at a time.

Each table is the in-memory function itself (`compare.summary.summarize`,
`compare.stats.ranking.leaderboard`), applied to each deployment's rows in turn, read from the
run's parquet files with only the columns it reads (never the outputs or error messages) and a
batch at a time: memory is one deployment's figures, not the run's. Every statistic in both is
per deployment (the leaderboard's ranks are set once all rows are in). The tests check both
against the loaded run's tables.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final

import pandas as pd

from compare.run_dir import MANIFEST_FILE, RESULTS_FILE, read_manifest
from compare.run_parts import PARTS_DIR, _newest_record_ns, read_run_frame
from compare.summary import SCORE_PREFIX

BATCH_ROWS: Final = 1_000_000
# The columns `summarize` reads (score_* columns besides); the tests comparing with summary()
# fail when it starts reading another.
READ: Final = ("deployment", "status", "cached", "ttft_s", "latency_s", "decode_tps",
               "tokens_source", "batch_id", "batch_turnaround_s", "prompt_tokens",
               "completion_tokens", "cost")

# The leaderboard's columns besides the metric.
LEADERBOARD_READ: Final = ("prompt_id", "deployment", "repeat", "status", "cached", "latency_s",
                           "cost")


def _parquet_format() -> Any:
    import pyarrow.dataset as ds

    # Names and statuses repeat: read them as dictionary codes, never as one string per row.
    return ds.ParquetFileFormat(read_options={"dictionary_columns": ["deployment", "status"]})


def _dataset(d: Path, manifest: dict[str, Any]) -> Any:
    """The run's parquet rows as a pyarrow dataset, or None when they are only in record files
    (an unfinished run) or stale."""
    import pyarrow.dataset as ds

    newest = _newest_record_ns(d)
    parquet = d / RESULTS_FILE
    if parquet.exists() and parquet.stat().st_mtime_ns >= newest:
        return ds.dataset(parquet, format=_parquet_format())
    if (manifest.get("parts") or {}).get("complete") and (d / PARTS_DIR).is_dir() \
            and (d / MANIFEST_FILE).stat().st_mtime_ns >= newest:
        return ds.dataset(d / PARTS_DIR, format=_parquet_format())
    return None


def _deployment_rows(dataset: Any, dep: str, columns: list[str]) -> pd.DataFrame:
    """One deployment's rows (the summary's columns), read a batch at a time."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    batches = dataset.to_batches(columns=columns, filter=ds.field("deployment") == dep,
                                 batch_size=BATCH_ROWS, batch_readahead=0, fragment_readahead=0)
    schema = pa.schema([dataset.schema.field(c) for c in columns])
    table = pa.Table.from_batches(list(batches), schema=schema)
    return table.to_pandas(self_destruct=True, split_blocks=True)


def summarize_run(directory: str | os.PathLike[str]) -> pd.DataFrame:
    """`Results.load(directory).summary()`, one deployment at a time from the run's parquet
    files (an unfinished run, whose rows are only in record files, is loaded whole)."""
    from compare.frame import COLUMN_KINDS, coerce
    from compare.summary import summarize

    d = Path(directory)
    manifest = read_manifest(d)
    dataset = _dataset(d, manifest)
    if dataset is None:
        frame = read_run_frame(d, manifest, None)
        return summarize(frame, _order(manifest, frame["deployment"].unique().tolist()))
    names = dataset.schema.names
    columns = [c for c in names if c in READ or c.startswith(SCORE_PREFIX)]
    # Those an older run lacks are added empty.
    record_columns = [c for c in READ if c in COLUMN_KINDS]
    tables = []
    for dep in _order(manifest, _deployments(dataset)):
        rows = coerce(_deployment_rows(dataset, dep, columns), record_columns)
        rows["deployment"] = rows["deployment"].astype("string")
        tables.append(summarize(rows, [dep]))
    if not tables:
        return summarize(coerce(pd.DataFrame()), [])
    return pd.concat(tables)


def leaderboard_run(directory: str | os.PathLike[str], metric: str,
                    level: float = 0.95) -> pd.DataFrame:
    """`Results.load(directory).leaderboard(metric, level)`, one deployment at a time from the
    run's parquet files (an unfinished run, whose rows are only in record files, is loaded
    whole)."""
    from compare.frame import COLUMN_KINDS, coerce
    from compare.stats.ranking import leaderboard, ranked

    d = Path(directory)
    manifest = read_manifest(d)
    scorers = manifest.get("scorers")
    dataset = _dataset(d, manifest)
    if dataset is None:
        frame = read_run_frame(d, manifest, None)
        order = _order(manifest, frame["deployment"].dropna().unique().tolist())
        return leaderboard(frame, metric, level, scorers=scorers, order=order)
    info = _metric_info(dataset, metric, scorers)
    columns = [c for c in dataset.schema.names if c in LEADERBOARD_READ or c == metric]
    record_columns = [c for c in columns if c in COLUMN_KINDS]
    boards = []
    for dep in _order(manifest, _deployments(dataset)):
        rows = coerce(_deployment_rows(dataset, dep, columns), record_columns)
        rows["deployment"] = rows["deployment"].astype("string")
        boards.append(leaderboard(rows, metric, level, order=[dep], info=info))
    return ranked(pd.concat(boards), info, level)


def _deployments(dataset: Any) -> list[str]:
    import pyarrow.compute as pc

    found = pc.unique(dataset.to_table(columns=["deployment"])["deployment"]).to_pylist()
    return [str(n) for n in found if n is not None]


def _metric_info(dataset: Any, metric: str, scorers: Any) -> Any:
    """The metric's kind and direction over the whole run: from its name, the scorer's
    declaration or the dtype when they tell; else from its values (one column read)."""
    from compare.stats.metrics import LATENCY_LIKE, metric_info, scorer_entry

    empty = dataset.schema.empty_table().to_pandas()
    info = metric_info(empty, metric, scorers)  # names the missing column, did-you-mean
    if metric in LATENCY_LIKE or info.kind != "continuous" \
            or (scorer_entry(metric, scorers) or {}).get("kind"):
        return info
    column = dataset.to_table(columns=[metric])[metric].to_pandas()
    return metric_info(pd.DataFrame({metric: column}), metric, scorers)


def _order(manifest: dict[str, Any], seen: list[str]) -> list[str]:
    """Deployments in run order (as `Results.deployments`)."""
    order = manifest.get("deployment_order") or []
    present = set(seen)
    return [d for d in order if d in present] + [d for d in seen if d not in order]
