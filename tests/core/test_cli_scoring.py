"""Scoring from the command line: `compare run --score`, `compare score RUN_DIR` (resumable after a
kill), score means in `compare summary`, and where judge deployments are found — over real HTTP
to the local endpoint, with scripted simulated deployments (`replies`) as answerers and judge."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from compare.checkpoint import read_checkpoint
from compare.results import Results
from tests.core.test_cli import _one_line_error, _wait_for_records, compare_cli

SIM = {"seed": 1, "output_tokens": 4, "ttft_ms": 2, "itl_ms": 1}
GRADE = [{"match": "Grade the answer", "text": "Close enough. Grade: 4"}]
CONFIG = {
    "deployments": {
        "right": {"backend": "simulated",
                  "simulated": {**SIM, "replies": [{"match": "capital", "text": "Paris"}]}},
        # Right on country 1 only.
        "wrong": {"backend": "simulated", "simulated": {**SIM, "replies": [
            {"match": r"country 1\?", "text": "Paris"},
            {"match": "capital", "text": "Rome"}]}},
        "grader": {"backend": "simulated", "simulated": {**SIM, "replies": GRADE}},
        "slow-grader": {"backend": "simulated",
                        "simulated": {**SIM, "ttft_ms": 200, "replies": GRADE}},
        "broken-grader": {"backend": "simulated", "simulated": SIM,
                          "faults": [{"fault": "500"}]},
    }
}
SCORE_LEGEND = [
    "  score_exact_mean: mean of score_exact over the rows it scored (binary (1 = pass), so the "
    "mean is the pass rate; higher is better)",
    "  score_judge_mean: mean of score_judge over the rows it scored (ordinal, graded by "
    "deployment 'grader'; higher is better)",
]


@pytest.fixture(scope="module")
def server():
    from compare.server.local import local_endpoint

    with local_endpoint(config=CONFIG) as ep:
        yield ep


def _prompts(tmp_path: Path, n: int = 4) -> Path:
    path = tmp_path / "capitals.jsonl"
    path.write_text("".join(json.dumps({"id": f"c{i:02d}", "reference": "Paris",
                                        "prompt": f"What is the capital of country {i}?"}) + "\n"
                            for i in range(1, n + 1)))
    return path


def _key(server) -> dict[str, str]:
    return {"AZURE_AI_CHAT_KEY": server.api_key}


def _requests(server, name: str) -> int:
    return int(server.stats()[name]["requests"])


def _table_rows(stdout: str) -> dict[str, list[str]]:
    """The rows of the first printed table: deployment → its cells."""
    lines = stdout.splitlines()
    return {line.split()[0]: line.split()[1:] for line in lines[2:] if line and line[0] != " "}


def test_run_with_scores_calls_a_judge_at_the_flags_endpoint(server, tmp_path) -> None:
    out = tmp_path / "scored"
    before = _requests(server, "grader")
    proc = compare_cli("run", "-p", str(_prompts(tmp_path)), "--endpoint", server.url,
                       "--deployment", "right", "--deployment", "wrong", "--repeats", "2",
                       "--score", "exact", "--score", "judge:grader", "-o", str(out),
                       "--no-charts", env=_key(server))
    assert proc.returncode == 0, proc.stderr
    header = proc.stdout.splitlines()[0].split()
    assert header[-2:] == ["score_exact_mean", "score_judge_mean"]
    rows = _table_rows(proc.stdout)
    assert rows["right"][-2:] == ["1.000", "4.000"] and rows["wrong"][-2:] == ["0.250", "4.000"]
    assert all(line in proc.stdout.splitlines() for line in SCORE_LEGEND)
    # grader is not compared: it was reached like one more --deployment at the same endpoint,
    # once per answer, each call a checkpointed record.
    assert _requests(server, "grader") - before == 16
    calls = read_checkpoint(out / "judge_records.jsonl")
    assert len(calls) == 16 and {c["deployment"] for c in calls} == {"grader"}
    assert set(Results.load(out).deployments) == {"right", "wrong"}

    summary = compare_cli("summary", str(out))
    assert summary.returncode == 0
    assert summary.stdout.splitlines()[0] == proc.stdout.splitlines()[0]
    assert summary.stdout.splitlines()[-2:] == SCORE_LEGEND


def test_run_finds_the_judge_in_the_deployments_file(server, tmp_path) -> None:
    deps = tmp_path / "deployments.yaml"
    deps.write_text(f"defaults:\n  endpoint: {server.url}\n  api_key_env: SCORING_KEY\n"
                    "deployments:\n  - name: right\n  - name: wrong\n  - name: grader\n")
    env = {"SCORING_KEY": server.api_key}
    prompts = str(_prompts(tmp_path))
    proc = compare_cli("run", "-p", prompts, "-d", str(deps), "--only", "right,wrong",
                       "--score", "judge:grader", "-o", str(tmp_path / "r"), "--no-charts",
                       env=env)
    assert proc.returncode == 0, proc.stderr
    assert (Results.load(tmp_path / "r").frame["score_judge"] == 4.0).all()
    assert _one_line_error(compare_cli("run", "-p", prompts, "-d", str(deps), "--score",
                                       "judge:grade", env=env)) == (
        f"error: --score judge:grade: {deps} has no deployment 'grade' (did you mean "
        "'grader'?); add it there (a judge need not be compared: --only picks the compared "
        "ones)")


def test_score_a_saved_run_later_on_the_runs_endpoint(server, tmp_path) -> None:
    out = tmp_path / "later"
    ran = compare_cli("run", "-p", str(_prompts(tmp_path)), "--endpoint", server.url,
                      "--deployment", "right", "--deployment", "wrong", "-o", str(out),
                      "--no-charts", env=_key(server))
    assert ran.returncode == 0, ran.stderr
    proc = compare_cli("score", str(out), "--score", "exact", "--score", "judge:grader",
                       env=_key(server))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == f"scoring {out}: 8 rows with exact, judge (model calls to grader)\n"
    assert proc.stdout == "\n".join([
        "           score_exact_mean score_judge_mean",
        "deployment                                  ",
        "right                 1.000            4.000",
        "wrong                 0.250            4.000",
        *SCORE_LEGEND,
        "",
        f"scores: {out}/ (results.parquet: score_exact, score_judge; scores.parquet; "
        "manifest.json)",
    ]) + "\n"
    results = Results.load(out)
    assert results.manifest["scorers"]["judge"]["judge"] == "grader"
    assert set(results.scores["scorer"].astype(str)) == {"exact", "judge"}
    # Scoring again with another scorer keeps the earlier ones and re-sends no judge call.
    n_calls = len(read_checkpoint(out / "judge_records.jsonl"))
    again = compare_cli("score", str(out), "--score", "f1", "--score", "judge:grader",
                        env=_key(server))
    assert again.returncode == 0, again.stderr
    assert len(read_checkpoint(out / "judge_records.jsonl")) == n_calls
    frame = Results.load(out).frame
    assert {"score_exact", "score_judge", "score_f1"} <= set(frame.columns)
    stats = compare_cli("stats", str(out), "--metric", "judge", "--format", "json")
    assert json.loads(stats.stdout)["comparison"][0]["test"] == "Wilcoxon signed-rank"


def test_score_resumes_after_kill_without_resending(server, tmp_path) -> None:
    out = tmp_path / "killed"
    ran = compare_cli("run", "-p", str(_prompts(tmp_path, 20)), "--endpoint", server.url,
                      "--deployment", "right", "-o", str(out), "--no-charts", env=_key(server))
    assert ran.returncode == 0, ran.stderr
    before = _requests(server, "slow-grader")
    args = [sys.executable, "-m", "compare", "score", str(out), "--score",
            "judge:slow-grader", "--concurrency", "2"]
    proc = subprocess.Popen(args, env={**os.environ, **_key(server)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    _wait_for_records(out / "judge_records.jsonl", 4, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = len(read_checkpoint(out / "judge_records.jsonl"))
    sent_first = _requests(server, "slow-grader") - before
    assert 4 <= kept < 20 and kept <= sent_first <= kept + 2  # at most 2 were in flight
    assert "score_judge" not in Results.load(out).frame.columns

    again = compare_cli(*args[3:], env=_key(server))
    assert again.returncode == 0, again.stderr
    assert _requests(server, "slow-grader") - before - sent_first == 20 - kept
    assert (Results.load(out).frame["score_judge"] == 4.0).all()


def test_ctrl_c_while_scoring_exits_130_and_keeps_the_calls(server, tmp_path) -> None:
    out = tmp_path / "interrupted"
    ran = compare_cli("run", "-p", str(_prompts(tmp_path, 20)), "--endpoint", server.url,
                      "--deployment", "right", "-o", str(out), "--no-charts", env=_key(server))
    assert ran.returncode == 0, ran.stderr
    proc = subprocess.Popen([sys.executable, "-m", "compare", "score", str(out), "--score",
                             "judge:slow-grader", "--concurrency", "2"],
                            env={**os.environ, **_key(server)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_records(out / "judge_records.jsonl", 2, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    kept = len(read_checkpoint(out / "judge_records.jsonl"))
    assert 2 <= kept < 20
    assert err.splitlines()[-1] == (
        f"interrupted: {kept} finished judge/embedding calls kept in "
        f"{out / 'judge_records.jsonl'}; run the same command again to resume (nothing was "
        "written to the results)")


def test_failed_judge_calls_exit_1_and_say_how_to_retry(server, tmp_path) -> None:
    out = tmp_path / "broken"
    proc = compare_cli("run", "-p", str(_prompts(tmp_path, 2)), "--endpoint", server.url,
                       "--deployment", "right", "--score", "judge:broken-grader",
                       "--max-attempts", "1", "-o", str(out), "--no-charts", env=_key(server))
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines()[-2:] == [
        "warning: scorer 'judge': 0 replies could not be read and 2 calls failed (NaN scores; "
        "the replies are in Results.scores.explanation)",
        "scoring calls failed (judge 2): those rows score NaN; run the same command again to "
        "retry them (finished calls are not sent again)",
    ]
    assert Results.load(out).frame["score_judge"].isna().all()


def test_scoring_usage_errors_name_the_flag_and_the_fix(server, tmp_path) -> None:
    out = tmp_path / "run"
    ran = compare_cli("run", "-p", str(_prompts(tmp_path, 2)), "--kind", "openai",
                      "--endpoint", server.url + "/openai/v1", "--deployment", "right",
                      "--kind", "azure-inference", "--endpoint", server.url, "--deployment",
                      "wrong", "-o", str(out), "--no-charts",
                      env={**_key(server), "OPENAI_API_KEY": server.api_key})
    assert ran.returncode == 0, ran.stderr
    cases = {
        ("run", "-p", "x.jsonl", "--local", "--score", "exactt"):
            "error: compare run: argument --score: unknown scorer 'exactt' (did you mean "
            "'exact'?); built-ins: exact, includes, f1, rouge, chrf, bleu, edit_similarity, "
            "json_valid, choice, numeric, regex, json_schema, judge, pairwise, similarity",
        ("score", str(out), "--score", "judge:grader:rubrik=x"):
            "error: compare score: argument --score: scorer spec 'judge:grader:rubrik=x': "
            "unknown option 'rubrik' (did you mean 'rubric'?); options: name, threshold, tags, "
            "scale, rubric, max_tokens, structured, logprobs",
        ("score", str(out)): "error: compare score: the following arguments are required: "
                             "--score",
        ("score", str(out), "--score", "judge:grader", "--score", "judge:right:scale=pass_fail"):
            "error: --score judge:grader and --score judge:right:scale=pass_fail both make a "
            "scorer named 'judge' (column score_judge); name one, e.g. --score "
            "judge:right:name=judge_2,scale=pass_fail",
        # The run's deployments are on two endpoints: which one serves grader is not implied.
        ("score", str(out), "--score", "judge:grader"):
            f"error: --score judge:grader: 'grader' is not one of the deployments of {out} and "
            "its deployments are on 2 endpoints; say where it is with --deployments FILE or "
            "--endpoint URL --kind KIND --deployment grader",
        ("score", str(out), "--score", "exact", "--endpoint", server.url, "--deployment",
         "grader"): "error: --deployment grader: no --score calls it (the deployments flags of "
                    "`compare score` name judge and embedding deployments)",
    }
    for args, expected in cases.items():
        assert _one_line_error(compare_cli(*args, env=_key(server))) == expected, args
    keyless = compare_cli("score", str(out), "--score", "judge:wrong",
                          env={"AZURE_AI_CHAT_KEY": ""})
    assert _one_line_error(keyless) == (
        "error: no API key for deployment 'wrong': set the environment variable "
        "AZURE_AI_CHAT_KEY (the endpoint comes from the run's manifest, which never holds keys)")
    # Named with flags, grader is found; a judge among the compared ones needs no flag.
    named = compare_cli("score", str(out), "--score", "judge:grader", "--endpoint", server.url,
                        "--deployment", "grader", env=_key(server))
    assert named.returncode == 0, named.stderr
    compared = compare_cli("score", str(out), "--score", "judge:wrong:name=by_wrong",
                           env=_key(server))
    assert compared.returncode == 0, compared.stderr
    assert compared.stderr == (f"scoring {out}: 4 rows with by_wrong (model calls to wrong)\n"
                               "warning: scorer 'by_wrong': 4 replies could not be read and 0 "
                               "calls failed (NaN scores; the replies are in "
                               "Results.scores.explanation)\n")


def test_judges_on_the_local_endpoint(server, tmp_path) -> None:
    out = tmp_path / "local"
    prompts = str(_prompts(tmp_path, 2))
    # The judge is not compared: the endpoint started for the command serves it too.
    proc = compare_cli("run", "-p", prompts, "--local", "--only", "sim-fast", "--score",
                       "judge:sim-slow", "-o", str(out), "--no-charts", "--max-tokens", "8")
    assert proc.returncode == 0, proc.stderr
    # The judge asks for JSON matching its grade schema; the simulated deployment answers with
    # schema-valid JSON, so every reply is a grade (no "could not be read" warning).
    assert "could not be read" not in proc.stderr
    graded = Results.load(out).frame["score_judge"]
    assert graded.between(1, 5).all() and len(graded) == 2
    calls = read_checkpoint(out / "judge_records.jsonl")
    assert [c["deployment"] for c in calls] == ["sim-slow", "sim-slow"]
    later = compare_cli("score", str(out), "--local", "--score", "judge:sim-fast:name=again")
    assert later.returncode == 0, later.stderr
    assert later.stderr.splitlines()[:2] == [
        "starting the local endpoint ...",
        f"scoring {out}: 2 rows with again (model calls to sim-fast)"]
