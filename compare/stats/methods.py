"""The statistics as `Results` methods: thin delegations to `compare.stats`, plus `from_frame`.

`Results` inherits `StatsMethods`; each method passes the frame, the run's deployment order and
`manifest["scorers"]` to the function of the same name. scipy and statsmodels are imported on
first use, so loading `compare.results` stays as light as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Self

import pandas as pd

from compare.errors import ConfigError
from compare.records import METRICS, STATUSES

if TYPE_CHECKING:
    from compare.stats.sample_size import PowerResult

REQUIRED: Final = ("prompt_id", "deployment", "repeat", "status")


def check_tidy(frame: pd.DataFrame) -> None:
    """ConfigError unless `frame` has the identifying columns, known statuses and a metric."""
    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(f"from_frame needs a pandas DataFrame, not {type(frame).__name__}")
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"from_frame: missing column(s) {', '.join(missing)}; a tidy frame has one row per "
            f"(prompt_id, deployment, repeat) with {', '.join(REQUIRED)} and metric columns "
            f"(it has: {', '.join(map(str, frame.columns)) or 'none'})",
            field=missing[0],
        )
    metric_like = [c for c in frame.columns
                   if c in METRICS or str(c).startswith(("score_", "pass_"))]
    if not metric_like:
        raise ConfigError(
            "from_frame: no metric column; add at least one of "
            f"{', '.join(METRICS)} or a score_<name> / pass_<name> column",
            field="metrics",
        )
    unknown = sorted(set(frame["status"].dropna().astype(str)) - set(STATUSES))
    if unknown:
        raise ConfigError(
            f"from_frame: column 'status' has unknown value(s) {', '.join(unknown)}; "
            f"expected {', '.join(STATUSES)}",
            field="status",
        )


class StatsMethods:
    """Statistics on a run's tidy frame (mixed into `compare.results.Results`)."""

    frame: pd.DataFrame
    manifest: dict[str, Any]

    if TYPE_CHECKING:

        def __init__(self, frame: pd.DataFrame, **kwargs: Any) -> None: ...

        @property
        def deployments(self) -> list[str]: ...

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        manifest: Mapping[str, Any] | None = None,
        prompts: pd.DataFrame | None = None,
    ) -> Self:
        """Results from a tidy frame (prompt_id, deployment, repeat, status and metric columns).

        Record columns get their usual dtypes; every other column (score_*, pass_*, label_*,
        tags, …) is kept next to them.
        """
        check_tidy(frame)
        return cls(frame, manifest=manifest, prompts=prompts)

    @property
    def _scorers(self) -> Mapping[str, Any] | None:
        return self.manifest.get("scorers")

    def leaderboard(self, metric: str, level: float = 0.95) -> pd.DataFrame:
        """Per deployment: mean of `metric` over prompts, se, interval, rank, p50, cost.

        See `compare.stats.ranking.leaderboard`."""
        from compare.stats.ranking import leaderboard

        return leaderboard(self.frame, metric, level, scorers=self._scorers,
                           order=self.deployments)

    def compare(
        self,
        a: str | None = None,
        b: str | None = None,
        *,
        baseline: str | None = None,
        metrics: str | Sequence[str] | None = None,
        by: str | None = None,
        alpha: float = 0.05,
        test: str = "auto",
        margin: float | None = None,
    ) -> pd.DataFrame:
        """Paired comparisons (b − a) per metric with intervals, Holm-adjusted p-values and a
        verdict (`margin`: the difference that counts as none, for `equivalent`).

        See `compare.stats.comparison.compare`."""
        from compare.stats.comparison import compare

        return compare(self.frame, a, b, baseline=baseline, metrics=metrics, by=by, alpha=alpha,
                       test=test, margin=margin, scorers=self._scorers, order=self.deployments)

    def power(
        self, a: str, b: str, metric: str, delta: float, power: float = 0.8, alpha: float = 0.05
    ) -> PowerResult:
        """Prompts needed to detect `delta`, and the effect detectable with the prompts at hand.

        See `compare.stats.sample_size.power`."""
        from compare.stats.sample_size import power as power_analysis

        return power_analysis(self.frame, a, b, metric, delta, power, alpha,
                              scorers=self._scorers, order=self.deployments)

    def bradley_terry(
        self,
        source: str = "judge",
        judge: pd.DataFrame | None = None,
        ratings: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Deployment strengths and Elo-scale ratings from judge and/or human preferences:
        by default this run's pairwise judge verdicts (`pairs`) and the votes given in the
        explorer's rate tab (`ratings`). See `compare.stats.preferences.bradley_terry`."""
        from compare.stats.preferences import bradley_terry

        if judge is None and source in ("judge", "both"):
            judge = getattr(self, "pairs", None)
        if ratings is None and source in ("human", "both"):
            ratings = getattr(self, "ratings", None)
        return bradley_terry(source, judge, ratings, order=self.deployments)
