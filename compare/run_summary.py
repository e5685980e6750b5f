"""`Results.summary()` of a run directory without loading the run: one deployment at a time.

The table is `compare.summary.summarize` itself, applied to each deployment's rows in turn, read
from the run's parquet files with only the columns a summary reads (never the outputs or error
messages) and a batch at a time: memory is one deployment's figures, not the run's. The tests
check it against `Results.load(dir).summary()`.
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
    import pyarrow.compute as pc

    from compare.frame import COLUMN_KINDS, coerce
    from compare.summary import summarize

    d = Path(directory)
    manifest = read_manifest(d)
    dataset = _dataset(d, manifest)
    if dataset is None:
        frame = read_run_frame(d, manifest, None)
        return summarize(frame, _order(manifest, frame["deployment"].unique().tolist()))
    found = pc.unique(dataset.to_table(columns=["deployment"])["deployment"]).to_pylist()
    names = dataset.schema.names
    columns = [c for c in names if c in READ or c.startswith(SCORE_PREFIX)]
    # Those an older run lacks are added empty.
    record_columns = [c for c in READ if c in COLUMN_KINDS]
    tables = []
    for dep in _order(manifest, [str(n) for n in found if n is not None]):
        rows = coerce(_deployment_rows(dataset, dep, columns), record_columns)
        rows["deployment"] = rows["deployment"].astype("string")
        tables.append(summarize(rows, [dep]))
    if not tables:
        return summarize(coerce(pd.DataFrame()), [])
    return pd.concat(tables)


def _order(manifest: dict[str, Any], seen: list[str]) -> list[str]:
    """Deployments in run order (as `Results.deployments`)."""
    order = manifest.get("deployment_order") or []
    present = set(seen)
    return [d for d in order if d in present] + [d for d in seen if d not in order]
