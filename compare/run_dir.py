"""The run directory's files, and writing them so that a crash never leaves half of one.

    OUT/records.jsonl    the runner's checkpoint: one JSON line per final record (checkpoint.py)
    OUT/results.parquet  the results frame, written at the end of a run (also when cancelled)
    OUT/manifest.json    run config, deployments without secrets, package versions, timestamps
    OUT/prompts.parquet  the prompts (id, text of the last user turn, reference, tags, messages)
    OUT/scores.parquet   scores, one row per row × scorer (compare.scoring)
    OUT/pairs.parquet    pairwise judge verdicts, when a pairwise scorer ran
    OUT/judge_records.jsonl  the scoring calls' checkpoint (judges, embeddings)
    OUT/ratings.jsonl    human A/B votes from the explorer's rate tab
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Mapping
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from compare.checkpoint import RECORDS_FILE
from compare.errors import ConfigError

# Columns holding a list of strings per row (prompt tags).
LIST_COLUMNS: Final = ("tags",)

RESULTS_FILE: Final = "results.parquet"
MANIFEST_FILE: Final = "manifest.json"
PROMPTS_FILE: Final = "prompts.parquet"
SCORES_FILE: Final = "scores.parquet"
PAIRS_FILE: Final = "pairs.parquet"
JUDGE_RECORDS_FILE: Final = "judge_records.jsonl"
RATINGS_FILE: Final = "ratings.jsonl"
RUN_FILES: Final = (RECORDS_FILE, RESULTS_FILE, MANIFEST_FILE, PROMPTS_FILE, SCORES_FILE,
                    PAIRS_FILE, JUDGE_RECORDS_FILE)
# Versions recorded in every manifest (what produced the numbers).
VERSIONED_PACKAGES: Final = (
    "compare",
    "azure-ai-inference",
    "azure-core",
    "azure-identity",
    "openai",
    "aiohttp",
    "pandas",
    "numpy",
    "pyarrow",
    "llama-cpp-python",
)


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | tuple):
        return list(value)
    if isinstance(value, np.generic):
        return value.item()
    return repr(value)


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file, fsync, then rename over `path`."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def clean_nan(value: Any) -> Any:
    """NaN and infinities → None, recursively (manifests are standard JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_nan(v) for v in value]
    return value


def write_manifest(directory: str | os.PathLike[str], manifest: Mapping[str, Any]) -> Path:
    """Write manifest.json atomically (a crash never leaves half a manifest)."""
    path = Path(directory) / MANIFEST_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(manifest, indent=2, default=_json_default, allow_nan=False) + "\n"
    atomic_write(path, text.encode())
    return path


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The run directory's manifest, {} when it has none; ConfigError when it is not JSON."""
    path = Path(directory) / MANIFEST_FILE
    if not path.exists():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ConfigError(f"manifest is not valid JSON: {e}", source=str(path)) from None
    return manifest if isinstance(manifest, dict) else {}


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    """A frame as parquet, atomically. List-of-string columns are written as list<string>
    (an all-empty one would otherwise be list<null>, which pandas cannot read back)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    lists = [n for n in LIST_COLUMNS if n in frame.columns]
    if lists:
        frame = frame.assign(**{n: pd.Series([list(v) for v in frame[n]], index=frame.index,
                                             dtype=object) for n in lists})
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for name in LIST_COLUMNS:
        if name in table.column_names:
            i = table.schema.get_field_index(name)
            table = table.cast(table.schema.set(i, pa.field(name, pa.list_(pa.string()))))
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def read_frame(path: Path) -> pd.DataFrame:
    """A frame written by `write_frame`, list columns as Python lists."""
    frame = pd.read_parquet(path)
    for name in LIST_COLUMNS:
        if name in frame.columns:
            frame[name] = [list(v) if v is not None else [] for v in frame[name]]
    return frame
