"""Answer-matching scorers on normalised text: exact, includes, f1 (SQuAD), regex, choice.

Normalisation is SQuAD's (the official v1.1/v2.0 evaluation script): lower case, drop ASCII
punctuation, drop the articles a/an/the, collapse whitespace. It runs in Python (str.translate
and `re`), not pandas' pyarrow string kernels, whose lower-casing and `\\b`/`\\s` follow
different Unicode rules and would disagree with the reference implementation.
"""

from __future__ import annotations

import functools
import re
import string
from collections import Counter
from collections.abc import Sequence
from typing import Final

import numpy as np

from compare.errors import ConfigError
from compare.prompts import Prompt
from compare.scorers.base import BatchScores, Score, Scorer, nan_score

_PUNCTUATION: Final = re.compile("[" + re.escape(string.punctuation) + "]")
_ARTICLES: Final = re.compile(r"\b(a|an|the)\b", re.UNICODE)


# exact, includes and f1 normalise the same outputs, and references repeat across deployments
# and repeats: a bounded cache makes each distinct text cost once.
@functools.lru_cache(maxsize=2**17)
def normalize_answer(text: str) -> str:
    """SQuAD answer normalisation: lower, no punctuation, no articles, single spaces."""
    return " ".join(_ARTICLES.sub(" ", _PUNCTUATION.sub("", text.lower())).split())


def _normalized(texts: Sequence[str | None]) -> list[str]:
    return [normalize_answer(t or "") for t in texts]


class Exact(Scorer):
    """1 when the normalised output equals the normalised reference, else 0."""

    name = "exact"
    kind = "binary"
    needs_reference = True

    def score_text(self, output: str, reference: str | None, prompt: Prompt | None) -> Score:
        return Score(float(normalize_answer(output) == normalize_answer(reference or "")))

    def score_batch(
        self, outputs: Sequence[str], references: Sequence[str | None],
        prompts: Sequence[Prompt | None],
    ) -> BatchScores:
        refs = _normalized(references)
        values = np.fromiter(
            (normalize_answer(o) == r for o, r in zip(outputs, refs, strict=True)),
            dtype="float64", count=len(outputs),
        )
        return BatchScores(values)


