"""compare(): which deployment is better on each metric, by how much, and how sure.

One row per (a, b, metric[, group]). Differences are b − a on per-prompt values (see
`compare.stats.frames`), the test per metric kind is described in `compare.stats.paired`, and
Holm's step-down adjustment runs over every row of one call (`p_adj`; `significant` is
p_adj < alpha). With three or more deployments an omnibus test runs first per metric and group —
Cochran's Q for binary one-repeat metrics, Friedman otherwise, on the prompts every deployment
answered — reported in `attrs["omnibus"]` and in the `omnibus_p` column.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.contingency_tables import cochrans_q
from statsmodels.stats.multitest import multipletests

from compare.errors import ConfigError
from compare.stats.frames import (
    PromptTable,
    check_frame,
    complete_block,
    deployments_of,
    pair,
    prompt_table,
    require_deployment,
)
from compare.stats.metrics import MetricInfo, resolve_metrics, suggest
from compare.stats.paired import compare_paired
from compare.stats.verdict import check_margin, verdicts

COLUMNS: Final = (
    "a", "b", "metric", "test", "n_pairs", "mean_a", "mean_b", "diff", "se_diff", "ci_low",
    "ci_high", "p_value", "p_adj", "significant", "verdict", "wins", "losses", "ties",
)
RATIO_COLUMNS: Final = ("ratio", "ratio_ci_low", "ratio_ci_high")
TRAILING: Final = ("n_dropped", "dropped", "higher_is_better", "note")
UNTAGGED: Final = "(untagged)"


def choose_pairs(
    deployments: Sequence[str], a: str | None, b: str | None, baseline: str | None
) -> list[tuple[str, str]]:
    """(a, b) pairs: the one given, every other vs `baseline`, or all pairs in run order."""
    if len(deployments) < 2:
        raise ConfigError(
            f"comparing needs at least two deployments; these results have "
            f"{len(deployments)}: {', '.join(deployments) or 'none'}"
        )
    if b is not None and a is None:
        raise ConfigError("b= was given without a=; pass both, or baseline=", field="a")
    if a is not None and baseline is not None:
        raise ConfigError("pass a= (and b=) or baseline=, not both", field="baseline")
    for name, arg in ((a, "a"), (b, "b"), (baseline, "baseline")):
        if name is not None:
            require_deployment(name, deployments, arg)
    if a is not None and b is not None:
        if a == b:
            raise ConfigError(f"a and b are both {a!r}; compare two different deployments")
        return [(a, b)]
    base = baseline if baseline is not None else a
    if base is not None:
        return [(base, d) for d in deployments if d != base]
    return list(itertools.combinations(deployments, 2))


def _tags(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple | np.ndarray | pd.Series) and len(value):
        return [str(v) for v in value]
    return [UNTAGGED]


def split_groups(frame: pd.DataFrame, by: str | None) -> list[tuple[Hashable, pd.DataFrame]]:
    """(group, rows) for each prompt tag (by='tag') or each value of column `by`."""
    if by is None:
        return [(None, frame)]
    if by == "tag":
        if "tags" not in frame.columns:
            raise ConfigError(
                "by='tag' needs a 'tags' column (a list of tag strings per row); this frame has "
                f"none.{suggest('tags', list(map(str, frame.columns)))}",
                field="by",
            )
        exploded = frame.assign(_group=frame["tags"].map(_tags)).explode("_group")
        return [(g, rows.drop(columns="_group")) for g, rows in exploded.groupby("_group")]
    if by not in frame.columns:
        raise ConfigError(
            f"by={by!r}: no such column.{suggest(by, list(map(str, frame.columns)))} "
            "Use by='tag' for prompt tags, or a column name such as a label_<key> column",
            field="by",
        )
    if by in COLUMNS:
        raise ConfigError(f"by={by!r} would clash with the output column of that name", field="by")
    keys = frame[by].astype(object).where(frame[by].notna(), "(missing)")
    return list(frame.groupby(keys, sort=True))


def _omnibus(table: PromptTable, deployments: Sequence[str], group: Hashable) -> dict[str, Any]:
    block = complete_block(table, deployments)
    out: dict[str, Any] = {"metric": table.info.name, "group": group,
                           "deployments": list(deployments), "n_prompts": len(block)}
    values = block.to_numpy(dtype=float)
    binary = table.info.kind == "binary" and bool(np.isin(values, (0.0, 1.0)).all())
    out["test"] = "Cochran's Q" if binary else "Friedman"
    if len(block) < 2 or np.ptp(values, axis=1).max(initial=0) == 0:
        why = "fewer than 2 prompts answered by all" if len(block) < 2 else "no prompt differs"
        return {**out, "statistic": math.nan, "p_value": 1.0 if len(block) >= 2 else math.nan,
                "note": why}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = cochrans_q(values.astype(int)) if binary else stats.friedmanchisquare(*values.T)
    return {**out, "statistic": float(res.statistic), "p_value": float(res.pvalue), "note": ""}


def _row(
    table: PromptTable, a: str, b: str, test: str, level: float
) -> dict[str, Any]:
    info = table.info
    paired = pair(table, a, b)
    row: dict[str, Any] = {"a": a, "b": b, "metric": info.name}
    row.update(compare_paired(paired, info, test=test, level=level))
    notes = [row.pop("note", "")]
    for side in (a, b):
        if side not in table.values.columns:
            notes.append(f"{side} has no usable {info.name} rows")
    if not paired.balanced and paired.max_repeats > 1:
        notes.append("unequal repeats: each prompt's repeats are averaged, prompts weigh equally")
    row.update(n_dropped=paired.n_dropped, dropped=paired.dropped,
               higher_is_better=info.higher_is_better, note="; ".join(n for n in notes if n))
    return row


def holm(rows: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """p_adj (Holm over every finite p-value) and significant = p_adj < alpha."""
    p = rows["p_value"].to_numpy(dtype=float)
    finite = np.isfinite(p)
    adjusted = np.full(len(p), np.nan)
    if finite.sum() == 1:
        adjusted[finite] = p[finite]  # Holm over one hypothesis leaves it as it is
    elif finite.any():
        adjusted[finite] = multipletests(p[finite], alpha=alpha, method="holm")[1]
    rows["p_adj"] = adjusted
    rows["significant"] = np.where(finite, adjusted < alpha, False).astype(bool)
    return rows


def _order(rows: pd.DataFrame, group_col: str | None, infos: Sequence[MetricInfo]) -> pd.DataFrame:
    lead = list(COLUMNS[:3]) + ([group_col] if group_col else []) + list(COLUMNS[3:])
    ratio = list(RATIO_COLUMNS) if any(i.latency_like for i in infos) else []
    extra = [c for c in rows.columns if c not in {*lead, *ratio, *TRAILING}]
    for col in [*lead, *ratio, *TRAILING]:
        if col not in rows.columns:
            rows[col] = math.nan
    return rows[lead + ratio + list(TRAILING) + extra]


def check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha={alpha!r} must be between 0 and 1 (e.g. 0.05)", field="alpha")


def compare(
    frame: pd.DataFrame,
    a: str | None = None,
    b: str | None = None,
    *,
    baseline: str | None = None,
    metrics: str | Sequence[str] | None = None,
    by: str | None = None,
    alpha: float = 0.05,
    test: str = "auto",
    margin: float | None = None,
    scorers: Mapping[str, Any] | None = None,
    order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Paired comparisons of deployments on each metric, Holm-adjusted over the whole call.

    Pairs: `a` and `b` → that pair; `baseline` (or `a` alone) → every other deployment against
    it (a = baseline); neither → all pairs in run order (`order`, else order of appearance).
    Metrics default to every score_* column, then latency_s, ttft_s and cost where they have data.
    `by='tag'` splits by prompt tag (a prompt with several tags is in each), `by=<column>` by
    that column's values. `scorers` is `manifest['scorers']` (kind and direction per score).

    Columns: a, b, metric[, group], test, n_pairs, mean_a, mean_b, diff (= b − a), se_diff,
    ci_low, ci_high (interval of diff at 1 − alpha), p_value, p_adj, significant, verdict
    (better / worse / equivalent / inconclusive / too_few, see `compare.stats.verdict`; `margin`
    is the difference — for latency-like metrics the fraction of the ratio — that counts as
    none), wins / losses
    / ties (prompts where b is better / worse / equal, respecting higher_is_better), ratio,
    ratio_ci_low, ratio_ci_high (b/a, latency-like metrics), n_dropped and dropped (prompts left
    out and why), higher_is_better, note (why a row has no p-value, or how it was computed),
    omnibus_p (three or more deployments). `attrs["omnibus"]` holds the omnibus tests.
    """
    check_frame(frame)
    check_alpha(alpha)
    check_margin(margin)
    pairs = choose_pairs(deployments_of(frame, order), a, b, baseline)
    infos = resolve_metrics(frame, metrics, scorers)
    involved = list(dict.fromkeys(d for p in pairs for d in p))
    group_col = None if by is None else ("tag" if by == "tag" else by)
    rows, omnibus = [], []
    for group, sub in split_groups(frame, by):
        for info in infos:
            table = prompt_table(sub, info)
            test_of_group = None
            if len(involved) >= 3:
                test_of_group = _omnibus(table, involved, group)
                omnibus.append(test_of_group)
            for side_a, side_b in pairs:
                row = _row(table, side_a, side_b, test, 1 - alpha)
                if group_col is not None:
                    row[group_col] = group
                if test_of_group is not None:
                    row["omnibus_p"] = test_of_group["p_value"]
                rows.append(row)
    out = holm(pd.DataFrame(rows), alpha)
    out["verdict"] = verdicts(out, alpha, margin)
    out = _order(out, group_col, infos)
    out.attrs.update(alpha=alpha, by=by, omnibus=omnibus, margin=margin)
    _warn_degenerate(out)
    return out


def _warn_degenerate(rows: pd.DataFrame) -> None:
    bad = rows[rows["p_value"].isna()]
    if len(bad):
        lines = [f"{r.a} vs {r.b} on {r.metric}: {r.note}" for r in bad.itertuples()]
        warnings.warn(
            f"{len(bad)} comparison(s) have no p-value (see the note column): "
            + "; ".join(lines[:5]) + (" …" if len(lines) > 5 else ""),
            UserWarning,
            stacklevel=3,
        )
