"""exact, includes, f1, regex, choice, numeric: hand-worked cases, and exact/f1 against the
official SQuAD evaluation functions (transcribed below as the oracle) on generated text."""

from __future__ import annotations

import math
import re
import string
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compare.errors import ConfigError
from compare.scorers import (
    choice,
    exact,
    extract_choice,
    f1,
    includes,
    last_number,
    normalize_answer,
    numeric,
    regex,
)


# -- the SQuAD v2.0 evaluation script's functions, as published --------------------------------
def squad_normalize(s: str) -> str:
    def remove_articles(text: str) -> str:
        return re.sub(r"\b(a|an|the)\b", " ", text, flags=re.UNICODE)

    def white_space_fix(text: str) -> str:
        return " ".join(text.split())

    def remove_punc(text: str) -> str:
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def squad_f1(prediction: str, ground_truth: str) -> float:
    gold = squad_normalize(ground_truth).split()
    pred = squad_normalize(prediction).split()
    common = Counter(gold) & Counter(pred)
    num_same = sum(common.values())
    if len(gold) == 0 or len(pred) == 0:
        return float(gold == pred)
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred)
    recall = num_same / len(gold)
    return 2 * precision * recall / (precision + recall)


ANSWERS = st.text(
    alphabet=st.sampled_from(list("abcdefghij theTHE anAN .,!?'\"-()é\u00e9ß\t\n12")), max_size=40
)


@given(ANSWERS, ANSWERS)
@settings(max_examples=300, deadline=None)
def test_exact_and_f1_agree_with_the_squad_script(prediction: str, reference: str) -> None:
    assert normalize_answer(prediction) == squad_normalize(prediction)
    assert exact().score_text(prediction, reference, None).value == float(
        squad_normalize(prediction) == squad_normalize(reference))
    assert f1().score_text(prediction, reference, None).value == pytest.approx(
        squad_f1(prediction, reference), abs=1e-12)
    batch = f1().score_batch([prediction], [reference], [None]).values
    assert batch[0] == pytest.approx(squad_f1(prediction, reference), abs=1e-12)


def test_normalisation_by_hand() -> None:
    assert normalize_answer("  The  Eiffel-Tower!! ") == "eiffeltower"
    assert normalize_answer("An apple, a day") == "apple day"
    assert normalize_answer("theatre") == "theatre"  # an article only as a whole word


def test_exact_hand_cases() -> None:
    e = exact()
    assert e.score_text("Paris.", "paris", None).value == 1.0
    assert e.score_text("The answer is Paris", "Paris", None).value == 0.0
    got = e.score_batch(["the Paris", "Lyon", ""], ["Paris", "Paris", ""], [None] * 3).values
    assert got.tolist() == [1.0, 0.0, 1.0]


def test_f1_hand_worked() -> None:
    # pred tokens: [paris, is, capital] (the → removed), gold: [paris]: P=1/3, R=1, F=0.5
    assert f1().score_text("Paris is the capital", "Paris", None).value == pytest.approx(0.5)
    # duplicates count once each: pred [a1, a1], gold [a1]: P=1/2, R=1 → 2/3
    assert f1().score_text("x x", "x", None).value == pytest.approx(2 / 3)
    assert f1().score_text("", "", None).value == 1.0
    assert f1().score_text("", "Paris", None).value == 0.0


def test_includes_matches_whole_words_only() -> None:
    inc = includes()
    values = inc.score_batch(
        ["The capital is Paris.", "15 apples", "I think it's five", "New York City"],
        ["paris", "5", "five", "new york"], [None] * 4,
    ).values
    assert values.tolist() == [1.0, 0.0, 1.0, 1.0]
    raw = includes(normalize=False)
    assert raw.score_batch(["Paris!", "paris"], ["Paris", "Paris"], [None] * 2).values.tolist() \
        == [1.0, 0.0]


