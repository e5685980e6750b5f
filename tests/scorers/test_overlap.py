"""rouge, chrf, bleu, edit_similarity against the libraries they are defined by, called
directly (rouge-score, sacrebleu, rapidfuzz), on hand-worked, edge and generated pairs."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz.distance import Levenshtein
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU, CHRF

from compare.scorers import bleu, chrf, edit_similarity, rouge
from compare.scorers.bleu_batch import sentence_bleu_many
from compare.scorers.overlap import unique_pairs

EDGE_PAIRS = [
    ("", ""), ("", "a"), ("a", ""), ("a b c", "a b c"), ("The cat sat.", "the cat sat"),
    ("x-\ny", "xy"), ("3.5, 4", "3.5 , 4"), ("<skipped> &amp; ok.", "& ok ."),
    (" lead  trail \n", "lead trail"), ("1-2 a,b c.d", "1 - 2"), ("é è. ü,", "é è"),
    ("東京 は 首都", "東京"), ("(hi) [there] {you}", "hi there you"), ("a.,b", "a . , b"),
    ("word " * 30, "word word"), ("...", "."), ("1,000.5", "1,000.5"), ("\t", " "),
]
WORDS = st.text(alphabet=st.sampled_from(list("abcAB12 .,-'()&;\n<>é")), max_size=30)


def _random_pairs(n: int, seed: int = 3) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    vocab = ["the", "cat", "sat", "on", "mat", "Paris", "is", "3.5", "1,000", "a", "-", ".",
             ",", "(x)", "é", "don't", "&", "x-y"]
    return [(" ".join(rng.choices(vocab, k=rng.randint(0, 25))),
             " ".join(rng.choices(vocab, k=rng.randint(1, 8)))) for _ in range(n)]


def _batch(scorer, pairs):
    return scorer.score_batch([h for h, _ in pairs], [r for _, r in pairs],
                              [None] * len(pairs)).values


def test_rouge_equals_rouge_score() -> None:
    pairs = EDGE_PAIRS + _random_pairs(400)
    for stem in (False, True):
        oracle = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=stem)
        want = [oracle.score(r, h)["rougeL"].fmeasure for h, r in pairs]  # (target, prediction)
        np.testing.assert_allclose(_batch(rouge(stemmer=stem), pairs), want, atol=1e-12)


def test_rouge_hand_worked() -> None:
    # tokens: hyp [the, cat, sat, on, mat], ref [the, cat, was, on, the, mat]; LCS the cat on
    # mat = 4: P = 4/5, R = 4/6, F = 2PR/(P+R) = 8/11
    value = rouge().score_text("The cat sat on mat", "the cat was on the mat", None).value
    assert value == pytest.approx(8 / 11)


def test_chrf_equals_sacrebleu() -> None:
    pairs = EDGE_PAIRS + _random_pairs(400)
    metric = CHRF()
    want = [metric.sentence_score(h, [r]).score for h, r in pairs]
    np.testing.assert_allclose(_batch(chrf(), pairs), want, atol=1e-9)


def test_bleu_equals_sacrebleu_sentence_bleu() -> None:
    pairs = EDGE_PAIRS + _random_pairs(600)
    metric = BLEU(effective_order=True)
    want = [metric.sentence_score(h, [r]).score for h, r in pairs]
    np.testing.assert_allclose(_batch(bleu(), pairs), want, atol=1e-9)


@given(st.lists(st.tuples(WORDS, WORDS), min_size=1, max_size=8))
@settings(max_examples=200, deadline=None)
def test_bleu_batch_equals_sacrebleu_on_generated_text(pairs: list[tuple[str, str]]) -> None:
    metric = BLEU(effective_order=True)
    want = [metric.sentence_score(h, [r]).score for h, r in pairs]
    got = sentence_bleu_many([h for h, _ in pairs], [r for _, r in pairs])
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_bleu_hand_worked() -> None:
    # identical 4+ token sentences: every precision 100 %, no brevity penalty → 100
    assert bleu().score_text("a b c d e", "a b c d e", None).value == pytest.approx(100.0)
    # one token matching of two, reference longer: p1 = 1/2 → with effective order 2 and the
    # second order smoothed to 100/(2·1): exp((ln 50 + ln 50)/2) = 50, BP = exp(1 − 3/2)
    value = bleu().score_text("a x", "a b c", None).value
    assert value == pytest.approx(50 * np.exp(1 - 3 / 2))


def test_edit_similarity_equals_rapidfuzz_and_hand_case() -> None:
    pairs = EDGE_PAIRS + _random_pairs(200)
    want = [Levenshtein.normalized_similarity(h, r) for h, r in pairs]
    np.testing.assert_allclose(_batch(edit_similarity(), pairs), want, atol=1e-12)
    # kitten → sitting: 3 edits over the longer length 7
    assert edit_similarity().score_text("kitten", "sitting", None).value == pytest.approx(4 / 7)


def test_identical_pairs_are_scored_once_and_mapped_back() -> None:
    outputs, refs, inverse = unique_pairs(["a", "b", "a", "a"], ["x", "x", "x", None])
    assert (outputs, refs, inverse.tolist()) == (["a", "b", "a"], ["x", "x", ""], [0, 1, 0, 2])
    values = _batch(edit_similarity(), [("a", "a"), ("b", "a"), ("a", "a")])
    assert values.tolist() == [1.0, 0.0, 1.0]


def test_rouge_scorer_works_offline_without_nltk_data(tmp_path, monkeypatch) -> None:
    import nltk

    # An empty NLTK data path: any lookup of downloaded data would raise LookupError.
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    assert rouge(stemmer=True).score_text("running cats", "the cat runs", None).value > 0


@given(st.lists(st.text(max_size=40), max_size=6))
@settings(max_examples=300, deadline=None)
def test_rouge_tokenizer_for_many_equals_rouge_scores(texts: list[str]) -> None:
    from rouge_score.tokenize import tokenize

    from compare.scorers.overlap import tokenize_many

    assert tokenize_many(texts) == [tokenize(t, None) for t in texts]


@given(st.lists(st.tuples(WORDS, WORDS), min_size=1, max_size=8))
@settings(max_examples=200, deadline=None)
def test_chrf_batch_equals_sacrebleu_on_generated_text(pairs: list[tuple[str, str]]) -> None:
    from compare.scorers.chrf_batch import sentence_chrf_many

    metric = CHRF()
    want = [metric.sentence_score(h, [r]).score for h, r in pairs]
    got = sentence_chrf_many([h for h, _ in pairs], [r for _, r in pairs])
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_chrf_hand_worked() -> None:
    # "ab" vs "ab": every order with n-grams on both sides (1, 2) has P = R = 1 → 100
    assert chrf().score_text("a b", "ab", None).value == pytest.approx(100.0)
    # "ab" vs "ac": order 1: 1 match of 2 → P = R = 1/2; order 2: 0 of 1 → P = R = 0.
    # averages P = R = 1/4 → F2 = 5·P·R / (4P + R) = 1/4 → 25
    assert chrf().score_text("ab", "ac", None).value == pytest.approx(25.0)