class Includes(Scorer):
    """1 when the reference appears in the output as whole words (after normalisation), else 0.

    "5" is not found in "15", nor "cat" in "concatenate". With `normalize=False` it is a plain
    case-sensitive substring test.
    """

    name = "includes"
    kind = "binary"
    needs_reference = True

    def __init__(self, *, normalize: bool = True, **kwargs: object) -> None:
        self.normalize = normalize
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def score_text(self, output: str, reference: str | None, prompt: Prompt | None) -> Score:
        return Score(float(self._found(output, reference or "")))

    def _found(self, output: str, reference: str) -> bool:
        if not self.normalize:
            return reference in output
        ref = normalize_answer(reference)
        return f" {ref} " in f" {normalize_answer(output)} "

    def score_batch(
        self, outputs: Sequence[str], references: Sequence[str | None],
        prompts: Sequence[Prompt | None],
    ) -> BatchScores:
        if not self.normalize:
            return super().score_batch(outputs, references, prompts)
        refs = [f" {r} " for r in _normalized(references)]
        values = np.fromiter(
            (r in f" {normalize_answer(o)} " for o, r in zip(outputs, refs, strict=True)),
            dtype="float64", count=len(outputs),
        )
        return BatchScores(values)


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 of two texts (normalised, whitespace tokens, multiset overlap).

    When either side has no tokens the score is 1 if both have none, else 0 (as SQuAD v2.0).
    """
    return _f1_tokens(normalize_answer(prediction).split(), normalize_answer(reference).split())


def _f1_tokens(pred: list[str], gold: list[str], gold_counts: Counter[str] | None = None
               ) -> float:
    if not pred or not gold:
        return float(pred == gold)
    # Σ min(count in pred, count in gold) over gold's tokens: Counter(pred) & Counter(gold)
    # without building a Counter per row (references are short, list.count is C).
    counts = gold_counts if gold_counts is not None else Counter(gold)
    same = sum(min(pred.count(token), n) for token, n in counts.items())
    if same == 0:
        return 0.0
    precision = same / len(pred)
    recall = same / len(gold)
    return 2 * precision * recall / (precision + recall)


class F1(Scorer):
    """SQuAD token F1 between output and reference, in [0, 1]."""

    name = "f1"
    kind = "continuous"
    needs_reference = True

    def score_text(self, output: str, reference: str | None, prompt: Prompt | None) -> Score:
        return Score(token_f1(output, reference or ""))

    def score_batch(
        self, outputs: Sequence[str], references: Sequence[str | None],
        prompts: Sequence[Prompt | None],
    ) -> BatchScores:
        cache: dict[str, tuple[list[str], Counter[str]]] = {}
        values = np.empty(len(outputs), dtype="float64")
        for i, (output, reference) in enumerate(zip(outputs, references, strict=True)):
            reference = reference or ""
            gold = cache.get(reference)
            if gold is None:
                tokens = normalize_answer(reference).split()
                gold = cache[reference] = (tokens, Counter(tokens))
            values[i] = _f1_tokens(normalize_answer(output).split(), *gold)
        return BatchScores(values)


class Regex(Scorer):
    """1 when `pattern` is found in the output (re.search), else 0.

    With a capture group, the captured text becomes `answer` (the group named `answer` when
    there is one, else the first group). With `match_reference=True` the score is instead
    whether that answer equals the reference after SQuAD normalisation.
    """

    name = "regex"
    kind = "binary"

    def __init__(
        self, pattern: str, *, flags: int = 0, match_reference: bool = False,
        **kwargs: object,
    ) -> None:
        try:
            self.pattern = re.compile(pattern, flags)
        except re.error as e:
            raise ConfigError(f"bad regular expression {pattern!r}: {e}", field="pattern") from None
        self.match_reference = match_reference
        self.needs_reference = match_reference
        if match_reference and self.pattern.groups == 0:
            raise ConfigError(
                f"regex {pattern!r} has no capture group to compare with the reference; "
                "wrap the answer part in (...)", field="pattern",
            )
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def score_text(self, output: str, reference: str | None, prompt: Prompt | None) -> Score:
        match = self.pattern.search(output)
        if match is None:
            return Score(0.0, answer=None)
        answer = None
        if self.pattern.groups:
            group: int | str = "answer" if "answer" in self.pattern.groupindex else 1
            answer = match.group(group)
        if self.match_reference:
            same = answer is not None and normalize_answer(answer) == normalize_answer(
                reference or ""
            )
            return Score(float(same), answer=answer)
        return Score(1.0, answer=answer)


# The letter of a multiple-choice answer, most explicit form first. Letters A–J.
_LABEL = r"(?i:answer|option|choice)(?:\s*(?i:is|:|=|-))*\s*(?i:option\s*)?[\(\[]?\**\s*"
_LABELLED = re.compile(
    # "Answer: B" (upper case letter on a word boundary) or "answer is b)" (lower case only
    # with a closing mark), so "the answer is a bit long" names no option.
    _LABEL + r"([A-J])\b|" + _LABEL + r"([a-j])(?:[\)\].:]|$)"
)
_ALONE = re.compile(r"[\s\*\(\[\"'`]*([A-Ja-j])[\s\*\)\]\"'`.:]*")
_LEADING = re.compile(r"[\s\*]*(?:\(([A-Ja-j])\)|([A-Ja-j])[\)\]:.])")


def extract_choice(text: str) -> str | None:
    """The option letter a text gives, upper case, or None.

    Accepts "B", "(B)", "b)", "B.", "**B**", "Answer: B", "The answer is (c)", "B) Paris".
    A lone article "A" in prose ("A cat is ...") is not a choice.
    """
    match = _ALONE.fullmatch(text)
    if match:
        return match.group(1).upper()
    low = text.lower()
    # The labelled pattern is slow to scan; most texts lack all three words.
    labelled = list(_LABELLED.finditer(text)) if any(
        word in low for word in ("answer", "option", "choice")) else []
    if labelled:
        last = labelled[-1]
        return (last.group(1) or last.group(2)).upper()
    match = _LEADING.match(text)
    if match:
        return (match.group(1) or match.group(2)).upper()
    return None


class Choice(Scorer):
    """Multiple choice: 1 when the output's option letter equals the reference's, else 0.

    `answer` holds the letter read from the output (None when none could be read, scoring 0).
    """

    name = "choice"
    kind = "binary"
    needs_reference = True

    def score_text(self, output: str, reference: str | None, prompt: Prompt | None) -> Score:
        expected = extract_choice(reference or "")
        if expected is None:
            return nan_score(f"reference {reference!r} names no option letter")
        got = extract_choice(output)
        return Score(float(got == expected), answer=got)
