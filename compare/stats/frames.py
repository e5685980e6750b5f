"""From the tidy frame to per-prompt values: which rows count, one value per prompt, pairing.

Each prompt is a cluster (Miller, "Adding Error Bars to Evals", 2024, arXiv 2411.00640): its
repeats are averaged into one value (latency-like metrics: the median of its timed rows), and
two deployments are compared on the prompts both answered ok, so every statistic downstream
sees independent per-prompt values and paired differences.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from compare.errors import ConfigError
from compare.stats.metrics import ID_COLUMNS, MetricInfo, suggest


def require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """ConfigError naming every missing column of `what`."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        have = ", ".join(map(str, frame.columns)) or "none"
        raise ConfigError(
            f"{what} lacks column(s) {', '.join(missing)} (it has: {have})", field=missing[0]
        )


def deployments_of(frame: pd.DataFrame, order: Sequence[str] | None = None) -> list[str]:
    """Deployment names in `order` first (a run's order), then in order of appearance."""
    seen = list(dict.fromkeys(frame["deployment"].dropna().astype(str).tolist()))
    if not order:
        return seen
    present = set(seen)
    return [d for d in order if d in present] + [d for d in seen if d not in set(order)]


def require_deployment(name: str, deployments: Sequence[str], argument: str) -> None:
    """ConfigError when `name` (given as `argument`) is not one of `deployments`."""
    if name not in deployments:
        raise ConfigError(
            f"{argument}={name!r} is not a deployment in these results.{suggest(name, deployments)}"
            f" Deployments: {', '.join(deployments) or 'none'}",
            field=argument,
        )


def usable_mask(frame: pd.DataFrame, info: MetricInfo) -> pd.Series:
    """Rows that count for `info`: status ok, a value, and not cached when the metric is timed."""
    mask = (frame["status"] == "ok") & frame[info.name].notna()
    if info.timed and "cached" in frame.columns:
        mask &= ~frame["cached"].fillna(False).astype(bool)
    return mask


def _side_reasons(frame: pd.DataFrame, info: MetricInfo) -> pd.Series:
    """Per (prompt_id, deployment): why it cannot be paired, or '' when it can."""
    ok = frame["status"] == "ok"
    timed = ok
    if info.timed and "cached" in frame.columns:
        timed = ok & ~frame["cached"].fillna(False).astype(bool)
    flags = pd.DataFrame(
        {
            "prompt_id": frame["prompt_id"],
            "deployment": frame["deployment"],
            "ok": ok,
            "timed": timed,
            "value": usable_mask(frame, info),
            "status": frame["status"].astype(str),
        }
    )
    keys = ["prompt_id", "deployment"]
    anyflags = flags.groupby(keys, sort=False)[["ok", "timed", "value"]].any()
    reasons = pd.Series("", index=anyflags.index, dtype=object)
    reasons[~anyflags["value"]] = f"no {info.name} value"
    reasons[~anyflags["timed"]] = "only cached (replayed) rows"
    failed = flags[~flags["ok"]].drop_duplicates([*keys, "status"]).sort_values("status")
    statuses = failed.groupby(keys, sort=False)["status"].agg("/".join)
    no_ok = anyflags.index[~anyflags["ok"]]
    reasons[no_ok] = "no ok answer (" + statuses.reindex(no_ok) + ")"
    return reasons


@dataclass
class PromptTable:
    """One value per (prompt, deployment) for one metric, with why cells are missing."""

    info: MetricInfo
    values: pd.DataFrame  # index prompt_id, columns deployment; mean (or median) over repeats
    counts: pd.DataFrame  # rows that went into each value
    prompts: list[str]  # every prompt in the frame, in order of appearance
    present: dict[str, set[str]]  # deployment → prompts it has any row for
    frame: pd.DataFrame = field(repr=False)

    @cached_property
    def reasons(self) -> pd.Series:
        """(prompt_id, deployment) → '' or why that cell is unusable (computed when needed)."""
        return _side_reasons(self.frame, self.info)


