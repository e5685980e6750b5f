"""Reading a judge model's reply: a 1–5 grade, PASS/FAIL, or which of two responses won.

Judges are asked for one exact format, but small or chatty models vary it: markdown bold,
"4/5", JSON, a verdict in the middle of the reasoning. Each parser tries the most explicit form
first and returns None when the reply is ambiguous (a wrong grade is worse than none: the caller
counts it as unparsed and keeps the reply).
"""

from __future__ import annotations

import json
import re
from typing import Any, Final, Literal

Verdict = Literal["first", "second", "tie"]

_JSON_OBJECT: Final = re.compile(r"\{[^{}]*\}")
_GRADE_KEYS: Final = ("grade", "score", "rating")
_VERDICT_KEYS: Final = ("verdict", "result", "pass", "passed", "decision")
_WINNER_KEYS: Final = ("winner", "verdict", "better", "choice", "preferred")

_LABELLED_GRADE: Final = re.compile(
    r"(?i:grade|score|rating)\s*[:=]?\s*(?:is\s*)?\**\s*(\d+(?:\.\d+)?)\s*\**\s*"
    r"(?:/\s*(\d+)|out\s+of\s+(\d+))?"
)
_OUT_OF: Final = re.compile(r"\**(\d+(?:\.\d+)?)\**\s*(?:/|out\s+of)\s*\**(\d+)\**", re.I)
_LONE_NUMBER: Final = re.compile(r"[\s*#\[\(]*(\d+(?:\.\d+)?)[\s*\]\).]*")

_LABELLED_VERDICT: Final = re.compile(
    r"(?i:verdict|result|grade|decision|answer|final)\s*[:=]?\s*\**\s*(?P<v>pass|fail)\b",
    re.I,
)
_PASS_FAIL: Final = re.compile(r"\b(pass|fail)(?:ed|es|ing)?\b", re.I)

_BRACKETED: Final = re.compile(r"\[\[\s*(A|B|C|tie)\s*\]\]", re.I)
_LABELLED_WINNER: Final = re.compile(
    r"(?i:winner|verdict|better(?:\s+response)?|preferred|choice)\s*(?:is)?\s*[:=]?\s*\**\s*"
    r"(?:response\s+|answer\s+)?\(?(?P<w>A|B|tie|draw|equal|neither)\b",
    re.I,
)


def _json_objects(text: str) -> list[dict[str, Any]]:
    found = []
    for match in _JSON_OBJECT.finditer(text):
        try:
            value = json.loads(match.group(0))
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append({str(k).lower(): v for k, v in value.items()})
    return found


def _in_scale(raw: str | float | int, low: int, high: int, out_of: str | None = None) -> int | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    if out_of is not None and int(out_of) != high:
        return None  # "8/10" on a 1–5 scale: a different scale, not a grade of 8
    if value != int(value) or not low <= value <= high:
        return None
    return int(value)


def parse_grade(text: str | None, low: int = 1, high: int = 5) -> int | None:
    """The integer grade in [low, high] a reply gives, or None.

    Accepts {"grade": 4} (also score/rating), "Grade: 4", "Score: **4**/5", "**4**/5",
    "4 out of 5", or a reply that is only the number. With several labelled grades the last wins
    (models restate their conclusion at the end).
    """
    if not text:
        return None
    for obj in reversed(_json_objects(text)):
        for key in _GRADE_KEYS:
            if key in obj and not isinstance(obj[key], bool):
                return _in_scale(obj[key], low, high)
    labelled = list(_LABELLED_GRADE.finditer(text))
    if labelled:
        last = labelled[-1]
        return _in_scale(last.group(1), low, high, last.group(2) or last.group(3))
    out_of = list(_OUT_OF.finditer(text))
    if out_of:
        return _in_scale(out_of[-1].group(1), low, high, out_of[-1].group(2))
    lone = _LONE_NUMBER.fullmatch(text)
    if lone:
        return _in_scale(lone.group(1), low, high)
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if lines:
        last_line = _LONE_NUMBER.fullmatch(lines[-1])
        if last_line:
            return _in_scale(last_line.group(1), low, high)
    return None


def _pass_value(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("pass", "passed", "yes", "true", "correct"):
            return True
        if word in ("fail", "failed", "no", "false", "incorrect"):
            return False
    return None


def parse_pass_fail(text: str | None) -> bool | None:
    """True for PASS, False for FAIL, None when the reply does not say (or says both).

    Accepts {"verdict": "PASS"} / {"pass": true}, "Verdict: FAIL", or the bare word. When both
    words occur ("it does not FAIL ... PASS"), a labelled verdict decides, else the last line,
    else it is ambiguous.
    """
    if not text:
        return None
    for obj in reversed(_json_objects(text)):
        for key in _VERDICT_KEYS:
            if key in obj:
                return _pass_value(obj[key])
    labelled = list(_LABELLED_VERDICT.finditer(text))
    if labelled:
        return labelled[-1].group("v").lower() == "pass"
    words = {m.group(1).lower() for m in _PASS_FAIL.finditer(text)}
    if len(words) == 1:
        return words.pop() == "pass"
    if words:
        last_line = text.strip().splitlines()[-1]
        in_last = {m.group(1).lower() for m in _PASS_FAIL.finditer(last_line)}
        if len(in_last) == 1:
            return in_last.pop() == "pass"
    return None


def _winner_value(raw: Any) -> Verdict | None:
    if not isinstance(raw, str):
        return None
    word = raw.strip().strip("[]()*").lower()
    if word in ("a", "1", "first", "response a"):
        return "first"
    if word in ("b", "2", "second", "response b"):
        return "second"
    if word in ("tie", "c", "draw", "equal", "neither", "both"):
        return "tie"
    return None


def parse_pairwise(text: str | None) -> Verdict | None:
    """Which response a pairwise judge preferred: "first" (shown as A), "second" (B), "tie".

    Accepts {"winner": "A"}, "[[A]]"/"[[B]]"/"[[C]]" (MT-Bench style, C = tie), "Winner: B",
    "Verdict: tie", or a reply that is only "A", "B" or "tie". None when absent or ambiguous.
    """
    if not text:
        return None
    for obj in reversed(_json_objects(text)):
        for key in _WINNER_KEYS:
            if key in obj:
                return _winner_value(obj[key])
    bracketed = _BRACKETED.findall(text)
    if bracketed:
        return _winner_value(bracketed[-1]) if len(set(bracketed)) == 1 else None
    labelled = list(_LABELLED_WINNER.finditer(text))
    if labelled:
        return _winner_value(labelled[-1].group("w"))
    return _winner_value(text.strip().strip("."))
