"""Clipped n-gram matches for many (hypothesis, reference) pairs at once, with numpy and
pandas' hash factorization: the shared core of the batch BLEU (word n-grams) and chrF
(character n-grams).

For each pair and order n it gives Σ over n-grams g of min(count of g in the hypothesis,
count of g in its reference) — what sacrebleu computes per sentence with Counters.

Only n-grams of the reference can match, and an n-gram occurs in the reference only if its
first n−1 items do: so each order looks only at the hypothesis positions whose (n−1)-gram was
found in the reference. Text that shares little with its reference drops out after an order
or two. N-gram identities are exact (dense ids built order by order), never hashes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _first_index(codes: np.ndarray, n_unique: int) -> np.ndarray:
    """For each code 0..n_unique−1, the index of its first occurrence in `codes`."""
    first = np.empty(n_unique, dtype="int64")
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    return first


def clipped_matches(
    tokens: np.ndarray, lengths: np.ndarray, n_hyp: int, ref_of_hyp: np.ndarray,
    max_order: int,
) -> np.ndarray:
    """Matches per hypothesis and order, shape (n_hyp, max_order).

    `tokens`: integer items of all rows back to back — the n_hyp hypotheses first, then the
    distinct references; `lengths`: items per row; `ref_of_hyp`: each hypothesis's reference
    (0-based among the references).
    """
    matches = np.zeros((n_hyp, max_order), dtype="int64")
    if not len(tokens):
        return matches
    tokens = tokens.astype("int64", copy=False)
    width = int(tokens.max()) + 1
    row = np.repeat(np.arange(len(lengths)), lengths)
    end = np.repeat(np.cumsum(lengths), lengths)
    alive = np.arange(len(tokens))  # positions still able to start a matching n-gram
    ids = tokens
    for n in range(1, max_order + 1):
        if n > 1:
            fits = alive + n - 1 < end[alive]
            alive, ids = alive[fits], ids[fits]
            if not len(alive):
                break
            codes, _ = pd.factorize(ids * width + tokens[alive + n - 1])
            ids = codes.astype("int64")
        span = int(ids.max()) + 1 if len(ids) else 1
        is_hyp = row[alive] < n_hyp
        hyp_pos, hyp_ids = alive[is_hyp], ids[is_hyp]
        ref_pos, ref_ids = alive[~is_hyp], ids[~is_hyp]
        if not len(hyp_pos) or not len(ref_pos):
            break
        ref_codes, ref_keys = pd.factorize((row[ref_pos] - n_hyp) * span + ref_ids)
        ref_counts = np.bincount(ref_codes)
        hyp_rows = row[hyp_pos]
        where = pd.Index(ref_keys).get_indexer(ref_of_hyp[hyp_rows] * span + hyp_ids)
        found = where >= 0
        hyp_codes, hyp_keys = pd.factorize(hyp_rows[found] * span + hyp_ids[found])
        hyp_counts = np.bincount(hyp_codes)
        ref_count = ref_counts[where[found][_first_index(hyp_codes, len(hyp_keys))]]
        matches[:, n - 1] = np.bincount(
            np.asarray(hyp_keys, dtype="int64") // span,
            weights=np.minimum(hyp_counts, ref_count), minlength=n_hyp,
        ).astype("int64")
        alive = np.concatenate([hyp_pos[found], ref_pos])
        ids = np.concatenate([hyp_ids[found], ref_ids])
    return matches
