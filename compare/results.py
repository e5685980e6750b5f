"""Results: the tidy frame of records (one row per prompt × deployment × repeat) and its views.

The frame's columns are described in `compare.frame` (record columns with real dtypes, then
label_<key> and tags to group by, then score columns). Latency statistics use `timing_frame()`
only: status ok and not replayed from a checkpoint. The run directory's files are described in
`compare.run_dir`; `Results.load` reads them back, from the checkpoint when a run never finished.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from compare.errors import ConfigError
from compare.frame import ColumnBuffer, add_group_columns, coerce
from compare.records import FAILED_STATUSES, METRICS, RECORD_COLUMNS, STATUSES, Record
from compare.run_dir import (
    MANIFEST_FILE,
    PAIRS_FILE,
    PROMPTS_FILE,
    RESULTS_FILE,
    SCORES_FILE,
    clean_nan,
    package_versions,
    read_frame,
    read_manifest,
    write_frame,
    write_manifest,
)
from compare.stats.methods import StatsMethods
from compare.summary import SUMMARY_COLUMNS, summarize, timing_rows

__all__ = [
    "MANIFEST_FILE",
    "PROMPTS_FILE",
    "RESULTS_FILE",
    "SUMMARY_COLUMNS",
    "ColumnBuffer",
    "Results",
    "package_versions",
    "write_manifest",
]


class Results(StatsMethods):
    """The records of a run as a tidy pandas frame, with summaries, statistics (leaderboard,
    compare, power, bradley_terry: `compare.stats`) and persistence.

    `frame`: one row per prompt × deployment × repeat (see `compare.frame`); `manifest`: how the
    run was made (config, deployments without secrets, versions); `prompt_table`: id, prompt
    (text of the last user turn), reference and tags of the prompts, when known.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        *,
        manifest: Mapping[str, Any] | None = None,
        prompts: pd.DataFrame | None = None,
        path: str | os.PathLike[str] | None = None,
        columns: Iterable[str] | None = None,
    ) -> None:
        self.manifest: dict[str, Any] = dict(manifest or {})
        self.prompt_table: pd.DataFrame | None = prompts
        frame = coerce(frame, columns).reset_index(drop=True)
        # A frame of chosen columns (Results.load(columns=...)) stays just those.
        self.frame: pd.DataFrame = frame if columns is not None else add_group_columns(
            frame, self.manifest.get("deployments") or (), prompts)
        self.path = Path(path) if path is not None else None
        # Set by scoring (compare.scoring): one row per row × scorer, and judged pairs.
        self.scores: pd.DataFrame | None = None
        self.pairs: pd.DataFrame | None = None

    @property
    def ratings(self) -> pd.DataFrame:
        """Human A/B votes given in the explorer's rate tab (OUT/ratings.jsonl): prompt_id,
        repeat, left, right, vote (left / right / tie / both_bad), note, rated_at."""
        from compare.ratings import read_ratings

        return read_ratings(self.path)

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
    def load(cls, directory: str | os.PathLike[str],
             columns: Iterable[str] | None = None) -> Results:
        """Read a run directory: results.parquet (a sharded run: its parquet parts), or its
        record files when the run never finished (see `compare.run_parts`).

        columns: read only these record columns (a parquet projection; the frame has just
        them), e.g. ["prompt_id", "deployment", "repeat", "status", "cached", "latency_s"] for
        a leaderboard of ten million rows.
        """
        from compare.run_parts import check_columns, read_run_frame

        d = Path(directory)
        if not d.is_dir():
            raise ConfigError("no such run directory", source=str(d))
        wanted = check_columns(columns)
        manifest = read_manifest(d)
        prompts = read_frame(d / PROMPTS_FILE) if (d / PROMPTS_FILE).exists() else None
        frame = read_run_frame(d, manifest, wanted)
        results = cls(frame, manifest=manifest, prompts=prompts, path=d, columns=wanted)
        for name, file in (("scores", SCORES_FILE), ("pairs", PAIRS_FILE)):
            if wanted is None and (d / file).exists():
                setattr(results, name, read_frame(d / file))
        return results

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
        return timing_rows(self.frame)

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
        wide = f.pivot_table(index="prompt_id", columns="deployment", values=value,
                             aggfunc="mean" if numeric else "first", sort=False, dropna=False)
        order = [d for d in self.deployments if d in wide.columns]
        prompt_order = list(dict.fromkeys(self.frame["prompt_id"].tolist()))
        table = self.prompt_table
        if table is not None and len(table):
            known = set(table["id"])
            prompt_order = [p for p in table["id"] if p in wide.index] + [
                p for p in prompt_order if p not in known]
        wide = wide.reindex(index=[p for p in prompt_order if p in wide.index], columns=order)
        wide.columns.name = "deployment"
        if table is not None and len(table):
            info = table.set_index("id")
            lead = [c for c in ("prompt", "reference") if c in info.columns]
            if lead:
                wide = info[lead].reindex(wide.index).join(wide)
        return wide

    @staticmethod
    def summarize_dir(directory: str | os.PathLike[str]) -> pd.DataFrame:
        """`Results.load(directory).summary()` without loading the run: batch by batch from its
        parquet files (ten million rows in well under 1 GB; see `compare.run_summary`)."""
        from compare.run_summary import summarize_run

        return summarize_run(directory)

    @staticmethod
    def leaderboard_dir(directory: str | os.PathLike[str], metric: str,
                        level: float = 0.95) -> pd.DataFrame:
        """`Results.load(directory).leaderboard(metric, level)` without loading the run: one
        deployment at a time from its parquet files (see `compare.run_summary`)."""
        from compare.run_summary import leaderboard_run

        return leaderboard_run(directory, metric, level)

    def summary(self) -> pd.DataFrame:
        """Per deployment: counts by status, failure rate, timing percentiles, decode rate,
        tokens, cost and score means (see `compare.summary`)."""
        return summarize(self.frame, self.deployments)

    # -- persistence -----------------------------------------------------------------------

    def save(self, directory: str | os.PathLike[str] | None = None) -> Path:
        """Write results.parquet, manifest.json (and prompts.parquet) into `directory`."""
        target = directory if directory is not None else self.path
        if target is None:
            raise ValueError("save() needs a directory (this Results was not loaded from one)")
        d = Path(target)
        d.mkdir(parents=True, exist_ok=True)
        write_frame(self.frame, d / RESULTS_FILE)
        if self.prompt_table is not None:
            write_frame(self.prompt_table, d / PROMPTS_FILE)
        for table, file in ((self.scores, SCORES_FILE), (self.pairs, PAIRS_FILE)):
            if table is not None:
                write_frame(table, d / file)
        manifest = dict(self.manifest)
        manifest.setdefault("packages", package_versions())
        manifest["saved_at"] = datetime.now(UTC).isoformat()
        manifest["rows"] = len(self.frame)
        manifest["status_counts"] = {
            str(k): int(v) for k, v in self.frame["status"].value_counts().items()
        }
        manifest["metrics"] = METRICS
        manifest.setdefault("python_executable", sys.executable)
        self.manifest = clean_nan(manifest)
        write_manifest(d, self.manifest)
        self.path = d
        return d

    # -- judges against people (compare.agreement) ------------------------------------------

    def judge_agreement(self, scorer: str, labels: Any = None, *, n_resamples: int = 1000,
                        confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:
        """How far a judge agrees with people: Cohen's kappa, weighted kappa (ordinal grades)
        and Krippendorff's alpha with bootstrap intervals. `labels`: human grades of the same
        rows (a frame column, an aligned Series, or a frame keyed by prompt_id, deployment,
        repeat with `label`); None for a pairwise judge, checked against OUT/ratings.jsonl."""
        from compare.agreement import (
            agreement_table,
            human_labels,
            judge_values,
            pair_codes,
        )

        if labels is None:
            if self.pairs is None or not len(self.ratings):
                raise ConfigError(
                    "judge_agreement needs labels=... (human grades of the judged rows), or a "
                    "pairwise judge's pairs and human votes in OUT/ratings.jsonl (rate tab)",
                    field="labels")
            judge_dep = (self.manifest.get("scorers") or {}).get(scorer, {}).get("judge")
            judge, human = pair_codes(self.pairs, self.ratings, judge_dep)
            return agreement_table(judge, human, ordinal=False, n_resamples=n_resamples,
                                   confidence=confidence, seed=seed)
        values = judge_values(self.scores, scorer)
        people = human_labels(self.frame, labels)
        both = values.index.intersection(people.index)
        # G-Eval grades are expectations: the nearest grade is the category compared.
        judge = np.rint(values.loc[both].to_numpy(float))
        kind = (self.manifest.get("scorers") or {}).get(scorer, {}).get("kind")
        return agreement_table(judge, people.loc[both].to_numpy(float),
                               ordinal=kind != "binary", n_resamples=n_resamples,
                               confidence=confidence, seed=seed)

    def corrected_mean(self, scorer: str, labels: Any, *, confidence: float = 0.95
                       ) -> dict[str, float]:
        """A prediction-powered interval for the mean human grade over all judged rows: every
        judge grade, corrected by the judge's error on the human-labelled subset (`labels` as
        in judge_agreement). Also the judge-only mean and the humans-only interval."""
        from compare.agreement import human_labels, judge_values, prediction_powered_mean

        return prediction_powered_mean(judge_values(self.scores, scorer),
                                       human_labels(self.frame, labels), confidence=confidence)

    def __repr__(self) -> str:
        counts = self.frame["status"].value_counts()
        status = " ".join(f"{s}={int(counts[s])}" for s in STATUSES if s in counts)
        deps = ", ".join(self.deployments)
        head = f"Results({len(self.frame)} rows; deployments: {deps}; {status or 'empty'})"
        return "\n".join([head, *self.first_failures()])

    def first_failures(self) -> list[str]:
        """One line per deployment with failed rows: how many, and the first failure's error."""
        f = self.frame
        failed = f[f["status"].isin(list(FAILED_STATUSES))]
        lines = []
        for dep in self.deployments:
            rows = failed[failed["deployment"] == dep]
            if len(rows):
                first = rows.iloc[0]
                message = first["error_message"]  # pd.NA when missing: never truthy-tested
                message = "" if pd.isna(message) else str(message)
                lines.append(f"  {dep}: {len(rows)} failed, first: {first['error_type']}: "
                             f"{message[:200]}")
        return lines
