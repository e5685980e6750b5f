"""Reference-overlap scorers: rouge (ROUGE-L F), chrf, bleu (sentence level), edit_similarity.

Each is defined by the library named in its docstring and checked against it in the tests; the
batch paths only change how the work is done:

- rouge: rouge-score's own tokenizer, the longest common subsequence from rapidfuzz's
  `LCSseq` over token lists (C++) instead of rouge-score's Python table; F = 2PR/(P+R).
- chrf: sacrebleu's sentence chrF (char order 6, beta 2, whitespace removed), computed for all
  rows at once with numpy (`compare.scorers.chrf_batch`).
- bleu: sacrebleu's sentence BLEU (effective order, exp smoothing), computed for all rows at
  once with numpy (`compare.scorers.bleu_batch`).
- edit_similarity: rapidfuzz `process.cpdist` with normalized Levenshtein similarity.

Identical (output, reference) pairs — repeats at temperature 0, answers replayed from a
checkpoint, one-word answers — are scored once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

from compare.prompts import Prompt
from compare.scorers.base import BatchScores, Score, Scorer


def unique_pairs(
    outputs: Sequence[str], references: Sequence[str | None]
) -> tuple[list[str], list[str], np.ndarray]:
    """The distinct (output, reference) pairs and, per row, the index of its pair."""
    if not len(outputs):
        return [], [], np.empty(0, dtype="int64")
    out_codes, out_values = pd.factorize(pd.Series(list(outputs), dtype="object"))
    ref_codes, ref_values = pd.factorize(
        pd.Series([r if r is not None else "" for r in references], dtype="object"))
    pair_codes, firsts = pd.factorize(out_codes.astype("int64") * len(ref_values) + ref_codes)
    first_out, first_ref = np.divmod(np.asarray(firsts, dtype="int64"), len(ref_values))
    return (out_values.take(first_out).tolist(), ref_values.take(first_ref).tolist(),
            pair_codes.astype("int64"))


# Pairs per vectorised step: the n-gram arrays of 100k pairs at once would take ~1 GB; 4096
# keeps a step near 50 MB at a few hundred characters per output, as fast (bench_scoring).
CHUNK: Final = 4096


def _in_chunks(
    function: Callable[[Sequence[str], Sequence[str]], np.ndarray], outputs: list[str],
    references: list[str],
) -> np.ndarray:
    parts = [function(outputs[i:i + CHUNK], references[i:i + CHUNK])
             for i in range(0, len(outputs), CHUNK)]
    return np.concatenate(parts) if parts else np.empty(0)


class _PairScorer(Scorer):
    """A reference-based scorer whose batch path scores distinct pairs with `_pairs`."""

    kind = "continuous"
    needs_reference = True

    def _pairs(self, outputs: list[str], references: list[str]) -> np.ndarray:
        raise NotImplementedError

    def score_text(self, output: str, reference: str | None, prompt: Prompt | None) -> Score:
        return Score(float(self._pairs([output], [reference or ""])[0]))

    def score_batch(
        self, outputs: Sequence[str], references: Sequence[str | None],
        prompts: Sequence[Prompt | None],
    ) -> BatchScores:
        if not len(outputs):
            return BatchScores(np.empty(0, dtype="float64"))
        uniq_out, uniq_ref, inverse = unique_pairs(outputs, references)
        values = np.asarray(self._pairs(uniq_out, uniq_ref), dtype="float64")
        return BatchScores(values[inverse])


class Rouge(_PairScorer):
    """ROUGE-L F-measure (rouge-score's `rougeL`, in [0, 1]). `stemmer=True` applies the Porter
    stemmer to words over 3 letters, as rouge-score's `use_stemmer`.

    rouge-score's tokenizer keeps only [a-z0-9] runs: text in other scripts has no tokens and
    scores 0. Neither the tokenizer nor the stemmer downloads anything.
    """

    name = "rouge"

    def __init__(self, *, stemmer: bool = False, **kwargs: Any) -> None:
        self.stemmer = stemmer
        super().__init__(**kwargs)

    def _tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        if self.stemmer:
            # rouge_score.tokenizers imports nltk (about a second): only when stemming.
            from rouge_score.tokenizers import DefaultTokenizer

            return [DefaultTokenizer(use_stemmer=True).tokenize(t) for t in texts]
        return tokenize_many(texts)

    def _pairs(self, outputs: list[str], references: list[str]) -> np.ndarray:
        return _in_chunks(self._rouge_l, outputs, references)

    def _rouge_l(self, outputs: Sequence[str], references: Sequence[str]) -> np.ndarray:
        from rapidfuzz.distance import LCSseq
        from rapidfuzz.process import cpdist

        distinct = list(dict.fromkeys(references))
        ref_tokens = dict(zip(distinct, self._tokenize(distinct), strict=True))
        refs = [ref_tokens[r] for r in references]
        hyps = self._tokenize(outputs)
        lcs = cpdist(hyps, refs, scorer=LCSseq.similarity, dtype=np.int64)
        hyp_len = np.fromiter(map(len, hyps), dtype="float64", count=len(hyps))
        ref_len = np.fromiter(map(len, refs), dtype="float64", count=len(refs))
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = lcs / hyp_len
            recall = lcs / ref_len
            f = 2 * precision * recall / (precision + recall)
        # rouge-score: 0 when either side has no tokens or nothing is shared.
        return np.where((hyp_len > 0) & (ref_len > 0) & (lcs > 0), f, 0.0)


_NOT_ALNUM_OR_NEWLINE: Final = re.compile(r"[^a-z0-9\n]+")


def tokenize_many(texts: Sequence[str]) -> list[list[str]]:
    """rouge-score's tokenizer without stemming (`rouge_score.tokenize.tokenize(t, None)`) for
    many texts in one pass: lower case, runs of characters other than a-z 0-9 become spaces,
    split on whitespace. Its final filter (tokens matching ^[a-z0-9]+$) keeps every token
    such a split can give. The texts are joined by newlines (each text's own newlines become
    spaces first, as the tokenizer would make them) and split back after."""
    if not texts:
        return []
    joined = "\n".join(t.replace("\n", " ") for t in texts).lower()
    return [segment.split() for segment in _NOT_ALNUM_OR_NEWLINE.sub(" ", joined).split("\n")]


class Chrf(_PairScorer):
    """Sentence chrF on a 0–100 scale (sacrebleu `CHRF().sentence_score`: character n-grams up
    to 6, beta 2, whitespace ignored), computed for all rows at once with numpy
    (`compare.scorers.chrf_batch`)."""

    name = "chrf"

    def _pairs(self, outputs: list[str], references: list[str]) -> np.ndarray:
        from compare.scorers.chrf_batch import sentence_chrf_many

        return _in_chunks(sentence_chrf_many, outputs, references)


class Bleu(_PairScorer):
    """Sentence BLEU on a 0–100 scale (sacrebleu `sentence_bleu`: 13a tokenizer, exp smoothing,
    effective order)."""

    name = "bleu"

    def _pairs(self, outputs: list[str], references: list[str]) -> np.ndarray:
        from compare.scorers.bleu_batch import sentence_bleu_many

        return _in_chunks(sentence_bleu_many, outputs, references)


class EditSimilarity(_PairScorer):
    """1 − normalized Levenshtein distance between output and reference (rapidfuzz
    `Levenshtein.normalized_similarity`), in [0, 1]; case and spacing count."""

    name = "edit_similarity"

    def _pairs(self, outputs: list[str], references: list[str]) -> np.ndarray:
        from rapidfuzz.distance import Levenshtein
        from rapidfuzz.process import cpdist

        return cpdist(outputs, references, scorer=Levenshtein.normalized_similarity,
                      dtype=np.float64)
