"""The judge through the runner and real HTTP to the local endpoint: structured replies from
the simulated backend, and a 135M llama judge held to the schema by a grammar, with its grades'
distribution from the model's own log probabilities."""

from __future__ import annotations

import json
import math
from importlib.resources import files

import pytest

import compare
from compare.checkpoint import read_checkpoint
from compare.deployments_file import local_deployments
from compare.prompts import load_prompts
from compare.results import Results

EVAL_SET = str(files("compare") / "data" / "eval_set.jsonl")


def _twelve() -> list:
    return list(load_prompts(EVAL_SET))[:12]


def test_simulated_judge_grades_every_row_from_its_json(sim_endpoint, tmp_path) -> None:
    deps = local_deployments(sim_endpoint, names=["sim-fast"])
    res = compare.run(_twelve(), deps, out=tmp_path / "run", progress=False, max_tokens=8,
                      scorers=["judge:sim-fast"], score_with=deps)
    grades = res.frame["score_judge"]
    assert grades.notna().all() and grades.isin([1.0, 2.0, 3.0, 4.0, 5.0]).all()
    assert res.manifest["scorers"]["judge"]["unparsed"] == 0
    assert all(json.loads(e)["grade"] == int(g)
               for e, g in zip(res.scores["explanation"], res.scores["value"], strict=True))


@pytest.mark.llama
def test_smollm2_judge_grades_nine_in_ten_rows_with_a_distribution(llama_endpoint,
                                                                    tmp_path) -> None:
    out = tmp_path / "run"
    compared = local_deployments(llama_endpoint, names=["smollm2-precise"])
    judges = local_deployments(llama_endpoint, names=["smollm2"])
    res = compare.run(_twelve(), compared, out=out, progress=False, max_tokens=32,
                      scorers=["judge:smollm2"], score_with=judges)
    scores = res.scores
    assert scores["value"].notna().mean() >= 0.9
    for answer, value in zip(scores["answer"], scores["value"], strict=True):
        if isinstance(answer, str) and answer.startswith("{"):
            dist = json.loads(answer)
            assert math.fsum(dist.values()) == pytest.approx(1.0, abs=1e-3)
            assert value == pytest.approx(sum(int(g) * p for g, p in dist.items()), abs=1e-3)
        assert 1.0 <= value <= 5.0
    # The calls' log probabilities are kept: scoring again replays them, sending nothing.
    calls = read_checkpoint(out / "judge_records.jsonl")
    assert all(c.get("logprobs") for c in calls)
    again = compare.score(out, ["judge:smollm2"], score_with=judges)
    assert again.manifest["scoring"]["by_deployment"]["smollm2"]["cached"] == len(calls)
    assert again.frame["score_judge"].tolist() == pytest.approx(
        Results.load(out).frame["score_judge"].tolist(), nan_ok=True)
