"""score_frame: the long and wide frames, alignment, NaN rows, thresholds, metadata, user
functions, model scorers through the test double, the pairs frame, and clear errors."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pandas as pd
import pytest

from compare.errors import ConfigError
from compare.prompts import load_prompts
from compare.scorers import (
    PAIRS_COLUMNS,
    SCORES_COLUMNS,
    Score,
    exact,
    f1,
    judge,
    numeric,
    pairwise,
    score_frame,
    score_frame_sync,
    scorer,
)

from .double import FakeContext

PROMPTS = load_prompts([
    {"id": "p1", "prompt": "2+2?", "reference": "4", "tags": ["numeric"]},
    {"id": "p2", "prompt": "Capital of France?", "reference": "Paris"},
    {"id": "p3", "prompt": "Write a poem."},
])


def frame(rows: list[tuple[str, str, int, str, str | None]], start: int = 100) -> pd.DataFrame:
    f = pd.DataFrame(rows, columns=["prompt_id", "deployment", "repeat", "status", "output"])
    f["cached"] = False
    f.index = range(start, start + len(f))  # not 0..n-1: results must follow the index
    return f


ROWS = [("p1", "a", 0, "ok", "It is 4."), ("p2", "a", 0, "ok", "paris"),
        ("p3", "a", 0, "ok", "Roses..."), ("p1", "b", 0, "error", None),
        ("p2", "b", 0, "ok", "The capital is Paris")]


def test_long_and_wide_frames() -> None:
    f = frame(ROWS)
    scored = score_frame_sync(f, PROMPTS, [exact(), f1(threshold=0.5), numeric()])
    assert tuple(scored.scores.columns) == SCORES_COLUMNS
    assert len(scored.scores) == 3 * len(f)
    assert list(scored.columns.columns) == ["score_exact", "score_f1", "pass_f1", "score_numeric"]
    assert scored.columns.index.equals(f.index)
    assert scored.columns["score_f1"].dtype == "float64"
    assert str(scored.columns["pass_f1"].dtype) == "boolean"
    ex = scored.columns["score_exact"]
    assert ex.loc[101] == 1.0 and ex.loc[104] == 0.0
    assert math.isnan(ex.loc[102]) and math.isnan(ex.loc[103])  # no reference; status error
    # f1 "The capital is Paris" vs "Paris": tokens [capital, is, paris] → P 1/3, R 1 → 0.5
    assert scored.columns.loc[104, "score_f1"] == pytest.approx(0.5)
    assert bool(scored.columns.loc[104, "pass_f1"]) is True
    assert scored.columns["pass_f1"].isna().tolist() == [False, False, True, True, False]
    long = scored.scores.set_index(["scorer", "prompt_id", "deployment"])
    assert long.loc[("exact", "p1", "b"), "explanation"] == "not scored: status error"
    assert long.loc[("exact", "p3", "a"), "explanation"] == "not scored: no reference answer"
    assert long.loc[("numeric", "p1", "a"), "answer"] == "4"
    assert bool(long.loc[("exact", "p2", "a"), "passed"]) is True


def test_metadata_for_the_manifest() -> None:
    scored = score_frame_sync(frame(ROWS), PROMPTS, ["exact", "f1:threshold=0.5"])
    assert scored.metadata["exact"] == {
        "kind": "binary", "higher_is_better": True, "needs_reference": True, "threshold": None,
        "unparsed": 0, "errors": 0, "scored": 3,
    }
    assert scored.metadata["f1"]["threshold"] == 0.5
    assert scored.pairs is None


def test_tags_restrict_a_scorer() -> None:
    scored = score_frame_sync(frame(ROWS), PROMPTS, [numeric(tags="numeric")])
    values = scored.columns["score_numeric"]
    assert values.loc[100] == 1.0 and math.isnan(values.loc[101])


def test_user_functions_sync_and_async() -> None:
    @scorer(kind="binary")
    def mentions_paris(output):
        return "paris" in output.lower()

    @scorer(kind="continuous", name="length_ratio", threshold=1.0, higher_is_better=False)
    async def ratio(output, reference, prompt):
        await asyncio.sleep(0)
        return Score(len(output) / len(reference), explanation=prompt.id)

    @scorer
    def broken(output, reference):
        return 1 / 0 if output.startswith("paris") else None

    scored = score_frame_sync(frame(ROWS), PROMPTS, [mentions_paris, ratio, broken])
    c = scored.columns
    assert c["score_mentions_paris"].tolist()[:2] == [0.0, 1.0]
    assert c.loc[101, "score_length_ratio"] == pytest.approx(1.0)
    assert bool(c.loc[101, "pass_length_ratio"]) is True  # lower is better: 1.0 ≤ 1.0
    assert ratio.model_based  # async functions run row by row, concurrently
    assert broken.needs_reference and math.isnan(c.loc[101, "score_broken"])
    assert scored.metadata["broken"]["errors"] == 1
    long = scored.scores.set_index(["scorer", "prompt_id", "deployment"])
    assert long.loc[("broken", "p2", "a"), "explanation"] == "ZeroDivisionError: division by zero"
    assert long.loc[("length_ratio", "p2", "a"), "explanation"] == "p2"


def test_clear_errors() -> None:
    f = frame(ROWS)
    with pytest.raises(ConfigError, match="two scorers are named 'exact'"):
        score_frame_sync(f, PROMPTS, ["exact", exact()])
    with pytest.raises(ConfigError, match=r"cannot be a column suffix.*'my_score'"):
        exact(name="my score")
    with pytest.raises(ConfigError, match=r"lacks column.*output"):
        score_frame_sync(f.drop(columns="output"), PROMPTS, ["exact"])
    with pytest.raises(ConfigError, match="prompt ids not in the prompt set: 'p9'"):
        score_frame_sync(frame([("p9", "a", 0, "ok", "x")]), PROMPTS, ["exact"])
    with pytest.raises(ConfigError, match="need a scoring context"):
        score_frame_sync(f, PROMPTS, ["judge:gpt"])


def test_model_scorers_run_concurrently_within_the_bound() -> None:
    in_flight = peak = 0

    class SlowJudge(FakeContext):
        async def chat(self, *args, **kwargs):
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1
            return await super().chat(*args, **kwargs)

    ctx = SlowJudge(reply=lambda dep, msgs: "Grade: 4" if "paris" in str(msgs) else "hmm")
    rows = [("p2", f"d{i}", r, "ok", "paris") for i in range(5) for r in range(4)]
    rows.append(("p2", "x", 0, "ok", "Lyon"))
    scored = score_frame_sync(frame(rows), PROMPTS, [judge("j"), exact()], ctx, concurrency=3)
    assert peak == 3 and len(ctx.chats) == len(rows)
    assert scored.columns["score_exact"].tolist() == [1.0] * 20 + [0.0]
    assert scored.columns["score_judge"].iloc[:-1].eq(4.0).all()
    meta = scored.metadata["judge"]
    assert (meta["kind"], meta["judge"], meta["unparsed"], meta["scored"]) == \
        ("ordinal", "j", 1, 20)
    assert len(meta["template_sha256"]) == 64


def test_pairwise_frame_and_per_record_scores() -> None:
    quality = {"great": 3, "fine": 2, "poor": 1}

    def reply(dep: str, msgs: list) -> str:
        text = msgs[0]["content"]
        first = text.split("Response A:")[1].split("Response B:")[0]
        second = text.split("Response B:")[1]
        q1 = max(v for k, v in quality.items() if k in first) if any(
            k in first for k in quality) else 0
        q2 = max(v for k, v in quality.items() if k in second) if any(
            k in second for k in quality) else 0
        if not q1 or not q2:
            return "no idea"
        return "Winner: A" if q1 > q2 else "Winner: B" if q2 > q1 else "Winner: tie"

    rows = [("p2", "x", 0, "ok", "great"), ("p2", "y", 0, "ok", "fine"),
            ("p2", "z", 0, "ok", "poor"), ("p1", "x", 0, "ok", "fine"),
            ("p1", "y", 0, "ok", "fine"), ("p1", "z", 0, "error", None),
            ("p3", "x", 0, "ok", "great"), ("p3", "y", 0, "ok", "???")]
    ctx = FakeContext(reply=reply)
    scored = score_frame_sync(frame(rows, start=0), PROMPTS, [pairwise("judge-dep")], ctx)
    pairs = scored.pairs
    assert pairs is not None and tuple(pairs.columns) == PAIRS_COLUMNS
    assert len(pairs) == 3 + 3 + 1
    p2 = pairs[pairs["prompt_id"] == "p2"].set_index(["a", "b"])
    assert p2.loc[("x", "y"), "winner"] == "a" and p2.loc[("y", "z"), "winner"] == "a"
    assert p2.loc[("x", "z"), "verdict_ab"] == "first"
    assert p2.loc[("x", "z"), "verdict_ba"] == "second"
    assert (pairs["judge"] == "judge-dep").all()
    score = scored.columns["score_pairwise"]
    assert score.tolist()[:3] == [1.0, 0.5, 0.0]  # x beat y and z; y beat z; z lost both
    assert score.tolist()[3:5] == [0.5, 0.5]  # a tie; the pair with the failed row left out
    assert math.isnan(score.iloc[5]) and math.isnan(score.iloc[6])  # failed; unparsable only
    assert pd.isna(pairs.set_index(["prompt_id", "a", "b"]).loc[("p3", "x", "y"), "winner"])
    assert str(pairs["winner"].dtype) == "string" and pairs["repeat"].dtype == "int64"
    assert scored.metadata["pairwise"]["unparsed"] == 2
    assert len(ctx.chats) == 2 * 5  # the two pairs with a failed row were never asked


def test_pairwise_needs_one_row_per_key() -> None:
    rows = [("p2", "x", 0, "ok", "a"), ("p2", "x", 0, "ok", "b"), ("p2", "y", 0, "ok", "c")]
    with pytest.raises(ConfigError, match="two rows for prompt 'p2', deployment 'x'"):
        score_frame_sync(frame(rows), PROMPTS, [pairwise("j")], FakeContext())


async def test_sync_wrapper_inside_a_running_loop_and_async_api() -> None:
    scored = score_frame_sync(frame(ROWS), PROMPTS, ["exact"])  # runs on a worker thread
    again = await score_frame(frame(ROWS), PROMPTS, ["exact"])
    np.testing.assert_array_equal(scored.columns.to_numpy(), again.columns.to_numpy())


def test_empty_frame_and_no_scorers() -> None:
    empty = frame([])
    scored = score_frame_sync(empty, PROMPTS, ["exact", "f1"])
    assert len(scored.scores) == 0 and list(scored.columns.columns) == ["score_exact", "score_f1"]
    assert score_frame_sync(frame(ROWS), PROMPTS, []).columns.shape == (5, 0)


async def test_scorers_read_a_real_record_and_the_double_is_a_scoring_context() -> None:
    from compare.records import Record
    from compare.scorers import ScoringContext

    record = Record(run_id="r", prompt_id="p2", deployment="a", repeat=0, endpoint_kind="x",
                    output="Paris.")
    assert (await exact().score(PROMPTS["p2"], record, None)).value == 1.0
    record.status = "content_filtered"
    skipped = await exact().score(PROMPTS["p2"], record, None)
    assert math.isnan(skipped.value) and skipped.explanation == \
        "not scored: status content_filtered"
    assert isinstance(FakeContext(), ScoringContext)
