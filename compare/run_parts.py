"""The run directory as one dataset: which files hold the run's rows, read column by column.

A sharded run (`compare.distributed`) leaves one record file per shard and, instead of
results.parquet, its rows as parquet parts under `parts/`, complete when the manifest says so.
`read_run_frame` picks the source (results.parquet, complete parts, or the record files of an
unfinished run: a record file newer than the parquet means a rerun was killed before it could
save, and the records are the truth then) and reads only the columns asked for. Strings stay in
Arrow buffers (pandas' pyarrow string dtype): no Python object per cell.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import pandas as pd

from compare._checks import hint
from compare.checkpoint import RECORDS_FILE, latest_by_key, read_checkpoint, record_files
from compare.errors import ConfigError
from compare.frame import COLUMN_KINDS
from compare.records import METRICS
from compare.run_dir import MANIFEST_FILE, RESULTS_FILE, read_frame

PARTS_DIR: Final = "parts"


def check_columns(columns: Iterable[str] | None) -> list[str] | None:
    """The record columns asked for, in order, without repeats; ConfigError naming a wrong one."""
    if columns is None:
        return None
    if isinstance(columns, str):
        columns = [columns]
    wanted = list(dict.fromkeys(columns))
    for name in wanted:
        if name not in COLUMN_KINDS:
            raise ConfigError(f"columns: no record column {name!r}{hint(name, COLUMN_KINDS)}; "
                              f"the columns are {', '.join(COLUMN_KINDS)}", field="columns")
    return wanted


def _newest_record_ns(d: Path) -> int:
    return max((p.stat().st_mtime_ns for p in record_files(d)), default=-1)


def read_run_frame(d: Path, manifest: Mapping[str, Any], columns: list[str] | None
                   ) -> pd.DataFrame:
    """The directory's rows (only `columns` when given); see the module docstring."""
    parquet, parts = d / RESULTS_FILE, d / PARTS_DIR
    newest = _newest_record_ns(d)
    if parquet.exists() and parquet.stat().st_mtime_ns >= newest:
        return read_frame(parquet) if columns is None else pd.read_parquet(parquet,
                                                                           columns=columns)
    mpath = d / MANIFEST_FILE
    if (manifest.get("parts") or {}).get("complete") and parts.is_dir() \
            and mpath.stat().st_mtime_ns >= newest:
        return read_parts(d, columns)
    if newest >= 0:
        from compare.results import Results

        rows = list(latest_by_key(read_checkpoint(d)).values())
        frame = Results.from_records(rows).frame
        return frame if columns is None else frame[columns]
    raise ConfigError(
        f"no results here: neither {RESULTS_FILE}, complete {PARTS_DIR}/ nor {RECORDS_FILE}",
        source=str(d))


# Text columns whose values repeat row after row: read as categoricals (one code per row), which
# is what makes ten million rows of a leaderboard's columns fit in a few hundred MB.
REPEATED_TEXT: Final = ("run_id", "prompt_id", "deployment", "endpoint_kind", "status", "model",
                        "error_type", "finish_reason", "region")


def read_parts(directory: str | os.PathLike[str], columns: list[str] | None = None
               ) -> pd.DataFrame:
    """A sharded run's parquet parts as one frame. With `columns`: only those, repeated text
    columns as categoricals (other text kept in Arrow); without: every column, text as strings
    (the frame an in-process run gives)."""
    import pyarrow.dataset as ds

    repeated = [c for c in REPEATED_TEXT if columns is not None and c in columns]
    fmt = ds.ParquetFileFormat(read_options={"dictionary_columns": repeated})
    import pyarrow as pa

    dataset = ds.dataset(Path(directory) / PARTS_DIR, format=fmt)
    # Batch by batch: reading several files ahead at once would hold them twice in memory.
    batches = dataset.to_batches(columns=columns, batch_readahead=0, fragment_readahead=0)
    table = pa.Table.from_batches(list(batches), schema=dataset.schema if columns is None
                                  else pa.schema([dataset.schema.field(c) for c in columns]))
    if repeated:
        table = table.unify_dictionaries()
    return table.to_pandas(types_mapper=_arrow_strings, self_destruct=True, split_blocks=True)


def _arrow_strings(arrow_type: Any) -> Any:
    import pyarrow as pa

    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return pd.StringDtype("pyarrow")
    return None


def parts_manifest(directory: str | os.PathLike[str], *, complete: bool) -> dict[str, Any]:
    """What a sharded run's manifest says about its parts: complete or not, rows, statuses
    (counted from the status column alone)."""
    parts = Path(directory) / PARTS_DIR
    files = sorted(parts.glob("*.parquet")) if parts.is_dir() else []
    info: dict[str, Any] = {"parts": {"complete": complete and bool(files), "files": len(files)},
                            "metrics": METRICS}
    if files:
        status = read_parts(directory, ["status"])["status"]
        info["rows"] = len(status)
        info["status_counts"] = {str(k): int(v) for k, v in status.value_counts().items()}
    return info


def remove_shard_files(directory: str | os.PathLike[str]) -> None:
    """A sharded run's own files (stamped record files, parts), for fresh=True."""
    import shutil

    d = Path(directory)
    for path in record_files(d):
        path.unlink(missing_ok=True)
    shutil.rmtree(d / PARTS_DIR, ignore_errors=True)
