"""Checking a judge against people: agreement statistics and a prediction-powered mean.

`judge_agreement` pairs a judge's grades with human labels of the same rows (or a pairwise
judge's winners with the rate tab's votes on the same pairs) and reports Cohen's kappa
(scikit-learn), quadratic-weighted kappa for ordinal grades, and Krippendorff's alpha (the
`krippendorff` package), each with a percentile bootstrap interval over rows (scipy).
`corrected_mean` is the prediction-powered interval for the mean a person would give every row
(Angelopoulos et al. 2023, `ppi_py.ppi_mean_ci`): all the judge's grades, corrected by the
judge's error measured on the human-labelled subset; valid however biased the judge is.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Final

import numpy as np
import pandas as pd

from compare.errors import ConfigError

KEY: Final = ["prompt_id", "deployment", "repeat"]
WINNER_CODES: Final = {"a": 0.0, "tie": 1.0, "b": 2.0}
# A human vote on (left, right) as the winner of the pair (a, b) it was about.
_BOTH_BAD_IS_TIE: Final = {"tie": "tie", "both_bad": "tie"}


def _kappa(judge: np.ndarray, human: np.ndarray, weights: str | None) -> float:
    from sklearn.metrics import cohen_kappa_score

    if len(np.unique(np.concatenate([judge, human]))) < 2:
        return math.nan  # one category only: agreement is undefined, not perfect
    return float(cohen_kappa_score(judge, human, weights=weights))


def _alpha(judge: np.ndarray, human: np.ndarray, level: str) -> float:
    import krippendorff

    data = np.vstack([judge, human]).astype(float)
    if len(np.unique(data)) < 2:
        return math.nan
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement=level))


def agreement_table(judge: np.ndarray, human: np.ndarray, *, ordinal: bool,
                    n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
                    ) -> pd.DataFrame:
    """Kappa(s) and Krippendorff's alpha of two label arrays, with bootstrap intervals.

    Columns: estimate, ci_low, ci_high, n. Rows: cohen_kappa, (weighted_kappa,)
    krippendorff_alpha. Ordinal grades use quadratic weights and the ordinal alpha."""
    from scipy import stats

    judge, human = np.asarray(judge, dtype=float), np.asarray(human, dtype=float)
    metrics: dict[str, Any] = {"cohen_kappa": lambda j, h: _kappa(j, h, None)}
    if ordinal:
        metrics["weighted_kappa"] = lambda j, h: _kappa(j, h, "quadratic")
    level = "ordinal" if ordinal else "nominal"
    metrics["krippendorff_alpha"] = lambda j, h: _alpha(j, h, level)
    rows = {}
    for name, fn in metrics.items():
        estimate = fn(judge, human)
        low = high = math.nan
        if len(judge) >= 3 and not math.isnan(estimate):
            with warnings.catch_warnings():
                # Perfect agreement: every resample gives the same value, a zero-width interval.
                warnings.simplefilter("ignore", stats.DegenerateDataWarning)
                res = stats.bootstrap((judge, human), fn, paired=True, vectorized=False,
                                      n_resamples=n_resamples,
                                      confidence_level=confidence, method="percentile",
                                      rng=np.random.default_rng(seed))
            low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        rows[name] = {"estimate": estimate, "ci_low": low, "ci_high": high, "n": len(judge)}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.attrs["confidence"] = confidence
    return table


def human_labels(frame: pd.DataFrame, labels: Any) -> pd.Series:
    """Human labels by (prompt_id, deployment, repeat): a column of `frame` (NaN = unlabelled),
    a Series aligned with `frame`, or a frame with those key columns and `label`."""
    if isinstance(labels, str):
        if labels not in frame.columns:
            raise ConfigError(f"labels={labels!r} is not a column of the results frame "
                              f"(columns: {', '.join(map(str, frame.columns))})", field="labels")
        labels = frame[labels]
    if isinstance(labels, pd.Series):
        keyed = frame[KEY].assign(label=pd.to_numeric(labels.reindex(frame.index)))
    elif isinstance(labels, pd.DataFrame) and {*KEY, "label"} <= set(labels.columns):
        keyed = labels[[*KEY, "label"]].assign(label=lambda d: pd.to_numeric(d["label"]))
    else:
        raise ConfigError("labels must be a column name, a Series aligned with the frame, or a "
                          "DataFrame with prompt_id, deployment, repeat and label",
                          field="labels")
    return keyed.dropna(subset=["label"]).set_index(KEY)["label"]


def judge_values(scores: pd.DataFrame | None, scorer: str) -> pd.Series:
    """A scorer's values by (prompt_id, deployment, repeat), NaN (unscored) rows dropped."""
    if scores is None or scorer not in set(scores["scorer"].astype(str)):
        known = sorted(set(scores["scorer"].astype(str))) if scores is not None else []
        raise ConfigError(f"no scores from scorer {scorer!r} in these results (scored: "
                          f"{', '.join(known) or 'none'})", field="scorer")
    rows = scores[scores["scorer"].astype(str) == scorer]
    return rows.set_index(KEY)["value"].astype(float).dropna()


