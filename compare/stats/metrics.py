"""What a metric is: its kind (binary, continuous, ordinal, latency-like) and its direction.

Latency-like metrics (times, throughput, cost) are positive and skewed: they are compared as
ratios b/a on the log scale, per-prompt medians. Scores (`score_<name>`) take their kind and
direction from `manifest["scorers"]` when the scorer declared them, else binary when every value
is 0 or 1 and continuous otherwise, higher is better.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from compare.errors import ConfigError

Kind = Literal["binary", "continuous", "ordinal", "latency"]

# Compared as ratios on the log scale; only decode_tps is better when higher.
LATENCY_LIKE: Final[dict[str, bool]] = {
    "latency_s": False,
    "ttft_s": False,
    "wall_s": False,
    "cost": False,
    "decode_tps": True,
    "itl_p50_s": False,
    "itl_p90_s": False,
}
# Timings come from the timed rows only (status ok and not replayed from a checkpoint); cost and
# scores describe the answer, so a replayed answer still counts for them.
TIMED: Final = frozenset({"latency_s", "ttft_s", "wall_s", "decode_tps", "itl_p50_s", "itl_p90_s"})
# Counters where fewer is better (everything else unknown defaults to higher is better).
FEWER_IS_BETTER: Final = frozenset({"prompt_tokens", "completion_tokens", "attempts", "backoff_s"})
DEFAULT_LATENCY_METRICS: Final = ("latency_s", "ttft_s", "cost")
SCORER_KINDS: Final = ("binary", "continuous", "ordinal")
ID_COLUMNS: Final = ("prompt_id", "deployment", "repeat", "status")


@dataclass(frozen=True)
class MetricInfo:
    """How one metric column is analysed."""

    name: str
    kind: Kind
    higher_is_better: bool

    @property
    def latency_like(self) -> bool:
        return self.kind == "latency"

    @property
    def timed(self) -> bool:
        """True when only timed rows (ok, not cached) may count."""
        return self.name in TIMED


def suggest(name: str, choices: Sequence[str]) -> str:
    """' Did you mean X?' for the closest choice, or '' when nothing is close."""
    by_lower = {str(c).lower(): str(c) for c in choices}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return f" Did you mean {by_lower[close[0]]!r}?" if close else ""


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    """Columns that can be a metric: numeric or bool, not an identifier."""
    out = []
    for col in frame.columns:
        if col in ID_COLUMNS or col == "cached":
            continue
        dtype = frame[col].dtype
        if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            out.append(str(col))
    return out


def require_metric(frame: pd.DataFrame, metric: str) -> None:
    """ConfigError naming the missing metric column and the closest existing one."""
    if metric in frame.columns and metric in numeric_columns(frame):
        return
    choices = numeric_columns(frame)
    if metric in frame.columns:
        raise ConfigError(
            f"metric column {metric!r} is not numeric (dtype {frame[metric].dtype}); "
            f"numeric columns: {', '.join(choices)}",
            field="metric",
        )
    raise ConfigError(
        f"no metric column {metric!r}.{suggest(metric, choices)} "
        f"Metric columns here: {', '.join(choices) or 'none'}",
        field="metric",
    )


def scorer_entry(metric: str, scorers: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """What `manifest["scorers"]` says of `metric` (by its name, or without score_/pass_)."""
    if not scorers:
        return None
    for key in (metric, metric.removeprefix("score_"), metric.removeprefix("pass_")):
        entry = scorers.get(key)
        if isinstance(entry, Mapping):
            return entry
    return None


def _is_binary(values: pd.Series) -> bool:
    finite = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)
    return len(finite) > 0 and bool(np.isin(finite, (0.0, 1.0)).all())


def metric_info(
    frame: pd.DataFrame, metric: str, scorers: Mapping[str, Any] | None = None
) -> MetricInfo:
    """Kind and direction of `metric` in `frame` (scorer metadata wins over inference)."""
    require_metric(frame, metric)
    if metric in LATENCY_LIKE:
        return MetricInfo(metric, "latency", LATENCY_LIKE[metric])
    entry = scorer_entry(metric, scorers)
    higher = True
    if entry is not None:
        higher = bool(entry.get("higher_is_better", True))
        kind = entry.get("kind")
        if kind is not None:
            if kind not in SCORER_KINDS:
                raise ConfigError(
                    f"scorer {metric!r} has kind {kind!r}; expected one of "
                    f"{', '.join(SCORER_KINDS)}",
                    source="manifest['scorers']",
                    field=metric,
                )
            return MetricInfo(metric, kind, higher)
    if metric in FEWER_IS_BETTER:
        higher = False
    if pd.api.types.is_bool_dtype(frame[metric].dtype) or _is_binary(frame[metric]):
        return MetricInfo(metric, "binary", higher)
    return MetricInfo(metric, "continuous", higher)


def default_metrics(frame: pd.DataFrame) -> list[str]:
    """Every score_* column, then latency_s, ttft_s and cost where an ok row has a value."""
    ok = frame[frame["status"] == "ok"] if "status" in frame.columns else frame
    scores = [str(c) for c in frame.columns if str(c).startswith("score_")]
    timing = [m for m in DEFAULT_LATENCY_METRICS if m in frame.columns and ok[m].notna().any()]
    return scores + timing


def resolve_metrics(
    frame: pd.DataFrame,
    metrics: str | Sequence[str] | None,
    scorers: Mapping[str, Any] | None = None,
) -> list[MetricInfo]:
    """MetricInfo for each requested metric (the defaults when None), validated."""
    if isinstance(metrics, str):
        metrics = [metrics]
    names = default_metrics(frame) if metrics is None else list(metrics)
    if not names:
        raise ConfigError(
            "no metric to analyse: the frame has no score_* column and no latency_s, ttft_s or "
            "cost values in ok rows; pass metrics=[...]",
            field="metrics",
        )
    return [metric_info(frame, name, scorers) for name in dict.fromkeys(names)]
