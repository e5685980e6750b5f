"""What a judge is asked to reply, and how a structured reply and its log probabilities are read.

Structured: the judge asks for JSON matching a schema (the grade as an enum, a short reason) with
OpenAI's `response_format` {"type": "json_schema"}; services that constrain decoding to the schema
(OpenAI, Azure OpenAI, the local endpoint's grammar) cannot reply off-format, so even a 135M model
grades. Log probabilities (G-Eval, Liu et al. 2023): at the token that holds the grade, the
service's top alternatives give a distribution over the grades; the score is its expectation,
which separates answers a greedy grade ties (two 4s, one at p = 0.51 and one at p = 0.95).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any, Final

GRADES: Final = ("1", "2", "3", "4", "5")
VERDICTS: Final = ("PASS", "FAIL")
TOP_LOGPROBS: Final = 20  # alternatives per token: enough to see every grade digit
REASON_CHARS: Final = 300

# Where a grade/verdict value starts: a JSON key (structured) or a "Grade:" line (text).
_JSON_VALUE: Final = re.compile(r'"(?:grade|verdict)"\s*:\s*"?', re.I)
_TEXT_VALUE: Final = re.compile(r"(?:grade|verdict)\s*[:=]\s*\**\s*", re.I)
_JSON_GRADE: Final = re.compile(r'"grade"\s*:\s*"?([1-5])\b')
_JSON_VERDICT: Final = re.compile(r'"verdict"\s*:\s*"(PASS|FAIL)"', re.I)


def reply_schema(scale: str) -> dict[str, Any]:
    """The JSON Schema of a judge reply: the grade first (its token is read for logprobs before
    any reasoning can wander), then a short reason. Strict-mode ready (all required, closed)."""
    grade: dict[str, Any] = ({"type": "integer", "enum": [int(g) for g in GRADES]}
                             if scale == "1-5" else {"type": "string", "enum": list(VERDICTS)})
    key = "grade" if scale == "1-5" else "verdict"
    return {"type": "object",
            "properties": {key: grade, "reason": {"type": "string", "maxLength": REASON_CHARS}},
            "required": [key, "reason"], "additionalProperties": False}


def response_format(scale: str) -> dict[str, Any]:
    """OpenAI's `response_format` asking for `reply_schema(scale)`."""
    return {"type": "json_schema",
            "json_schema": {"name": "judge_grade" if scale == "1-5" else "judge_verdict",
                            "schema": reply_schema(scale), "strict": True}}


def structured_note(scale: str) -> str:
    """The line that tells the judge the reply format (the schema enforces it where it can)."""
    if scale == "1-5":
        return ('\n\nReply with only a JSON object: {"grade": N, "reason": "one short '
                'sentence"}, where N is 1, 2, 3, 4 or 5.')
    return ('\n\nReply with only a JSON object: {"verdict": "PASS" or "FAIL", "reason": "one '
            'short sentence"}.')


def structured_grade(text: str, scale: str) -> int | None:
    """The grade (1–5, or 1/0 for PASS/FAIL) of a JSON reply, also of one cut off after the
    grade by max_tokens; None when the reply is not of that form."""
    found = (_JSON_GRADE if scale == "1-5" else _JSON_VERDICT).search(text)
    if found is None:
        return None
    value = found.group(1).upper()
    return int(value) if scale == "1-5" else int(value == "PASS")


def _value_token(text: str, tokens: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The logprobs entry of the token where the reply's grade/verdict value starts."""
    marks = list(_JSON_VALUE.finditer(text)) or list(_TEXT_VALUE.finditer(text))
    if not marks:
        return None
    at, start = marks[-1].end(), 0
    for entry in tokens:
        piece = str(entry.get("token", ""))
        end = start + len(piece)
        # A token may carry the space or quote before the value (" 4", '"P'): it still counts.
        if end > at and piece.strip(' "*'):
            return entry
        start = end
    return None


def _alternatives(entry: dict[str, Any]) -> list[tuple[str, float]]:
    seen = {str(t.get("token", "")): float(t["logprob"]) for t in entry.get("top_logprobs") or []
            if isinstance(t, dict) and isinstance(t.get("logprob"), int | float)}
    if isinstance(entry.get("logprob"), int | float):
        seen.setdefault(str(entry.get("token", "")), float(entry["logprob"]))
    return list(seen.items())


def grade_distribution(text: str, tokens: Sequence[dict[str, Any]] | None, scale: str
                       ) -> dict[str, float] | None:
    """P(grade) at the grade token, renormalised over the grades among its top alternatives
    (1–5, or PASS/FAIL by the verdict's first token); None without logprobs or grade tokens."""
    if not tokens:
        return None
    entry = _value_token(text, tokens)
    if entry is None:
        return None
    labels = GRADES if scale == "1-5" else VERDICTS
    mass = dict.fromkeys(labels, 0.0)
    for token, logprob in _alternatives(entry):
        word = token.strip(' "*').upper()
        if not word:
            continue
        hits = [g for g in labels if g == word or (scale != "1-5" and g.startswith(word))]
        if len(hits) == 1:
            mass[hits[0]] += math.exp(logprob)
    total = math.fsum(mass.values())
    if total <= 0.0:
        return None
    return {g: p / total for g, p in mass.items()}


def expected_grade(distribution: dict[str, float], scale: str) -> float:
    """The mean grade under `distribution` (for PASS/FAIL: P(PASS))."""
    if scale == "1-5":
        return math.fsum(int(g) * p for g, p in distribution.items())
    return distribution["PASS"]


def distribution_text(distribution: dict[str, float]) -> str:
    """The distribution as kept in `Results.scores.answer` (JSON, 4 decimals)."""
    return json.dumps({g: round(p, 4) for g, p in distribution.items()})
