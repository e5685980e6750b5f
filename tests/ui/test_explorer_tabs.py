"""The explorer's compare and rate tabs, driven from code against a real local endpoint.

"oracle" is a simulated deployment scripted (`replies` rules) to answer five of six questions
right, "lorem" answers filler text: exact-match scores differ, so the compare tab has something
to show, and the rate tab has two answers per prompt to vote on.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compare.explorer import Explorer
from compare.ratings import plan_pairs
from compare.server.local import local_endpoint

QUESTIONS = [
    ("q1", "What is 2 + 3?", "5"),
    ("q2", "What is the capital of France?", "Paris"),
    ("q3", "What is 6 times 7?", "42"),
    ("q4", "Name the largest ocean.", "Pacific"),
    ("q5", "What colour is the sky on a clear day?", "blue"),
    ("q6", "What is the square root of 81?", "9"),
]
TEXTS = {i: p for i, p, _ in QUESTIONS}
# Right on q1-q5; wrong on q6.
REPLIES = [{"match": r"2 \+ 3", "text": "5"}, {"match": "France", "text": "Paris"},
           {"match": "6 times 7", "text": "42"}, {"match": "ocean", "text": "Pacific"},
           {"match": "sky", "text": "blue"}, {"match": "square root", "text": "7"}]
CONFIG = {"deployments": {
    "oracle": {"backend": "simulated",
               "simulated": {"seed": 1, "ttft_ms": 5, "itl_ms": 1, "replies": REPLIES}},
    "lorem": {"backend": "simulated",
              "simulated": {"seed": 2, "output_tokens": 6, "ttft_ms": 20, "itl_ms": 2}},
}}


@pytest.fixture(scope="module")
def scripted_endpoint():
    with local_endpoint(config=CONFIG) as ep:
        yield ep


@pytest.fixture
def prompt_file(tmp_path: Path) -> Path:
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps({"id": i, "prompt": p, "reference": r}) + "\n"
                            for i, p, r in QUESTIONS), encoding="utf-8")
    return path


async def scored_run(endpoint, prompt_file: Path, out: Path) -> Explorer:
    explorer = Explorer(endpoint=endpoint, prompts=prompt_file, out_dir=out, max_tokens=8,
                        scorers=["exact"])
    explorer.select(["oracle", "lorem"])
    explorer.run_clicked()
    results = await explorer.wait()
    assert results is not None and len(results) == 12
    return explorer


async def test_compare_tab_ranks_a_live_run_and_follows_the_pickers(
        scripted_endpoint, prompt_file: Path, tmp_path: Path) -> None:
    explorer = await scored_run(scripted_endpoint, prompt_file, tmp_path / "runs")
    results = explorer.results
    assert results is not None
    tab = explorer.compare_tab
    assert list(tab.metric.options) == ["score_exact", "latency_s", "ttft_s"]  # no prices: no cost
    assert tab.metric.value == "score_exact" and tab.baseline.value == "oracle"
    board = results.leaderboard("score_exact")
    assert board.loc["oracle", "mean"] == pytest.approx(5 / 6)
    assert board.loc["lorem", "mean"] == 0.0
    assert "0.8333" in tab.board.value and "<td>oracle</td>" in tab.board.value
    compared = results.compare(baseline="oracle", metrics=["score_exact"])
    assert compared["b"].tolist() == ["lorem"]
    assert f"{compared['p_adj'].iloc[0]:.4g}" in tab.comparison.value
    for image in (tab.forest, tab.quality):
        assert image.value[:4] == b"\x89PNG" and image.layout.display == ""
    assert tab.human.value == ""  # no votes yet

    tab.metric.value = "latency_s"  # a pick redraws in the background
    await tab.wait()
    assert "<b>latency_s</b>" in tab.status.value
    assert tab.quality.layout.display == "none"  # the quality chart is for scores
    assert tab.forest.value[:4] == b"\x89PNG"
    assert "ratio" in tab.comparison.value  # latency is compared as a ratio
    tab.baseline.value = "lorem"
    await tab.wait()
    assert "(baseline lorem)" in tab.status.value
    assert "<td>oracle</td>" in tab.comparison.value


async def test_rate_tab_saves_each_vote_and_continues_after_reopening(
        scripted_endpoint, prompt_file: Path, tmp_path: Path) -> None:
    explorer = await scored_run(scripted_endpoint, prompt_file, tmp_path / "runs")
    results = explorer.results
    assert results is not None and results.path is not None
    run_dir = results.path
    rate = explorer.rate_tab
    assert rate.pairs == plan_pairs(results.frame, seed=0)  # seeded order and sides
    assert len(rate.pairs) == 6
    assert "votes given: <b>0 / 6</b>" in rate.counter.value
    first = rate.current
    assert first is not None
    shown = rate.prompt_view.value + rate.left_view.value + rate.right_view.value
    assert "oracle" not in shown and "lorem" not in shown  # names hidden before the vote
    assert TEXTS[first.prompt_id] in rate.prompt_view.value

    rate.note.value = "A is right"
    rate.buttons["left"].click()  # A better
    lines = (run_dir / "ratings.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1  # on disk at once
    row = json.loads(lines[0])
    assert (row["prompt_id"], row["left"], row["right"], row["vote"], row["note"]) == (
        first.prompt_id, first.left, first.right, "left", "A is right")
    assert f"A was <b>{first.left}</b>, B was <b>{first.right}</b>" in rate.reveal.value
    assert "votes given: <b>1 / 6</b>" in rate.counter.value and rate.note.value == ""
    assert rate.current is not None and rate.current != first
    rate.buttons["tie"].click()

    # A fresh explorer on the same run directory (a reloaded app, a restarted kernel) counts
    # both votes and shows the next pair not yet rated.
    reopened = Explorer.open(run_dir)
    await reopened.wait()
    again = reopened.rate_tab
    assert "votes given: <b>2 / 6</b>" in again.counter.value
    assert again.current == rate.pairs[2]
    for vote in ("right", "both_bad", "left", "left"):
        assert again.vote(vote) is not None
    assert again.current is None and "All 6 pairs rated" in again.prompt_view.value
    assert all(b.disabled for b in again.buttons.values())
    assert again.vote("left") is None  # nothing shown, nothing written
    ratings = reopened.results.ratings  # type: ignore[union-attr]
    assert len(ratings) == 6 and ratings["vote"].tolist()[:2] == ["left", "tie"]

    # The compare tab ranks by the votes (Bradley–Terry on the same ratings).
    await reopened.compare_tab.wait()
    # A run opened from disk has its scores: the same pickers and leaderboard as when live.
    assert list(reopened.compare_tab.metric.options) == ["score_exact", "latency_s", "ttft_s"]
    assert "0.8333" in reopened.compare_tab.board.value
    human = reopened.compare_tab.human.value
    ranking = reopened.results.bradley_terry(source="human")  # type: ignore[union-attr]
    assert "Ranked by your votes (6 in ratings.jsonl)" in human
    for name in ranking.index:
        assert f"<td>{name}</td>" in human
    assert f"{ranking['rating'].iloc[0]:.4g}" in human


async def test_rate_tab_without_a_run_directory_says_where_votes_would_go(
        scripted_endpoint) -> None:
    explorer = Explorer(endpoint=scripted_endpoint, prompts=["hello"], max_tokens=4)
    explorer.select(["oracle", "lorem"])
    explorer.run_clicked()
    await explorer.wait()
    rate = explorer.rate_tab
    assert "give the explorer out_dir=" in rate.prompt_view.value
    assert rate.current is None and all(b.disabled for b in rate.buttons.values())
    assert rate.vote("left") is None


async def test_one_deployment_has_a_leaderboard_but_no_comparison(
        scripted_endpoint, prompt_file: Path, tmp_path: Path) -> None:
    explorer = Explorer(endpoint=scripted_endpoint, prompts=prompt_file, out_dir=tmp_path,
                        max_tokens=8, scorers=["exact", "f1"])
    explorer.select(["oracle"])
    explorer.run_clicked()
    await explorer.wait()
    tab = explorer.compare_tab
    assert list(tab.metric.options)[:2] == ["score_exact", "score_f1"]
    assert "comparisons need at least two deployments" in tab.status.value
    assert tab.forest.layout.display == "none" and tab.comparison.value == ""
    assert "<td>oracle</td>" in tab.board.value
    rate = explorer.rate_tab
    assert "Nothing to rate" in rate.prompt_view.value


async def test_a_wrong_scorer_spec_says_why_instead_of_running(scripted_endpoint) -> None:
    explorer = Explorer(endpoint=scripted_endpoint, prompts=["hello"], scorers=["exakt"])
    assert explorer.run_clicked() is None
    assert "exakt" in explorer.status.value and "exact" in explorer.status.value
