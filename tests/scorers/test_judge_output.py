"""The judge's structured replies and G-Eval grades: what is asked, how replies and their token
log probabilities are read, and that a refused structured call falls back to text."""

from __future__ import annotations

import asyncio
import json
import math

import pytest

from compare.prompts import Prompt
from compare.scorers import JudgeReply, RowView
from compare.scorers.judge import Judge
from compare.scorers.judge_output import grade_distribution, reply_schema, structured_grade

from .double import FakeContext

PROMPT = Prompt("q1", [{"role": "user", "content": "Capital of France?"}], reference="Paris")


def _record() -> RowView:
    return RowView("q1", "dep", 0, "ok", "Paris")


def _entry(token: str, top: dict[str, float]) -> dict:
    return {"token": token, "logprob": top.get(token, -9.0),
            "top_logprobs": [{"token": t, "logprob": lp} for t, lp in top.items()]}


def _tokens(text_tokens: list[str], at: int, top: dict[str, float]) -> list[dict]:
    return [_entry(t, top) if i == at else _entry(t, {t: 0.0})
            for i, t in enumerate(text_tokens)]


def test_structured_call_asks_for_the_schema_and_logprobs() -> None:
    ctx = FakeContext(reply=lambda d, m: '{"grade": 4, "reason": "right"}')
    score = asyncio.run(Judge("j").score(PROMPT, _record(), ctx))
    call = ctx.chats[0]
    assert call["response_format"]["type"] == "json_schema"
    assert call["response_format"]["json_schema"]["schema"] == reply_schema("1-5")
    assert call["top_logprobs"] == 20
    assert '{"grade": N' in call["messages"][0]["content"]
    assert (score.value, score.answer) == (4.0, "4")


def test_expected_grade_from_the_grade_tokens_alternatives() -> None:
    tokens = ['{"', "grade", '":', " 4", ",", ' "reason": "ok"}']
    text = "".join(tokens)
    top = {" 4": math.log(0.6), " 5": math.log(0.2), " 3": math.log(0.1), "x": math.log(0.1)}
    reply = JudgeReply(text, logprobs=_tokens(tokens, 3, top))
    score = asyncio.run(Judge("j").score(PROMPT, _record(),
                                         FakeContext(reply=lambda d, m: reply)))
    dist = json.loads(score.answer)
    # "x" is not a grade: the three grades share all the mass, in their proportions.
    assert dist == pytest.approx({"1": 0, "2": 0, "3": 1 / 9, "4": 6 / 9, "5": 2 / 9},
                                 abs=1e-4)
    assert score.value == pytest.approx(3 / 9 + 24 / 9 + 10 / 9)


def test_text_reply_grade_token_is_found_after_the_label() -> None:
    tokens = ["Looks", " fine.", " Grade", ":", " 2"]
    top = {" 2": math.log(0.5), " 1": math.log(0.5)}
    dist = grade_distribution("".join(tokens), _tokens(tokens, 4, top), "1-5")
    assert dist is not None and dist["1"] == pytest.approx(0.5) and dist["2"] == pytest.approx(0.5)


def test_pass_fail_distribution_reads_the_verdicts_first_token() -> None:
    tokens = ['{"verdict": "', "P", "ASS", '", "reason": "ok"}']
    top = {"P": math.log(0.7), "F": math.log(0.2), "Maybe": math.log(0.1)}
    reply = JudgeReply("".join(tokens), logprobs=_tokens(tokens, 1, top))
    score = asyncio.run(Judge("j", scale="pass_fail").score(
        PROMPT, _record(), FakeContext(reply=lambda d, m: reply)))
    assert score.value == pytest.approx(0.7 / 0.9) and score.passed is True


def test_a_reply_cut_after_the_grade_still_grades() -> None:
    assert structured_grade('{"grade": 3, "reason": "it is mostly rig', "1-5") == 3
    assert structured_grade('{"verdict": "FAIL", "rea', "pass_fail") == 0


def test_unreadable_reply_is_nan_kept_and_counted() -> None:
    judge = Judge("j")
    score = asyncio.run(judge.score(PROMPT, _record(),
                                    FakeContext(reply=lambda d, m: "no idea, sorry")))
    assert math.isnan(score.value) and score.explanation == "no idea, sorry"
    assert judge.unparsed == 1


def test_refused_structured_call_falls_back_to_text_for_good() -> None:
    def reply(deployment: str, messages: list) -> JudgeReply:
        if '{"grade": N' in messages[0]["content"]:
            return JudgeReply(None, "error", "response_format is not supported")
        return JudgeReply("Grade: 5")

    judge = Judge("j")
    ctx = FakeContext(reply=reply)
    first = asyncio.run(judge.score(PROMPT, _record(), ctx))
    second = asyncio.run(judge.score(PROMPT, _record(), ctx))
    assert first.value == second.value == 5.0
    assert [c["response_format"] is not None for c in ctx.chats] == [True, False, False]
    assert ctx.chats[0]["call_key"] != ctx.chats[1]["call_key"]


def test_text_only_judge_sends_no_response_format() -> None:
    ctx = FakeContext(reply=lambda d, m: "Grade: 3")
    asyncio.run(Judge("j", structured=False, logprobs=False).score(PROMPT, _record(), ctx))
    assert ctx.chats[0]["response_format"] is None and ctx.chats[0]["top_logprobs"] is None
