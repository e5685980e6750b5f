"""Reading judge replies: grades, PASS/FAIL, pairwise winners; ambiguity gives None."""

from __future__ import annotations

import pytest

from compare.scorers import parse_grade, parse_pairwise, parse_pass_fail


@pytest.mark.parametrize(("text", "grade"), [
    ("Grade: 4", 4), ("The answer is fine.\nGrade: 5", 5), ("**4**/5", 4), ("Score: **3**/5", 3),
    ('{"grade": 2, "reason": "partly wrong"}', 2), ('```json\n{"score": 5}\n```', 5),
    ("Rating: 4 out of 5", 4), ("3", 3), ("I'd say... \n\n**2**", 2),
    ("Grade: 4. On reflection, Grade: 3", 3), ("Grade: 8/10", None), ("Grade: 7", None),
    ("Grade: 4.5", None), ("It is good.", None), ("", None), (None, None),
    ('{"grade": true}', None), ("The answer mentions 3 cities and 5 rivers.", None),
])
def test_parse_grade(text: str | None, grade: int | None) -> None:
    assert parse_grade(text) == grade


@pytest.mark.parametrize(("text", "verdict"), [
    ("PASS", True), ("FAIL", False), ("Verdict: PASS", True), ("verdict: fail", False),
    ('{"verdict": "PASS"}', True), ('{"pass": false}', False), ("The answer passes.", True),
    ("It would FAIL on style but the facts are right.\nVerdict: PASS", True),
    ("It does not fail... it passes? hard to say", None), ("Maybe.", None), ("", None),
    ("It could fail or pass.\nFAIL", False),
])
def test_parse_pass_fail(text: str, verdict: bool | None) -> None:
    assert parse_pass_fail(text) == verdict


@pytest.mark.parametrize(("text", "verdict"), [
    ("Winner: A", "first"), ("Winner: B", "second"), ("Winner: tie", "tie"), ("[[A]]", "first"),
    ("[[C]]", "tie"), ('{"winner": "B"}', "second"), ("A", "first"), ("tie.", "tie"),
    ("Response B is clearer.\n\nWinner: **B**", "second"), ("The better response is A", "first"),
    ("[[A]] ... no wait [[B]]", None), ("Both are fine.", None), ("", None),
])
def test_parse_pairwise(text: str, verdict: str | None) -> None:
    assert parse_pairwise(text) == verdict
