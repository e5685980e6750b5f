"""judge, pairwise and similarity through the in-memory ScoringContext double: what is asked,
how replies become scores, and that failures and unreadable replies never raise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from compare.errors import ConfigError
from compare.prompts import Prompt
from compare.scorers import JudgeReply, RowView, judge, pairwise, similarity
from compare.scorers.pairwise import combine

from .double import FakeContext, failing

PROMPT = Prompt(id="p1", messages=[{"role": "user", "content": "Capital of France?"}],
                reference="Paris")
NO_REF = Prompt(id="p2", messages=[{"role": "user", "content": "Write a haiku."}])


def row(output: str | None, deployment: str = "dep-a", status: str = "ok",
        prompt_id: str = "p1", repeat: int = 0) -> RowView:
    return RowView(prompt_id, deployment, repeat, status, output)


async def test_judge_grades_and_sends_a_deterministic_request() -> None:
    ctx = FakeContext(reply=lambda dep, msgs: "Correct and complete.\nGrade: 5")
    scorer = judge("gpt-judge", threshold=4)
    score = await scorer.score(PROMPT, row("Paris"), ctx)
    assert (score.value, score.passed, score.answer) == (5.0, True, "5")
    assert score.explanation == "Correct and complete.\nGrade: 5"
    call = ctx.chats[0]
    assert (call["deployment"], call["temperature"], call["seed"]) == ("gpt-judge", 0.0, 0)
    text = call["messages"][0]["content"]
    assert "Capital of France?" in text and "Paris" in text and "{answer}" not in text
    assert scorer.kind == "ordinal" and len(scorer.template_sha256 or "") == 64


async def test_judge_call_key_is_stable_and_changes_with_the_rubric() -> None:
    ctx = FakeContext(reply=lambda dep, msgs: "Grade: 3")
    first, again = judge("j"), judge("j")
    other = judge("j", rubric="Only brevity matters.")
    for s in (first, again, other):
        await s.score(PROMPT, row("Paris", repeat=2), ctx)
    keys = [c["call_key"] for c in ctx.chats]
    assert keys[0] == keys[1] != keys[2]
    assert all(part in keys[0] for part in ('"judge"', '"p1"', '"dep-a"', ",2,"))
    assert first.template_sha256 != other.template_sha256


async def test_judge_placeholders_are_filled_once() -> None:
    ctx = FakeContext(reply=lambda dep, msgs: "Grade: 1")
    await judge("j").score(PROMPT, row("my answer is {reference} {question}"), ctx)
    text = ctx.chats[0]["messages"][0]["content"]
    assert "my answer is {reference} {question}" in text


async def test_judge_unparsed_and_failed_calls_are_nan_and_counted() -> None:
    scorer = judge("j")
    ctx = FakeContext(reply=lambda dep, msgs: "I like it a lot!")
    score = await scorer.score(PROMPT, row("Paris"), ctx)
    assert math.isnan(score.value) and score.explanation == "I like it a lot!"
    assert scorer.unparsed == 1
    ctx = FakeContext(reply=lambda dep, msgs: failing())
    assert math.isnan((await scorer.score(PROMPT, row("Paris"), ctx)).value)
    ctx = FakeContext(reply=lambda dep, msgs: JudgeReply(None, "rate_limited", "429"))
    failed = await scorer.score(PROMPT, row("Paris"), ctx)
    assert "rate_limited" in (failed.explanation or "")
    assert (scorer.unparsed, scorer.errors) == (1, 2)


async def test_judge_skips_failed_rows_without_calling() -> None:
    ctx = FakeContext(reply=lambda dep, msgs: "Grade: 5")
    score = await judge("j").score(PROMPT, row(None, status="timeout"), ctx)
    assert math.isnan(score.value) and "timeout" in (score.explanation or "")
    assert ctx.chats == []


async def test_pass_fail_judge_is_binary() -> None:
    ctx = FakeContext(reply=lambda dep, msgs: "Wrong city.\nVerdict: FAIL")
    scorer = judge("j", scale="pass_fail")
    score = await scorer.score(PROMPT, row("Lyon"), ctx)
    assert (scorer.kind, score.value, score.passed, score.answer) == ("binary", 0.0, False, "FAIL")
    with pytest.raises(ConfigError, match="scale"):
        judge("j", scale="1-10")  # type: ignore[arg-type]


@pytest.mark.parametrize(("ab", "ba", "winner"), [
    ("first", "second", "a"), ("second", "first", "b"), ("first", "first", "tie"),
    ("tie", "second", "tie"), ("tie", "tie", "tie"), (None, "second", None), ("first", None, None),
])
def test_combine_counts_a_win_only_when_both_orders_agree(ab, ba, winner) -> None:
    assert combine(ab, ba) == winner


async def test_pairwise_asks_both_orders() -> None:
    def reply(dep: str, msgs: list) -> str:
        text = msgs[0]["content"]
        first = text.split("Response A:")[1].split("Response B:")[0]
        return "Winner: A" if "Paris" in first else "Winner: B"

    ctx = FakeContext(reply=reply)
    scorer = pairwise("j")
    verdict = await scorer.compare(PROMPT, row("Paris", "dep-a"), row("Lyon", "dep-b"), ctx)
    assert (verdict.winner, verdict.verdict_ab, verdict.verdict_ba) == ("a", "first", "second")
    keys = [c["call_key"] for c in ctx.chats]
    assert len(set(keys)) == 2 and keys[0].endswith('"ab"]') and keys[1].endswith('"ba"]')


async def test_pairwise_position_bias_is_a_tie_and_failed_rows_are_not_judged() -> None:
    ctx = FakeContext(reply=lambda dep, msgs: "Winner: A")  # always prefers the first shown
    scorer = pairwise("j")
    verdict = await scorer.compare(PROMPT, row("Paris", "a"), row("Lyon", "b"), ctx)
    assert verdict.winner == "tie"
    skipped = await scorer.compare(PROMPT, row("Paris", "a"), row(None, "b", "error"), ctx)
    assert skipped.winner is None and "b (b)" in (skipped.explanation or "")
    assert len(ctx.chats) == 2


async def test_similarity_is_the_cosine_of_the_two_embeddings() -> None:
    vectors = {"Paris": [1.0, 0.0], "paris, France": [1.0, 1.0], "zero": [0.0, 0.0]}
    ctx = FakeContext(vectors=lambda dep, texts: [vectors[t] if t in vectors else vectors["Paris"]
                                                  for t in texts])
    scorer = similarity(embed="emb", threshold=0.9)
    score = await scorer.score(PROMPT, row("paris, France"), ctx)
    assert score.value == pytest.approx(1 / np.sqrt(2))
    assert score.passed is False
    assert ctx.embeds[0]["texts"] == ["paris, France", "Paris"]
    assert math.isnan((await scorer.score(PROMPT, row("zero"), ctx)).value)
    assert math.isnan((await scorer.score(NO_REF, row("x", prompt_id="p2"), ctx)).value)


async def test_similarity_failures_are_nan() -> None:
    scorer = similarity(embed="emb")
    ctx = FakeContext(vectors=lambda dep, texts: failing("embedding deployment down"))
    score = await scorer.score(PROMPT, row("Paris"), ctx)
    assert math.isnan(score.value) and "embedding deployment down" in (score.explanation or "")
    ctx = FakeContext(vectors=lambda dep, texts: [[1.0]])
    assert math.isnan((await scorer.score(PROMPT, row("Paris"), ctx)).value)
    assert scorer.errors == 2
