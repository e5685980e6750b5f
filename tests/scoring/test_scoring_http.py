"""Scoring through the runner, over real HTTP to the local endpoint with the real SDKs.

A scripted simulated judge (its `replies` rule answers every grading prompt with a grade) and a
simulated embedding deployment serve the model-based scorers; the compared deployments answer
the bundled evaluation set. Judge calls must be timed records in judge_records.jsonl, cost apart,
resumable without re-sending, and land as score columns, Results.scores and the manifest.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

import compare
from compare import scorers
from compare.checkpoint import read_checkpoint
from compare.deployments_file import local_deployments
from compare.errors import ConfigError
from compare.results import Results
from compare.server.local import LocalEndpoint, local_endpoint

SIM = {"seed": 3, "output_tokens": 6, "ttft_ms": 1, "itl_ms": 0}
CONFIG = {
    "deployments": {
        "parrot": {"backend": "simulated", "simulated": {**SIM, "text": "echo"}},
        "lorem": {"backend": "simulated", "simulated": SIM},
        # A scripted judge: grades every answer 4 ("Grade the answer" is in the judge prompt),
        # and answers pairwise questions "A".
        "grader": {"backend": "simulated", "simulated": {**SIM, "ttft_ms": 30, "replies": [
            {"match": "Grade the answer", "text": "Looks right to me. Grade: 4"},
            {"match": "Which response answers the question better", "text": "Verdict: A"},
        ]}},
        "vectors": {"backend": "simulated", "model_type": "embeddings",
                    "simulated": {"seed": 1, "dimensions": 32}},
    },
}
PROMPTS = [
    {"id": "q1", "prompt": "What is 2 plus 2?", "reference": "4", "tags": ["arithmetic"]},
    {"id": "q2", "prompt": "Capital of France?", "reference": "Paris", "tags": ["capitals"]},
    # Six words: the echoing deployment (6 output tokens) says exactly the reference.
    {"id": "q3", "prompt": "one two three four five six",
     "reference": "one two three four five six"},
]


@pytest.fixture(scope="module")
def ep() -> LocalEndpoint:
    with local_endpoint(config=CONFIG) as endpoint:
        yield endpoint


def _deps(ep: LocalEndpoint) -> list[compare.Deployment]:
    return local_deployments(ep, names=["parrot", "lorem"], price_input_per_1k=1.0,
                             price_output_per_1k=1.0)


def _judge_deps(ep: LocalEndpoint) -> list[compare.Deployment]:
    return local_deployments(ep, names=["grader", "vectors"], price_input_per_1k=2.0,
                             price_output_per_1k=2.0)


def test_run_with_scorers_fills_columns_scores_and_manifest(ep, tmp_path) -> None:
    out = tmp_path / "run"
    chosen = ["exact", "f1", scorers.judge("grader"), scorers.similarity(embed="vectors")]
    res = compare.run(PROMPTS, _deps(ep), out=out, progress=False, scorers=chosen,
                      score_with=_judge_deps(ep), max_tokens=8)
    f = res.frame.set_index(["deployment", "prompt_id"])
    # parrot echoes the prompt: exact on q3 only; lorem never.
    assert f.loc[("parrot", "q3"), "score_exact"] == 1.0
    assert f.loc[("lorem", "q1"), "score_exact"] == 0.0
    assert (res.frame["score_judge"] == 4.0).all()
    assert res.frame["score_similarity"].between(-1, 1).all()
    assert f.loc[("parrot", "q3"), "score_similarity"] > f.loc[("lorem", "q3"),
                                                               "score_similarity"]
    long = res.scores
    assert set(long["scorer"].astype(str)) == {"exact", "f1", "judge", "similarity"}
    assert len(long) == 4 * len(res.frame)
    meta = res.manifest["scorers"]
    assert meta["judge"]["kind"] == "ordinal" and meta["judge"]["judge"] == "grader"
    assert len(meta["judge"]["template_sha256"]) == 64
    # Judge and embedding calls: timed records of their own, checkpointed, cost counted apart.
    calls = read_checkpoint(out / "judge_records.jsonl")
    assert len(calls) == 2 * len(res.frame)  # one grade and one embedding call per row
    grades = [c for c in calls if c["deployment"] == "grader"]
    assert all(c["status"] == "ok" and c["latency_s"] >= 0.03 for c in grades)
    scoring = res.manifest["scoring"]
    assert scoring["calls"] == len(calls)
    assert scoring["cost"] == pytest.approx(sum(c["cost"] for c in calls))
    assert res.frame["cost"].sum() < scoring["cost"] + res.frame["cost"].sum()
    # Everything survives save and load.
    back = Results.load(out)
    assert back.frame["score_judge"].tolist() == res.frame["score_judge"].tolist()
    assert back.scores is not None and len(back.scores) == len(long)
    assert back.summary().loc["parrot", "score_exact_mean"] == pytest.approx(1 / 3)


def test_score_an_existing_run_later_and_again(ep, tmp_path) -> None:
    out = tmp_path / "run"
    compare.run(PROMPTS, _deps(ep), out=out, progress=False, max_tokens=8)
    scored = compare.score(out, ["exact", "judge:grader"], score_with=_judge_deps(ep))
    assert (scored.frame["score_judge"] == 4.0).all()
    assert Results.load(out).frame["score_exact"].notna().all()
    n_calls = len(read_checkpoint(out / "judge_records.jsonl"))
    # Scoring again re-sends no finished judge call, and keeps the other scorers' columns.
    again = compare.score(out, ["judge:grader", "f1"], score_with=_judge_deps(ep))
    assert len(read_checkpoint(out / "judge_records.jsonl")) == n_calls
    assert {"score_exact", "score_judge", "score_f1"} <= set(again.frame.columns)
    assert again.manifest["scoring"]["by_deployment"]["grader"]["cached"] == n_calls


def test_pairwise_judge_and_bradley_terry(ep, tmp_path) -> None:
    res = compare.run(PROMPTS, _deps(ep), out=tmp_path / "run", progress=False, max_tokens=8,
                      scorers=[scorers.pairwise("grader")], score_with=_judge_deps(ep))
    pairs = res.pairs
    assert pairs is not None and len(pairs) == len(PROMPTS)
    # The scripted judge always prefers the first-shown answer: the orders disagree → ties.
    assert set(pairs["winner"]) == {"tie"}
    assert set(pairs["verdict_ab"]) == {"first"} and set(pairs["verdict_ba"]) == {"first"}
    assert (res.frame["score_pairwise"] == 0.5).all()
    # Always "A" whichever answer is shown first: no verdict survives the swap.
    consistency = res.manifest["scorers"]["pairwise"]["position_consistency"]
    assert consistency["share"] == 0.0 and consistency["n"] == len(PROMPTS)
    bt = res.bradley_terry(source="judge")
    assert bt.attrs["position_bias"]["share_first"] == 1.0


def test_a_judge_that_is_nowhere_is_a_clear_error(ep, tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"scorers call deployment\(s\) nobody, which are "
                                          r"neither compared nor given in score_with"):
        compare.run(PROMPTS, _deps(ep), progress=False, scorers=["judge:nobody"])


def test_unreadable_judge_replies_are_nan_kept_and_counted(ep, tmp_path) -> None:
    # Asked in text, the simulated model answers lorem ipsum: no grade.
    lorem_judge = scorers.judge("lorem", name="lorem_judge", structured=False)
    with pytest.warns(RuntimeWarning, match="lorem_judge.*3 replies could not be read"):
        res = compare.run(PROMPTS[:3], _deps(ep)[:1], progress=False, max_tokens=8,
                          scorers=[lorem_judge], score_with=_deps(ep))
    assert res.frame["score_lorem_judge"].isna().all()
    explained = res.scores["explanation"].dropna()
    assert len(explained) == 3 and all(len(e) > 0 for e in explained)
    assert res.manifest["scorers"]["lorem_judge"]["unparsed"] == 3


SCRIPT = """
import sys, compare
from compare import scorers
from compare.deployments_file import local_deployments
url, key, out = sys.argv[1], sys.argv[2], sys.argv[3]
deps = [compare.Deployment(name=n, endpoint=url, api_key=key) for n in ("parrot", "lorem")]
judges = [compare.Deployment(name="grader", endpoint=url, api_key=key, concurrency=2)]
prompts = [{"id": f"q{i}", "prompt": f"question {i}", "reference": "x"} for i in range(40)]
compare.run(prompts, deps, out=out, progress=False, max_tokens=4,
            scorers=[scorers.judge("grader")], score_with=judges)
"""


def test_killed_during_judging_resumes_without_resending(ep, tmp_path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(SCRIPT), ep.url, ep.api_key,
                             str(out)], env=env)
    judged = out / "judge_records.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if judged.exists() and len(read_checkpoint(judged)) >= 10:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {c["call_key"] for c in read_checkpoint(judged)}
    assert 10 <= len(before) < 80
    grader_before = ep.stats()["grader"]["requests"]
    # The same command again resumes the run and its judging.
    subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT), ep.url, ep.api_key,
                    str(out)], env=env, check=True, timeout=120)
    after = read_checkpoint(judged)
    assert len({c["call_key"] for c in after}) == 80 == len(after)  # no call twice
    assert ep.stats()["grader"]["requests"] - grader_before == 80 - len(before)
    res = Results.load(out)
    assert res.frame["score_judge"].notna().all() and not math.isnan(
        res.frame["score_judge"].mean())
    assert isinstance(res.scores, pd.DataFrame)
    assert json.loads((out / "manifest.json").read_text())["scorers"]["judge"]["scored"] == 80
