"""The `numeric` scorer: the last number in the output against the reference, with tolerance.

What counts as a number (decided here, documented for users):

- integers and decimals, signed: "42", "-3", "+7", "3.14", ".5", "−3" (Unicode minus);
- thousands separators with commas in groups of three: "1,234.5" → 1234.5 ("1,23" is 1 and 23);
- scientific notation: "6.02e23", "1E-3";
- simple fractions of integers: "2/3" → 0.666…, "-1/4" → −0.25 (a zero denominator is no number);
- a sign counts only when it does not follow a letter or digit, so "10-3" ends in 3 (not −3),
  and "gpt-4" reads 4; digits glued after a letter ("H2O", "A4") are not numbers;
- percent, currency and units are ignored: "50%" → 50, "$1,200" → 1200, "5km" → 5.

The reference is read the same way (its last number). The score is 1 when
`math.isclose(answer, reference, rel_tol=rel, abs_tol=abs)`, 0 when the output holds no number;
NaN (with an explanation) when the reference holds none.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

from compare.errors import ConfigError
from compare.prompts import Prompt
from compare.scorers.base import Score, Scorer, nan_score

NUMBER: Final = re.compile(
    r"(?<![\w.])"  # not glued to a word, a digit or a decimal point before it
    r"(?P<sign>[-+\u2212]?)"
    r"(?:(?P<int>\d{1,3}(?:,\d{3})+(?!\d)|\d+)"
    r"(?:(?P<frac>\.\d+)|\s*/\s*(?P<den>\d+)(?![\d.]))?"
    r"|(?P<bare>\.\d+))"
    r"(?P<exp>[eE][-+]?\d+)?"
)


def _value(match: re.Match[str]) -> float | None:
    integer, den = match.group("int"), match.group("den")
    frac = match.group("frac") or match.group("bare")
    negative = match.group("sign") in ("-", "\u2212")
    exp = match.group("exp") or ""
    try:
        if den is not None:
            if int(den) == 0:
                return None
            value = int(integer.replace(",", "")) / int(den) * 10.0 ** int(exp[1:] or 0)
        else:
            value = float((integer or "0").replace(",", "") + (frac or "") + exp)
    except (OverflowError, ValueError):  # 1e999/3, or past Python's int digit limit
        return None
    return -value if negative else value


def last_number(text: str) -> float | None:
    """The last number in `text` (see the module doc for what counts), or None."""
    for match in reversed(list(NUMBER.finditer(text))):
        value = _value(match)
        if value is not None and math.isfinite(value):
            return value
    return None


class Numeric(Scorer):
    """1 when the output's last number equals the reference's within `rel`/`abs` tolerance.

    Defaults (rel=1e-6, abs=0) forgive float noise only: "0.67" is not 2/3 unless rel≈0.01.
    `answer` holds the number read from the output.
    """

    name = "numeric"
    kind = "binary"
    needs_reference = True

    def __init__(self, *, rel: float = 1e-6, abs: float = 0.0, **kwargs: Any) -> None:
        for label, value in (("rel", rel), ("abs", abs)):
            if not isinstance(value, int | float) or not value >= 0 or math.isinf(value):
                raise ConfigError(f"numeric {label} tolerance must be a number ≥ 0, got {value!r}",
                                  field=label)
        self.rel = float(rel)
        self.abs = float(abs)
        self._references: dict[str, float | None] = {}
        super().__init__(**kwargs)

    def score_text(self, output: str, reference: str | None, prompt: Prompt | None) -> Score:
        reference = reference or ""
        expected = self._references.get(reference, math.nan)
        if expected is not None and math.isnan(expected):
            expected = self._references[reference] = last_number(reference)
        if expected is None:
            return nan_score(f"reference {reference[:80]!r} holds no number")
        got = last_number(output)
        if got is None:
            return Score(0.0, answer=None, explanation="no number in the output")
        same = math.isclose(got, expected, rel_tol=self.rel, abs_tol=self.abs)
        return Score(float(same), answer=_show(got))


def _show(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
