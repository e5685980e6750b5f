"""The results frame's columns: the record columns with real dtypes, then what people group by.

- Record columns (`compare.records.RECORD_COLUMNS`), in that order, with real dtypes: float64
  metrics with NaN for "not measured", int64 counters, bool flags, pandas strings, `started_at`
  as UTC datetimes.
- Group columns, derived when known: `label_<key>` (string) from each deployment's `labels`
  (model, version, capacity type, ...), and `tags` (a list of strings per row) from the prompts.
- Any other column (`score_<name>`, `pass_<name>` from scorers, columns of a frame from elsewhere)
  is kept as it is, after those.

`ColumnBuffer` collects records column-wise while a run is going (100k records without holding
Record or dict objects).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any, Final

import pandas as pd

from compare.records import RECORD_COLUMNS, Record

LABEL_PREFIX: Final = "label_"
TAGS_COLUMN: Final = "tags"


def _column_kinds() -> dict[str, str]:
    kinds: dict[str, str] = {}
    for f in fields(Record):
        if f.name == "extra":
            continue
        t = str(f.type)
        if f.name == "started_at":
            kinds[f.name] = "datetime"
        elif t in ("bool", "int", "float"):
            kinds[f.name] = t
        else:
            kinds[f.name] = "str"
    return kinds


COLUMN_KINDS: Final[dict[str, str]] = _column_kinds()


_READY: Final = {"float": "float64", "int": "int64", "bool": "bool"}


def _typed(col: pd.Series, kind: str) -> pd.Series:
    if _READY.get(kind) == str(col.dtype):
        return col  # already so (a parquet read): no copy of ten million values
    if kind == "float":
        return pd.to_numeric(col, errors="coerce").astype("float64")
    if kind == "int":
        return pd.to_numeric(col, errors="coerce").fillna(0).astype("int64")
    if kind == "bool":
        return col.fillna(False).astype("bool")
    if kind == "datetime":
        return pd.to_datetime(col, utc=True, format="ISO8601")
    if isinstance(col.dtype, pd.CategoricalDtype):
        return col  # read as codes on purpose (compare.run_parts): a string per row is larger
    return col.astype("string")


def coerce(frame: pd.DataFrame, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """The record columns with their dtypes (missing ones added empty), then every other column
    of `frame` as it was. `columns`: only these record columns (a frame read column by column)."""
    out: dict[str, Any] = {}
    n = len(frame)
    kinds = COLUMN_KINDS if columns is None else {c: COLUMN_KINDS[c] for c in columns}
    for name, kind in kinds.items():
        col = frame[name] if name in frame.columns else pd.Series([None] * n, index=frame.index)
        out[name] = _typed(col, kind)
    for name in frame.columns:
        if name not in out:
            out[name] = _extra(frame[name], str(name))
    return pd.DataFrame(out, index=frame.index)


def _extra(col: pd.Series, name: str) -> pd.Series:
    """Score columns as float64, pass columns as bool (nullable when some are unknown), label
    columns as strings; anything else as it is."""
    if name.startswith("score_"):
        return pd.to_numeric(col, errors="coerce").astype("float64")
    if name.startswith("pass_"):
        return col.astype("boolean" if col.isna().any() else "bool")
    if name.startswith(LABEL_PREFIX):
        return col.astype("string")
    return col


def add_group_columns(
    frame: pd.DataFrame,
    deployments: Iterable[Mapping[str, Any]],
    prompts: pd.DataFrame | None,
) -> pd.DataFrame:
    """`label_<key>` columns from the deployments' labels (as in a manifest) and `tags` from
    the prompts frame (`id`, `tags`), where known; columns already present are left alone."""
    labels: dict[str, dict[str, str]] = {}
    for dep in deployments:
        for key, value in (dep.get("labels") or {}).items():
            labels.setdefault(f"{LABEL_PREFIX}{key}", {})[str(dep.get("name"))] = (
                None if value is None else str(value))
    names = frame["deployment"]
    for column, by_name in labels.items():
        if column not in frame.columns:
            frame[column] = names.map(by_name).astype("string")
    if (prompts is not None and TAGS_COLUMN in prompts.columns
            and TAGS_COLUMN not in frame.columns):
        by_id = {str(i): [str(t) for t in (tags if tags is not None else ())]
                 for i, tags in zip(prompts["id"], prompts[TAGS_COLUMN], strict=True)}
        # A plain object column of lists (Series.map on a string column would make it an
        # Arrow list type, which parquet round trips cannot rebuild).
        frame[TAGS_COLUMN] = pd.Series([by_id.get(p, []) for p in frame["prompt_id"]],
                                       index=frame.index, dtype=object)
    return frame


class ColumnBuffer:
    """Accumulates records column-wise: one list per column instead of one object per record."""

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
        return coerce(pd.DataFrame(self.columns, columns=list(RECORD_COLUMNS)))
