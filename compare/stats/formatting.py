"""format_table(): a statistics table as text for a terminal, a spreadsheet, a program, a README."""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import pandas as pd

from compare.errors import ConfigError

FORMATS: Final = ("table", "csv", "json", "markdown")
SIGNIFICANT_DIGITS: Final = 4


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return f"{float(value):.{SIGNIFICANT_DIGITS}g}"
    return str(value)


def _flat(frame: pd.DataFrame) -> pd.DataFrame:
    """The index as leading column(s) when it carries names (e.g. deployment)."""
    if any(name is not None for name in frame.index.names):
        return frame.reset_index()
    return frame.reset_index(drop=True)


def _markdown(frame: pd.DataFrame) -> str:
    header = [str(c) for c in frame.columns]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and frame[c].dtype != bool
               for c in frame.columns]
    rows = [[_cell(v).replace("|", "\\|") for v in row] for row in frame.itertuples(index=False)]
    rule = ["---:" if num else "---" for num in numeric]
    lines = [header, rule, *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines) + "\n"


def format_table(frame: pd.DataFrame, fmt: str = "table") -> str:
    """`frame` as text: 'table' (aligned, 4 significant digits), 'csv', 'json' (records) or
    'markdown' (a pipe table, numbers right-aligned). Missing values print as empty cells."""
    if fmt not in FORMATS:
        raise ConfigError(f"format {fmt!r}; choose one of {', '.join(FORMATS)}", field="fmt")
    flat = _flat(frame)
    if fmt == "csv":
        return flat.to_csv(index=False)
    if fmt == "json":
        return flat.to_json(orient="records", indent=2, double_precision=10) + "\n"
    if fmt == "markdown":
        return _markdown(flat)
    if flat.empty:
        return "(no rows)\n"
    text = flat.astype(object).map(_cell)
    return text.to_string(index=False) + "\n"