def prompt_table(frame: pd.DataFrame, info: MetricInfo) -> PromptTable:
    """Aggregate usable rows to one value per prompt and deployment."""
    # Integer codes instead of string keys: this runs once per metric and group per call.
    prompt_code, prompt_names = pd.factorize(frame["prompt_id"])
    dep_code, dep_names = pd.factorize(frame["deployment"])
    width = len(dep_names)
    mask = usable_mask(frame, info).to_numpy(dtype=bool)
    cell = prompt_code[mask] * width + dep_code[mask]
    grouped = pd.Series(frame[info.name].to_numpy(dtype="float64")[mask]).groupby(cell)
    agg = grouped.median() if info.latency_like else grouped.mean()
    shape = (len(prompt_names), width)
    values, counts = np.full(shape, np.nan), np.full(shape, np.nan)
    cells = agg.index.to_numpy(dtype=int)
    values.flat[cells] = agg.to_numpy()
    counts.flat[cells] = grouped.size().to_numpy()
    index, columns = pd.Index(prompt_names, name="prompt_id"), pd.Index(dep_names)
    with_data = ~np.isnan(values).all(axis=0)
    prompts = [str(p) for p in prompt_names]
    seen = np.unique(prompt_code * width + dep_code)
    present = {str(d): {prompts[c] for c in seen[seen % width == i] // width}
               for i, d in enumerate(dep_names.tolist())}
    return PromptTable(
        info,
        pd.DataFrame(values, index=index, columns=columns).loc[:, with_data],
        pd.DataFrame(counts, index=index, columns=columns).loc[:, with_data],
        prompts, present, frame)


@dataclass
class Paired:
    """Per-prompt values of a and b on the prompts both can be compared on."""

    prompts: list[str]
    x_a: np.ndarray
    x_b: np.ndarray
    n_dropped: int
    dropped: str  # why prompts were left out, '' when none were
    max_repeats: int
    balanced: bool  # every paired prompt has the same number of rows on both sides


def _column(table: pd.DataFrame, name: str) -> pd.Series:
    return table[name] if name in table.columns else pd.Series(np.nan, index=table.index)


def _drop_text(table: PromptTable, a: str, b: str, dropped: list[str]) -> str:
    tally: Counter[str] = Counter()
    for prompt in dropped:
        parts = []
        for side in (a, b):
            reason = table.reasons.get((prompt, side), "not run")
            if reason:
                parts.append(f"{side}: {reason}")
        tally[" & ".join(parts) or "no value"] += 1
    return "; ".join(f"{why} — {n} prompt{'s' if n > 1 else ''}" for why, n in tally.items())


def pair(table: PromptTable, a: str, b: str) -> Paired:
    """Align a and b by prompt; the rest are dropped with the reason counted."""
    # The table's rows are table.prompts in order, so positions align without reindexing.
    va = _column(table.values, a).to_numpy(dtype=float)
    vb = _column(table.values, b).to_numpy(dtype=float)
    both = ~np.isnan(va) & ~np.isnan(vb)
    prompts = [p for p, keep in zip(table.prompts, both, strict=True) if keep]
    involved = table.present.get(a, set()) | table.present.get(b, set())
    dropped = [p for p, keep in zip(table.prompts, both, strict=True)
               if not keep and p in involved]
    counts = np.concatenate([_column(table.counts, a).to_numpy(dtype=float)[both],
                             _column(table.counts, b).to_numpy(dtype=float)[both]])
    return Paired(
        prompts=prompts,
        x_a=va[both],
        x_b=vb[both],
        n_dropped=len(dropped),
        dropped=_drop_text(table, a, b, dropped) if dropped else "",
        max_repeats=int(counts.max()) if len(counts) else 0,
        balanced=bool(len(counts) == 0 or counts.min() == counts.max()),
    )


def complete_block(table: PromptTable, deployments: Sequence[str]) -> pd.DataFrame:
    """Prompts × deployments with a value for every deployment (for omnibus tests)."""
    cols = [_column(table.values, d).rename(d) for d in deployments]
    block = pd.concat(cols, axis=1) if cols else pd.DataFrame()
    return block.reindex([p for p in table.prompts if p in block.index]).dropna()


def check_frame(frame: pd.DataFrame, what: str = "the results frame") -> None:
    """The identifying columns a statistic needs, and a frame that is not empty."""
    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(f"{what} must be a pandas DataFrame, not {type(frame).__name__}")
    require_columns(frame, ID_COLUMNS, what)
    if frame.empty:
        raise ConfigError(f"{what} has no rows: nothing to analyse")