def pair_codes(pairs: pd.DataFrame, ratings: pd.DataFrame, judge: str | None
               ) -> tuple[np.ndarray, np.ndarray]:
    """The winners a pairwise judge (deployment `judge`; None: every pair) gave and the human
    votes on the same (prompt, repeat, pair), as codes a=0, tie=1, b=2 (a human `both_bad`
    counts as a tie)."""
    judged = pairs if judge is None else pairs[pairs["judge"].astype(str) == judge]
    votes = {}
    for row in ratings.itertuples(index=False):
        vote = _BOTH_BAD_IS_TIE.get(row.vote) or (row.left if row.vote == "left" else row.right)
        votes[(str(row.prompt_id), int(row.repeat), frozenset((row.left, row.right)))] = vote
    j, h = [], []
    for row in judged.itertuples(index=False):
        vote = votes.get((str(row.prompt_id), int(row.repeat), frozenset((row.a, row.b))))
        if vote is None or row.winner not in WINNER_CODES:
            continue
        j.append(WINNER_CODES[row.winner])
        h.append(WINNER_CODES["tie"] if vote == "tie" else
                 WINNER_CODES["a"] if vote == row.a else WINNER_CODES["b"])
    return np.asarray(j), np.asarray(h)


def prediction_powered_mean(judge_all: pd.Series, human: pd.Series, *,
                            confidence: float = 0.95) -> dict[str, float]:
    """PPI interval for the mean human label over all judged rows (`ppi_py.ppi_mean_ci`, power
    tuned), beside the judge-only mean and the human-only (classical) interval."""
    from ppi_py import classical_mean_ci, ppi_mean_ci, ppi_mean_pointestimate

    labelled = human.index.intersection(judge_all.index)
    if len(labelled) < 2:
        raise ConfigError(f"corrected_mean needs at least 2 human-labelled rows the judge also "
                          f"scored; found {len(labelled)}", field="labels")
    y = human.loc[labelled].to_numpy(float)
    yhat = judge_all.loc[labelled].to_numpy(float)
    unlabelled = judge_all.drop(labelled).to_numpy(float)
    if len(unlabelled) == 0:
        raise ConfigError("every judged row is labelled: the human mean needs no correction",
                          field="labels")
    alpha = 1 - confidence
    low, high = ppi_mean_ci(y, yhat, unlabelled, alpha=alpha)
    c_low, c_high = classical_mean_ci(y, alpha=alpha)
    return {"mean": float(np.ravel(ppi_mean_pointestimate(y, yhat, unlabelled))[0]),
            "ci_low": float(np.ravel(low)[0]), "ci_high": float(np.ravel(high)[0]),
            "judge_mean": float(judge_all.mean()), "human_mean": float(y.mean()),
            "human_ci_low": float(np.ravel(c_low)[0]), "human_ci_high": float(np.ravel(c_high)[0]),
            "n_labelled": len(y), "n_unlabelled": len(unlabelled), "confidence": confidence}
