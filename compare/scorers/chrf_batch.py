"""Sentence chrF for many (hypothesis, reference) pairs at once, equal to sacrebleu's
`CHRF().sentence_score(hyp, [ref])`: character n-grams of orders 1–6 over the text with its
whitespace removed, beta 2, no word n-grams, sacrebleu's effective-order averaging — the tests
compare the two on many random and edge-case pairs.

Characters are Unicode code points (as Python slices strings); the clipped matches come from
`compare.scorers.ngrams.clipped_matches`, the F-score is sacrebleu's `_compute_f_score`
arithmetic (eps_smoothing off) on arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import pandas as pd

from compare.scorers.ngrams import clipped_matches

CHAR_ORDER: Final = 6
BETA: Final = 2


def _code_points(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    stripped = ["".join(t.split()) for t in texts]  # sacrebleu: whitespace is not scored
    lengths = np.fromiter(map(len, stripped), dtype="int64", count=len(stripped))
    joined = "".join(stripped).encode("utf-32-le", "surrogatepass")
    return np.frombuffer(joined, dtype=np.uint32).astype("int64"), lengths


def f_score(n_hyp: np.ndarray, n_ref: np.ndarray, n_match: np.ndarray) -> np.ndarray:
    """sacrebleu CHRF._compute_f_score (eps_smoothing=False) per row; inputs (rows, orders)."""
    factor = BETA**2
    both = (n_hyp > 0) & (n_ref > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(both, n_match / n_hyp, 0.0)
        recall = np.where(both, n_match / n_ref, 0.0)
        orders = both.sum(axis=1)
        avg_p = np.where(orders > 0, precision.sum(axis=1) / np.maximum(orders, 1), 0.0)
        avg_r = np.where(orders > 0, recall.sum(axis=1) / np.maximum(orders, 1), 0.0)
        score = (1 + factor) * avg_p * avg_r / (factor * avg_p + avg_r)
    return np.where(avg_p + avg_r > 0, 100 * score, 0.0)


def sentence_chrf_many(hypotheses: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """Sentence chrF (0–100) of each hypothesis against its reference."""
    n_rows = len(hypotheses)
    if not n_rows:
        return np.empty(0)
    ref_codes, ref_texts = pd.factorize(pd.Series(list(references), dtype="object"))
    hyp_tokens, hyp_len = _code_points(hypotheses)
    ref_tokens, ref_len_each = _code_points(list(ref_texts))
    ref_of_row = np.asarray(ref_codes, dtype="int64")
    matches = clipped_matches(np.concatenate([hyp_tokens, ref_tokens]),
                              np.concatenate([hyp_len, ref_len_each]), n_rows, ref_of_row,
                              CHAR_ORDER)
    orders = np.arange(CHAR_ORDER)[None, :]
    n_ref = np.maximum(ref_len_each[ref_of_row][:, None] - orders, 0)
    # sacrebleu counts the hypothesis's n-grams of an order only when the reference has some.
    n_hyp = np.where(n_ref > 0, np.maximum(hyp_len[:, None] - orders, 0), 0)
    return f_score(n_hyp, n_ref, matches)
