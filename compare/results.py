"""Results: the tidy frame of records (one row per prompt × deployment × repeat) and its views.

The frame has exactly `compare.records.RECORD_COLUMNS`, with real dtypes (float64 metrics with NaN
for "not measured", int64 counters, bool flags, pandas strings, `started_at` as UTC datetimes).
Latency statistics use `timing_frame()` only: status ok and not replayed from a checkpoint.

A run directory holds `records.jsonl` (the runner's checkpoint), `results.parquet`,
`manifest.json` (run config, deployments without secrets, package versions, timestamps) and,
when the prompts are known, `prompts.parquet`.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections.abc import Iterable, Mapping
from dataclasses import fields
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from compare.checkpoint import RECORDS_FILE, latest_by_key, read_checkpoint
from compare.errors import ConfigError
from compare.records import METRICS, RECORD_COLUMNS, STATUSES, Record

RESULTS_FILE: Final = "results.parquet"
MANIFEST_FILE: Final = "manifest.json"
PROMPTS_FILE: Final = "prompts.parquet"
PERCENTILES: Final = (50, 90, 99)
TIMING_METRICS: Final = ("ttft_s", "latency_s")
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


def _column_kinds() -> dict[str, str]:
    kinds: dict[str, str] = {}
    for f in fields(Record):
        if f.name == "extra":
            continue
        t = str(f.type)
        if f.name == "started_at":
            kinds[f.name] = "datetime"
        elif t == "bool":
            kinds[f.name] = "bool"
        elif t == "int":
            kinds[f.name] = "int"
        elif t == "float":
            kinds[f.name] = "float"
        else:
            kinds[f.name] = "str"
    return kinds


COLUMN_KINDS: Final[dict[str, str]] = _column_kinds()


def _coerce(frame: pd.DataFrame) -> pd.DataFrame:
    """Give the record columns their dtypes (missing columns are added empty)."""
    out: dict[str, Any] = {}
    n = len(frame)
    for name, kind in COLUMN_KINDS.items():
        col = frame[name] if name in frame.columns else pd.Series([None] * n, index=frame.index)
        if kind == "float":
            out[name] = pd.to_numeric(col, errors="coerce").astype("float64")
        elif kind == "int":
            out[name] = pd.to_numeric(col, errors="coerce").fillna(0).astype("int64")
        elif kind == "bool":
            out[name] = col.fillna(False).astype("bool")
        elif kind == "datetime":
            out[name] = pd.to_datetime(col, utc=True, format="ISO8601")
        else:
            out[name] = col.astype("string")
    return pd.DataFrame(out, index=frame.index)


class ColumnBuffer:
    """Accumulates records column-wise: one list per column instead of one object per record.

    The runner keeps 100k records this way without holding Record or dict objects.
    """

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {name: [] for name in RECORD_COLUMNS}
        self._appends = [(name, self.columns[name].append) for name in RECORD_COLUMNS]

    def __len__(self) -> int:
        return len(self.columns["run_id"])

    def add(self, record: Record) -> None:
        for name, append in self._appends:
            append(getattr(record, name))

    def add_row(self, row: Mapping[str, Any], **changes: Any) -> None:
        for name, append in self._appends:
            append(changes[name] if name in changes else row.get(name))

    def frame(self) -> pd.DataFrame:
        return _coerce(pd.DataFrame(self.columns, columns=list(RECORD_COLUMNS)))


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else math.nan


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


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_manifest(directory: str | os.PathLike[str], manifest: Mapping[str, Any]) -> Path:
    """Write manifest.json atomically (a crash never leaves half a manifest)."""
    path = Path(directory) / MANIFEST_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(manifest, indent=2, default=_json_default, allow_nan=False) + "\n"
    _atomic_write(path, text.encode())
    return path


def _clean_nan(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_nan(v) for v in value]
    return value


class Results:
    """The records of a run as a tidy pandas frame, with summaries and persistence."""

    def __init__(
        self,
        frame: pd.DataFrame,
        *,
        manifest: Mapping[str, Any] | None = None,
        prompts: pd.DataFrame | None = None,
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.frame: pd.DataFrame = _coerce(frame).reset_index(drop=True)
        self.manifest: dict[str, Any] = dict(manifest or {})
        # id, prompt (text of the last user turn), reference — for wide() and exports.
        self.prompts = prompts
        self.path = Path(path) if path is not None else None

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def from_records(
        cls, records: Iterable[Record | Mapping[str, Any]], **kwargs: Any
    ) -> Results:
        """From Record objects or dicts with the record columns (missing ones stay empty)."""
        buf = ColumnBuffer()
        for rec in records:
            if isinstance(rec, Record):
                buf.add(rec)
            else:
                buf.add_row(rec)
        return cls(buf.frame(), **kwargs)

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> Results:
        """Read a run directory: results.parquet, or records.jsonl when the run never finished."""
        d = Path(directory)
        if not d.is_dir():
            raise ConfigError("no such run directory", source=str(d))
        manifest: dict[str, Any] = {}
        mpath = d / MANIFEST_FILE
        if mpath.exists():
            try:
                manifest = json.loads(mpath.read_text(encoding="utf-8"))
            except ValueError as e:
                raise ConfigError(f"manifest is not valid JSON: {e}", source=str(mpath)) from None
        prompts = pd.read_parquet(d / PROMPTS_FILE) if (d / PROMPTS_FILE).exists() else None
        parquet, records = d / RESULTS_FILE, d / RECORDS_FILE
        if parquet.exists() and not (
            # A checkpoint written after the parquet holds records the parquet lacks (a rerun
            # killed before it could save): the checkpoint is the truth then.
            records.exists() and records.stat().st_mtime_ns > parquet.stat().st_mtime_ns
        ):
            frame = pd.read_parquet(parquet)
        elif records.exists():
            rows = list(latest_by_key(read_checkpoint(records)).values())
            frame = cls.from_records(rows).frame
        else:
            raise ConfigError(
                f"no results here: neither {RESULTS_FILE} nor {RECORDS_FILE}", source=str(d)
            )
        return cls(frame, manifest=manifest, prompts=prompts, path=d)

    # -- views -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def run_id(self) -> str | None:
        return self.manifest.get("run_id")

    @property
    def deployments(self) -> list[str]:
        """Deployment names in run order."""
        order = self.manifest.get("deployment_order")
        seen = list(dict.fromkeys(self.frame["deployment"].dropna().tolist()))
        if order:
            return [d for d in order if d in set(seen)] + [d for d in seen if d not in order]
        return seen

    def timing_frame(self) -> pd.DataFrame:
        """Rows that count for latency statistics: status ok and not replayed from a checkpoint."""
        f = self.frame
        return f[(f["status"] == "ok") & ~f["cached"]]

    def wide(self, value: str = "output", *, repeat: int | None = 0) -> pd.DataFrame:
        """One row per prompt, one `value` column per deployment (first repeat by default).

        With `repeat=None` numeric values are averaged over repeats and text takes the first.
        The prompt text and reference answer lead when the prompts are known.
        """
        if value not in self.frame.columns:
            raise KeyError(f"no column {value!r}; choose one of {', '.join(RECORD_COLUMNS)}")
        f = self.frame
        if repeat is not None:
            f = f[f["repeat"] == repeat]
        numeric = pd.api.types.is_numeric_dtype(f[value]) and f[value].dtype != bool
        wide = f.pivot_table(
            index="prompt_id",
            columns="deployment",
            values=value,
            aggfunc="mean" if numeric else "first",
            sort=False,
            dropna=False,
        )
        order = [d for d in self.deployments if d in wide.columns]
        prompt_order = list(dict.fromkeys(self.frame["prompt_id"].tolist()))
        if self.prompts is not None and len(self.prompts):
            prompt_order = [p for p in self.prompts["id"] if p in wide.index] + [
                p for p in prompt_order if p not in set(self.prompts["id"])
            ]
        wide = wide.reindex(index=[p for p in prompt_order if p in wide.index], columns=order)
        wide.columns.name = "deployment"
        if self.prompts is not None and len(self.prompts):
            info = self.prompts.set_index("id")
            lead = [c for c in ("prompt", "reference") if c in info.columns]
            if lead:
                wide = info[lead].reindex(wide.index).join(wide)
        return wide

    def summary(self) -> pd.DataFrame:
        """Per deployment: counts by status, error rate, timing percentiles, decode rate, cost.

        `tokens_source` says what decode_tps_mean counts: `usage` tokens, or content `chunks`
        for a server that streamed no usage; never both (usage wins, the rest are left out and
        counted in the text), `none` when no row has a decode rate.

        Percentiles of ttft_s and latency_s use `timing_frame()` rows only (ok, not cached);
        `n_timing` says how many. Token and cost totals cover every row (cached included).
        """
        f = self.frame
        timing = self.timing_frame()
        rows = []
        for dep in self.deployments:
            d = f[f["deployment"] == dep]
            t = timing[timing["deployment"] == dep]
            n = len(d)
            ok = int((d["status"] == "ok").sum())
            row: dict[str, Any] = {"deployment": dep, "n": n, "ok": ok}
            row["error_rate"] = (n - ok) / n if n else math.nan
            for status in STATUSES[1:]:
                row[status] = int((d["status"] == status).sum())
            row["cached"] = int(d["cached"].sum())
            row["n_timing"] = len(t)
            for metric in TIMING_METRICS:
                values = t[metric].dropna().to_numpy()
                for q in PERCENTILES:
                    row[f"{metric}_p{q}"] = _percentile(values, q)
            row["decode_tps_mean"], row["tokens_source"] = _decode_rate(t)
            row["prompt_tokens"] = float(d["prompt_tokens"].sum(min_count=1))
            row["completion_tokens"] = float(d["completion_tokens"].sum(min_count=1))
            row["cost"] = float(d["cost"].sum(min_count=1))
            rows.append(row)
        out = pd.DataFrame(rows)
        if out.empty:
            out = pd.DataFrame(columns=["deployment", *SUMMARY_COLUMNS])
        return out.set_index("deployment")

    # -- persistence -----------------------------------------------------------------------

    def save(self, directory: str | os.PathLike[str] | None = None) -> Path:
        """Write results.parquet, manifest.json (and prompts.parquet) into `directory`."""
        target = directory if directory is not None else self.path
        if target is None:
            raise ValueError("save() needs a directory (this Results was not loaded from one)")
        d = Path(target)
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / (RESULTS_FILE + ".tmp")
        self.frame.to_parquet(tmp, index=False)
        os.replace(tmp, d / RESULTS_FILE)
        if self.prompts is not None:
            self.prompts.to_parquet(d / PROMPTS_FILE, index=False)
        manifest = dict(self.manifest)
        manifest.setdefault("packages", package_versions())
        manifest["saved_at"] = datetime.now(UTC).isoformat()
        manifest["rows"] = len(self.frame)
        manifest["status_counts"] = {
            str(k): int(v) for k, v in self.frame["status"].value_counts().items()
        }
        manifest["metrics"] = METRICS
        manifest.setdefault("python_executable", sys.executable)
        self.manifest = _clean_nan(manifest)
        write_manifest(d, self.manifest)
        self.path = d
        return d

    def __repr__(self) -> str:
        counts = self.frame["status"].value_counts()
        status = " ".join(f"{s}={int(counts[s])}" for s in STATUSES if s in counts)
        deps = ", ".join(self.deployments)
        return f"Results({len(self.frame)} rows; deployments: {deps}; {status or 'empty'})"


def _decode_rate(timing: pd.DataFrame) -> tuple[float, str]:
    """(mean decode_tps, what it counts) of one deployment's timing rows, from one source only:
    usage tokens where any row has them (rows counted by chunks are then left out, and the
    text says how many), else content chunks."""
    rated = timing[timing["decode_tps"].notna()]
    # Records written before tokens_source existed only ever had usage-based rates.
    counts = rated["tokens_source"].fillna("usage").value_counts()
    if counts.empty:
        return math.nan, "none"
    source = "usage" if "usage" in counts else str(counts.index[0])
    mean = float(rated.loc[rated["tokens_source"].fillna("usage") == source, "decode_tps"].mean())
    left_out = int(counts.sum() - counts[source])
    return mean, source + (f" ({left_out} rows by another source left out)" if left_out else "")


SUMMARY_COLUMNS: Final = (
    "n",
    "ok",
    "error_rate",
    *STATUSES[1:],
    "cached",
    "n_timing",
    *(f"{m}_p{q}" for m in TIMING_METRICS for q in PERCENTILES),
    "decode_tps_mean",
    "tokens_source",
    "prompt_tokens",
    "completion_tokens",
    "cost",
)