def test_regex_answer_capture_and_reference_match() -> None:
    plain = regex(r"Answer:\s*(\w+)")
    s = plain.score_text("Reasoning... Answer: Lima", None, None)
    assert (s.value, s.answer) == (1.0, "Lima")
    assert plain.score_text("no marker", None, None).value == 0.0
    named = regex(r"(?P<unit>km|mi)\s*=\s*(?P<answer>\d+)")
    assert named.score_text("km = 42", None, None).answer == "42"
    checked = regex(r"Answer:\s*(\w+)", match_reference=True)
    assert checked.needs_reference
    assert checked.score_text("Answer: paris", "Paris", None).value == 1.0
    assert checked.score_text("Answer: Lyon", "Paris", None).value == 0.0


def test_regex_errors_name_the_pattern() -> None:
    with pytest.raises(ConfigError, match="bad regular expression"):
        regex("(unclosed")
    with pytest.raises(ConfigError, match="no capture group"):
        regex("Answer", match_reference=True)


@pytest.mark.parametrize(("text", "letter"), [
    ("B", "B"), ("(B)", "B"), ("b)", "B"), ("B.", "B"), ("**C**", "C"), ("Answer: B", "B"),
    ("The answer is (c).", "C"), ("answer: d", "D"), ("B) Paris", "B"), ("(a) Venus", "A"),
    ("I pick option C because...", "C"), ("The correct answer is: **D**", "D"),
    ("A cat is a mammal", None), ("the answer is a bit unclear", None), ("Mercury", None),
    ("", None),
])
def test_choice_letter_extraction(text: str, letter: str | None) -> None:
    assert extract_choice(text) == letter


def test_choice_scores_against_the_reference_letter() -> None:
    c = choice()
    assert c.score_text("Answer: (B)", "B", None).value == 1.0
    assert c.score_text("C", "b) Mercury", None).value == 0.0
    miss = c.score_text("Mercury", "B", None)
    assert (miss.value, miss.answer) == (0.0, None)
    assert math.isnan(c.score_text("B", "Mercury", None).value)  # reference names no letter


@pytest.mark.parametrize(("text", "value"), [
    ("42", 42.0), ("-3", -3.0), ("it is −3", -3.0), ("+7", 7.0), ("1,234.5", 1234.5),
    ("1,000,000 people", 1e6), ("2/3", 2 / 3), ("-1/4", -0.25), (".5", 0.5),
    ("6.02e23", 6.02e23), ("1E-3", 1e-3), ("10-3", 3.0), ("x=5, then 12", 12.0),
    ("H2O", None), ("$1,200", 1200.0), ("50%", 50.0), ("5km", 5.0), ("1/0", None),
    ("Answer: 7.", 7.0), ("no digits", None), ("3.14.15", 3.14), ("1e999", None),
])
def test_last_number(text: str, value: float | None) -> None:
    got = last_number(text)
    if value is None:
        assert got is None
    else:
        assert got == pytest.approx(value, rel=1e-12)


def test_numeric_tolerances() -> None:
    strict = numeric()
    assert strict.score_text("The result is 1,234.", "1234", None).value == 1.0
    assert strict.score_text("0.67", "2/3", None).value == 0.0
    assert numeric(rel=0.01).score_text("0.67", "2/3", None).value == 1.0
    assert numeric(abs=0.5).score_text("about 9.6", "10", None).value == 1.0
    none = strict.score_text("I don't know", "10", None)
    assert (none.value, none.explanation) == (0.0, "no number in the output")
    assert math.isnan(strict.score_text("10", "Paris", None).value)
    assert strict.score_text("42", "42", None).answer == "42"
    with pytest.raises(ConfigError, match="rel tolerance"):
        numeric(rel=-1)


def test_batch_equals_row_by_row() -> None:
    outputs = ["Paris", "the paris", "5", "Answer: B", "x"]
    refs = ["Paris", "Paris", "5.0", "B", "y"]
    for scorer in (exact(), includes(), f1(), numeric(), choice()):
        batch = scorer.score_batch(outputs, refs, [None] * 5).values
        rows = np.array([scorer.score_text(o, r, None).value
                         for o, r in zip(outputs, refs, strict=True)])
        np.testing.assert_array_equal(batch, rows)
