"""bradley_terry(): deployment strengths from pairwise preferences (LLM judge and/or humans).

The Bradley–Terry model P(i beats j) = 1 / (1 + exp(−(β_i − β_j))) is fitted as a binomial GLM
(statsmodels) on a ±1 design, one row per pair of deployments; a tie counts as half a win for each
side. Strengths are exp(β) normalised to geometric mean 1, ratings are on the Elo scale
1000 + 400·log10(strength). Intervals come from a seeded bootstrap over prompts (every
comparison of a resampled prompt comes along). When one deployment (or group) won or lost every
comparison the maximum-likelihood strengths are infinite; then one virtual tie per pair of
deployments is added, which pulls strengths slightly toward each other (reported in attrs).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from compare.errors import ConfigError
from compare.stats.frames import require_columns

SOURCES: Final = ("judge", "human", "both")
JUDGE_COLUMNS: Final = ("prompt_id", "repeat", "a", "b", "winner", "verdict_ab", "verdict_ba")
HUMAN_COLUMNS: Final = ("prompt_id", "repeat", "left", "right", "vote")
JUDGE_SCORE: Final = {"a": 1.0, "b": 0.0, "tie": 0.5}
# both_bad is a tie for strength purposes: neither answer was preferred.
HUMAN_SCORE: Final = {"left": 1.0, "right": 0.0, "tie": 0.5, "both_bad": 0.5}
ELO_SCALE: Final = 400 / math.log(10)
ELO_ANCHOR: Final = 1000.0
N_BOOT: Final = 1000
SEED: Final = 20241104


def _scored(frame: pd.DataFrame, first: str, second: str, outcome: str,
            scores: dict[str, float], what: str) -> tuple[pd.DataFrame, int]:
    """(prompt_id, first, second, score) rows with a known outcome, and how many had none."""
    known = frame[outcome].notna()
    bad = set(frame.loc[known, outcome].astype(str)) - set(scores)
    if bad:
        raise ConfigError(
            f"{what} column {outcome!r} has value(s) {', '.join(sorted(bad))}; "
            f"expected {', '.join(scores)} (or None when unparsed)",
            field=outcome,
        )
    rows = frame[known]
    out = pd.DataFrame({
        "prompt_id": rows["prompt_id"].astype(str).to_numpy(),
        "first": rows[first].astype(str).to_numpy(),
        "second": rows[second].astype(str).to_numpy(),
        "score": rows[outcome].astype(str).map(scores).to_numpy(dtype=float),
    })
    return out, int((~known).sum())


def judge_comparisons(judge: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Judge verdicts (winner a / b / tie; None when unparsed) as scored comparisons."""
    require_columns(judge, JUDGE_COLUMNS, "the judge frame")
    return _scored(judge, "a", "b", "winner", JUDGE_SCORE, "the judge frame")


