"""diff(): run against run — the same deployments before and after a change, paired by prompt.

Rows of the two runs are matched by prompt_id and deployment name; each deployment present in
both runs gets the comparisons `compare()` makes (a = "old", b = "new"), Holm over the whole call.
`significantly_worse()` is the yes/no a CI gate needs (`compare diff OLD NEW --fail-if-worse M`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from compare.errors import ConfigError
from compare.stats.comparison import compare
from compare.stats.frames import check_frame, deployments_of
from compare.stats.metrics import suggest

RUN_COLUMN = "_run_deployment"


def _frame_and_scorers(run: Any, name: str) -> tuple[pd.DataFrame, Mapping[str, Any] | None]:
    frame = getattr(run, "frame", run)
    manifest = getattr(run, "manifest", None) or {}
    check_frame(frame, f"the {name} run")
    return frame, manifest.get("scorers")


def diff(
    old: Any,
    new: Any,
    metrics: str | Sequence[str] | None = None,
    alpha: float = 0.05,
    *,
    test: str = "auto",
    margin: float | None = None,
    scorers: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Compare two runs (Results or tidy frames) deployment by deployment, old → new.

    Returns compare()'s columns with a leading `deployment` column; a = "old", b = "new", so
    `diff` is new − old and `ratio` new/old. Scorer metadata comes from `scorers`, else the new
    run's manifest, else the old one's. `verdict` says better / worse (new against old) /
    equivalent (interval inside ±`margin`) / inconclusive / too_few. Deployments in only one
    run are listed in `attrs["unmatched"]`.
    """
    f_old, s_old = _frame_and_scorers(old, "old")
    f_new, s_new = _frame_and_scorers(new, "new")
    in_new = set(deployments_of(f_new))
    common = [d for d in deployments_of(f_old) if d in in_new]
    if not common:
        raise ConfigError(
            "the two runs share no deployment name: old has "
            f"{', '.join(deployments_of(f_old))}; new has {', '.join(deployments_of(f_new))}"
        )
    parts = [
        f[f["deployment"].isin(common)].assign(**{RUN_COLUMN: f["deployment"], "deployment": side})
        for f, side in ((f_old, "old"), (f_new, "new"))
    ]
    combined = pd.concat(parts, ignore_index=True)
    table = compare(combined, "old", "new", metrics=metrics, by=RUN_COLUMN, alpha=alpha,
                    test=test, margin=margin, scorers=scorers or s_new or s_old)
    table = table.rename(columns={RUN_COLUMN: "deployment"})
    ordered = table.set_index("deployment").loc[common].reset_index()
    table = ordered[["deployment", *[c for c in table.columns if c != "deployment"]]]
    unmatched = sorted(set(deployments_of(f_old)) ^ in_new)
    table.attrs.update(alpha=alpha, unmatched=unmatched, omnibus=[], margin=margin)
    return table


def worse_rows(table: pd.DataFrame, metric: str | None = None) -> pd.DataFrame:
    """Rows where b (the new run) is significantly worse, respecting higher_is_better.

    Latency-like rows judge by the ratio (the quantity tested), others by the difference.
    """
    rows = table
    if metric is not None:
        metrics = list(dict.fromkeys(table["metric"]))
        if metric not in metrics:
            raise ConfigError(
                f"--fail-if-worse {metric}: no such metric in the comparison."
                f"{suggest(metric, metrics)} Metrics compared: {', '.join(metrics)}",
                field="metric",
            )
        rows = table[table["metric"] == metric]
    ratio = rows["ratio"] if "ratio" in rows.columns else pd.Series(float("nan"), rows.index)
    up = ratio.gt(1).where(ratio.notna(), rows["diff"].gt(0))
    down = ratio.lt(1).where(ratio.notna(), rows["diff"].lt(0))
    worse = down.where(rows["higher_is_better"].astype(bool), up)
    return rows[rows["significant"].astype(bool) & worse.astype(bool)]


def significantly_worse(table: pd.DataFrame, metric: str) -> bool:
    """True when the new run is significantly worse on `metric` for any deployment."""
    return not worse_rows(table, metric).empty