def human_comparisons(ratings: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Human votes (left / right / tie / both_bad, both_bad counting as a tie) as comparisons."""
    require_columns(ratings, HUMAN_COLUMNS, "the human ratings frame")
    return _scored(ratings, "left", "right", "vote", HUMAN_SCORE, "the human ratings frame")


def position_bias(judge: pd.DataFrame) -> dict[str, Any]:
    """Share of non-tie order-level verdicts preferring the first-shown answer, vs 0.5."""
    require_columns(judge, ("verdict_ab", "verdict_ba"), "the judge frame")
    verdicts = pd.concat([judge["verdict_ab"], judge["verdict_ba"]]).dropna().astype(str)
    decided = verdicts[verdicts.isin(["first", "second"])]
    n, k = len(decided), int((decided == "first").sum())
    if n == 0:
        return {"share_first": math.nan, "n": 0, "p_value": math.nan, "ci_low": math.nan,
                "ci_high": math.nan, "note": "no non-tie verdict to measure position bias on"}
    res = stats.binomtest(k, n, 0.5)
    ci = res.proportion_ci(confidence_level=0.95, method="exact")
    return {"share_first": k / n, "n": n, "p_value": float(res.pvalue),
            "ci_low": float(ci.low), "ci_high": float(ci.high), "note": ""}


def _pair_table(first: np.ndarray, second: np.ndarray, score: np.ndarray, weight: np.ndarray,
                k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per unordered pair i < j: (i, j, score of i summed, comparisons)."""
    swap = first > second
    lo, hi = np.where(swap, second, first), np.where(swap, first, second)
    s = np.where(swap, 1 - score, score)
    key = lo * k + hi
    wins = np.bincount(key, weights=s * weight, minlength=k * k)
    n = np.bincount(key, weights=weight, minlength=k * k)
    keep = n > 0
    idx = np.flatnonzero(keep)
    return idx // k, idx % k, wins[keep], n[keep]


def _separated(i: np.ndarray, j: np.ndarray, wins: np.ndarray, n: np.ndarray, k: int) -> bool:
    """True when finite strengths do not exist: 'beat at least partly' is not strongly connected."""
    src = np.concatenate([i[wins > 0], j[wins < n]])
    dst = np.concatenate([j[wins > 0], i[wins < n]])
    graph = coo_matrix((np.ones(len(src)), (src, dst)), shape=(k, k))
    return connected_components(graph, directed=True, connection="strong")[0] > 1


def fit_log_strengths(i: np.ndarray, j: np.ndarray, wins: np.ndarray, n: np.ndarray,
                      k: int) -> tuple[np.ndarray, bool]:
    """Centred β for k deployments (binomial GLM, ±1 design, first is the reference)."""
    prior = _separated(i, j, wins, n, k)
    if prior:
        every = np.array([(p, q) for p in range(k) for q in range(p + 1, k)]).reshape(-1, 2)
        i, j = np.concatenate([i, every[:, 0]]), np.concatenate([j, every[:, 1]])
        wins, n = np.concatenate([wins, np.full(len(every), 0.5)]), np.concatenate(
            [n, np.ones(len(every))])
    design = np.zeros((len(i), k))
    design[np.arange(len(i)), i] = 1.0
    design[np.arange(len(i)), j] = -1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sm.GLM(wins / n, design[:, 1:], family=sm.families.Binomial(), var_weights=n).fit()
    beta = np.concatenate([[0.0], np.asarray(fit.params, dtype=float)])
    return beta - beta.mean(), prior


def _codes(comparisons: pd.DataFrame, names: Sequence[str]) -> tuple[np.ndarray, ...]:
    lookup = {name: code for code, name in enumerate(names)}
    first = comparisons["first"].map(lookup).to_numpy(dtype=int)
    second = comparisons["second"].map(lookup).to_numpy(dtype=int)
    prompt = pd.factorize(comparisons["prompt_id"])[0]
    return first, second, comparisons["score"].to_numpy(dtype=float), prompt


def _bootstrap(first: np.ndarray, second: np.ndarray, score: np.ndarray, prompt: np.ndarray,
               k: int, n_boot: int) -> np.ndarray:
    """n_boot × k ratings from resampling whole prompts (NaN where a deployment drops out)."""
    rng = np.random.default_rng(SEED)
    n_prompts = int(prompt.max()) + 1
    out = np.full((n_boot, k), np.nan)
    for r in range(n_boot):
        times = np.bincount(rng.integers(0, n_prompts, n_prompts), minlength=n_prompts)
        weight = times[prompt].astype(float)
        i, j, wins, n = _pair_table(first, second, score, weight, k)
        present = np.unique(np.concatenate([i, j]))
        if len(present) < 2:
            continue
        remap = np.full(k, -1)
        remap[present] = np.arange(len(present))
        beta, _ = fit_log_strengths(remap[i], remap[j], wins, n, len(present))
        out[r, present] = ELO_ANCHOR + ELO_SCALE * beta
    return out


def _gather(source: str, judge: pd.DataFrame | None,
            ratings: pd.DataFrame | None) -> tuple[pd.DataFrame, dict[str, Any]]:
    if source not in SOURCES:
        raise ConfigError(f"source={source!r}; choose one of {', '.join(SOURCES)}", field="source")
    parts, info = [], {"source": source, "unparsed": 0}
    if source in ("judge", "both"):
        if judge is None:
            raise ConfigError(f"source={source!r} needs judge=<frame with columns "
                              f"{', '.join(JUDGE_COLUMNS)}>", field="judge")
        scored, unparsed = judge_comparisons(judge)
        parts.append(scored)
        info.update(unparsed=unparsed, position_bias=position_bias(judge))
    if source in ("human", "both"):
        if ratings is None:
            raise ConfigError(f"source={source!r} needs ratings=<frame with columns "
                              f"{', '.join(HUMAN_COLUMNS)}>", field="ratings")
        scored, unparsed = human_comparisons(ratings)
        parts.append(scored)
        info["unparsed"] += unparsed
    comparisons = pd.concat(parts, ignore_index=True)
    comparisons = comparisons[comparisons["first"] != comparisons["second"]]
    return comparisons, info


def _tallies(comparisons: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    sides = pd.concat([
        pd.DataFrame({"deployment": comparisons["first"], "score": comparisons["score"]}),
        pd.DataFrame({"deployment": comparisons["second"], "score": 1 - comparisons["score"]}),
    ])
    grouped = sides.groupby("deployment")["score"]
    out = pd.DataFrame({
        "comparisons": grouped.size(),
        "wins": grouped.agg(lambda s: int((s == 1).sum())),
        "losses": grouped.agg(lambda s: int((s == 0).sum())),
        "ties": grouped.agg(lambda s: int((s == 0.5).sum())),
        "win_rate": grouped.mean(),  # ties as half a win
    })
    return out.reindex(list(names))


def bradley_terry(
    source: str = "judge",
    judge: pd.DataFrame | None = None,
    ratings: pd.DataFrame | None = None,
    *,
    level: float = 0.95,
    n_boot: int = N_BOOT,
    order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per deployment (the index): strength, rating (Elo scale), its bootstrap interval, counts.

    `judge` is the judge's pairwise frame (prompt_id, repeat, a, b, winner, verdict_ab,
    verdict_ba, judge): a win counts only when both presentation orders agreed, which is how
    `winner` was derived; None (unparsed) is skipped. `ratings` is the human frame (prompt_id,
    repeat, left, right, vote, note, rated_at); vote both_bad counts as a tie. Columns:
    strength, rating, rating_ci_low, rating_ci_high (seeded bootstrap over prompts, n_boot
    resamples, percentile interval at `level`), comparisons, wins, losses, ties, win_rate (ties
    as half). attrs: source, unparsed, position_bias (judge: share of decided order-level
    verdicts preferring the first-shown answer, binomial test vs 0.5), prior (a note when a
    virtual tie per pair was needed).
    """
    comparisons, info = _gather(source, judge, ratings)
    seen = pd.unique(comparisons[["first", "second"]].to_numpy().ravel()).tolist()
    names = [d for d in (order or []) if d in seen] + [d for d in seen if d not in (order or [])]
    if len(names) < 2:
        raise ConfigError(
            f"Bradley–Terry needs decided comparisons between at least two deployments; the "
            f"{source} data have {len(comparisons)} usable comparison(s) ({info['unparsed']} "
            "unparsed)"
        )
    first, second, score, prompt = _codes(comparisons, names)
    k = len(names)
    i, j, wins, n = _pair_table(first, second, score, np.ones(len(score)), k)
    beta, prior = fit_log_strengths(i, j, wins, n, k)
    boot = _bootstrap(first, second, score, prompt, k, n_boot)
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(boot, [tail, 100 - tail], axis=0)
    table = pd.DataFrame({"strength": np.exp(beta), "rating": ELO_ANCHOR + ELO_SCALE * beta,
                          "rating_ci_low": low, "rating_ci_high": high}, index=names)
    table = table.join(_tallies(comparisons, names))
    table.index.name = "deployment"
    info["prior"] = ("one virtual tie per pair added: some deployment won or lost every "
                     "comparison, so unshrunk strengths would be infinite") if prior else ""
    table.attrs.update(info, level=level, n_boot=n_boot)
    return table.sort_values("rating", ascending=False)
