"""`compare stats` and `compare diff` as a user and a CI pipeline run them: the numbers are
checked against scipy/statsmodels called directly on the same worked example, the legends and
messages word for word, and the exit codes of the regression gate.

The runs go over real HTTP to the local endpoint, whose scripted simulated deployments answer
deterministically: `right` knows every capital, `half` the first six, `wrong` the first three.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import cochrans_q
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

import compare
from compare.deployments_file import local_deployments
from tests.core.test_cli import _one_line_error, compare_cli

SIM = {"seed": 1, "output_tokens": 4, "ttft_ms": 2, "itl_ms": 1}
N = 12


def _knows(first: int) -> dict:
    """A simulated deployment that answers Paris for countries 1..first, Rome after."""
    known = "|".join(str(i) for i in range(1, first + 1))
    return {"backend": "simulated", "simulated": {**SIM, "replies": [
        {"match": rf"country ({known})\?", "text": "Paris"},
        {"match": "capital", "text": "Rome"}]}}


CONFIG = {"deployments": {
    "right": _knows(N), "half": _knows(6), "wrong": _knows(3),
    "slow": {"backend": "simulated", "simulated": {**SIM, "ttft_ms": 60}},
}}
PROMPTS = [{"id": f"c{i:02d}", "prompt": f"What is the capital of country {i}?",
            "reference": "Paris", "tags": ["early" if i <= 6 else "late"]}
           for i in range(1, N + 1)]
PASSED = {"right": N, "half": 6, "wrong": 3}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Runs scored with exact: `three` (right, wrong, half), `old`/`same` (model = right,
    other = half), `new` (model = wrong, other = half), `fast`/`slower` (model on quick or
    slow timings)."""
    root = tmp_path_factory.mktemp("stats")
    plans = {
        "three": [("right", "right"), ("wrong", "wrong"), ("half", "half")],
        "old": [("model", "right"), ("other", "half")],
        "same": [("model", "right"), ("other", "half")],
        "new": [("model", "wrong"), ("other", "half")],
        "fast": [("model", "right")],
        "slower": [("model", "slow")],
    }
    with compare.local_endpoint(config=CONFIG) as ep:
        for run, names in plans.items():
            deps = [local_deployments(ep, names=[served])[0].replace(name=shown)
                    for shown, served in names]
            compare.run(PROMPTS, deps, out=root / run, progress=False, scorers=["exact"])
    return {run: root / run for run in plans}


def _tokens(stdout: str, first: str) -> list[list[str]]:
    return [line.split() for line in stdout.splitlines() if line.split()[:1] == [first]]


def _g(value: float) -> str:
    return f"{value:.4g}"


def test_stats_matches_scipy_and_says_what_it_did(runs) -> None:
    proc = compare_cli("stats", str(runs["three"]), "--metric", "exact", "--baseline", "right")
    assert proc.returncode == 0, proc.stderr
    # Worked example: right passes all 12, wrong 3, half 6; b − a per prompt is 0 or −1.
    p_wrong = stats.binomtest(0, 9, 0.5).pvalue  # exact McNemar: 9 discordant, all for right
    p_half = stats.binomtest(0, 6, 0.5).pvalue
    p_adj = multipletests([p_wrong, p_half], method="holm")[1]
    # The interval is the library's (Newcombe's hybrid score interval for paired proportions,
    # whose values and coverage tests/stats checks): the CLI prints what compare() computed.
    table = compare.Results.load(runs["three"]).compare(baseline="right", metrics="score_exact")
    interval = table.set_index("b")[["ci_low", "ci_high"]]
    rows = {}
    for name, adj in (("wrong", p_adj[0]), ("half", p_adj[1])):
        discordant = N - PASSED[name]
        share = discordant / N
        low, high = interval.loc[name]
        assert low <= -share <= high
        rows[name] = ["right", name, "score_exact", "McNemar", "exact", str(N), "1",
                      _g(PASSED[name] / N), _g(-share), f"[{_g(low)},", f"{_g(high)}]",
                      f"{adj:.4f}", "yes", "worse", f"0/{discordant}/{PASSED[name]}"]
    assert _tokens(proc.stdout, "right")[:2] == [rows["wrong"], rows["half"]]
    passed = np.array([[1.0, float(i < 3), float(i < 6)] for i in range(N)])
    omnibus = cochrans_q(passed)
    lines = proc.stdout.splitlines()
    assert lines[0] == "paired comparison (each deployment vs right; b − a per prompt):"
    assert lines[4:14] == [
        "  a, b: the deployments compared; diff: mean over prompts of b − a with its 95% "
        "interval (unadjusted)",
        "  n: prompts both answered ok (repeats averaged within a prompt); p_adj: p-value after "
        "Holm's adjustment over the 2 rows; significant: p_adj < 0.05",
        "  verdict: better / worse when significant (b against a, by each metric's direction); "
        "equivalent needs a margin; too_few: fewer prompts than the test needs to ever be "
        "significant; else inconclusive",
        "  W/L/T: prompts where b is better / worse / equal, by each metric's direction (scores "
        "and decode_tps: higher is better; times and cost: lower)",
        "tests:",
        "  McNemar exact (score_exact): binary score, one repeat per prompt: exact binomial test "
        "on the prompts only one of the two passed (interval: Newcombe's hybrid score interval "
        "for the paired difference)",
        "omnibus test over the 3 deployments (right, wrong, half), before the pairs, on the "
        "prompts all of them answered:",
        f"  score_exact: Cochran's Q = {_g(omnibus.statistic)}, p = {omnibus.pvalue:.4f} on 12 "
        "prompts: at least one deployment differs",
        "",
        "leaderboard: score_exact (binary; higher is better; mean over prompts, repeats "
        "averaged within a prompt; Wilson interval; rank 1 is best)",
    ]
    assert lines[14].split() == ["n_prompts", "mean", "[95%", "CI]", "rank"]
    board = _tokens(proc.stdout, "wrong")[-1]
    low, high = proportion_confint(3, N, alpha=0.05, method="wilson")
    assert board == ["wrong", "12", "0.25", f"[{_g(low)},", f"{_g(high)}]", "3"]


def test_stats_by_tag_adjusts_over_every_group(runs) -> None:
    proc = compare_cli("stats", str(runs["three"]), "--metric", "exact", "--baseline", "right",
                       "--by", "tag", "--table", "compare")
    assert proc.returncode == 0, proc.stderr
    # wrong misses 3 early and 6 late prompts, half the 6 late ones; Holm over the 4 rows.
    p = [stats.binomtest(0, k, 0.5).pvalue if k else 1.0 for k in (3, 0, 6, 6)]
    adjusted = multipletests(p, method="holm")[1]
    cells = [(row[1], row[3], row[-4], row[-1]) for row in _tokens(proc.stdout, "right")]
    assert cells == [
        ("wrong", "early", f"{adjusted[0]:.4f}", "0/3/3"),
        ("half", "early", f"{adjusted[1]:.4f}", "0/0/6"),
        ("wrong", "late", f"{adjusted[2]:.4f}", "0/6/0"),
        ("half", "late", f"{adjusted[3]:.4f}", "0/6/0"),
    ]
    assert proc.stdout.splitlines()[1].split()[:5] == ["a", "b", "metric", "tag", "test"]
    assert proc.stdout.splitlines()[-1] == (
        "  no discordant prompts: both got every prompt equally right or wrong: right vs half "
        "on score_exact [early]")


def test_stats_json_and_csv_carry_every_column(runs) -> None:
    done = compare_cli("stats", str(runs["three"]), "--metric", "score_exact", "--format",
                       "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    pairs = {(r["a"], r["b"]): r for r in doc["comparison"]}
    assert set(pairs) == {("right", "wrong"), ("right", "half"), ("wrong", "half")}
    assert pairs[("wrong", "half")]["p_value"] == pytest.approx(
        stats.binomtest(3, 3, 0.5).pvalue)
    assert doc["omnibus"][0]["test"] == "Cochran's Q"
    assert [r["deployment"] for r in doc["leaderboards"]["score_exact"]] == [
        "right", "wrong", "half"]
    table = pd.read_csv(io.StringIO(compare_cli("stats", str(runs["three"]), "--metric",
                                                "exact", "--format", "csv").stdout))
    assert list(table.columns[:4]) == ["a", "b", "metric", "test"]
    assert {"p_adj", "ci_low", "omnibus_p", "dropped"} <= set(table.columns)
    boards = pd.read_csv(io.StringIO(compare_cli(
        "stats", str(runs["three"]), "--metric", "exact", "--format", "csv", "--table",
        "leaderboard").stdout))
    assert boards[["metric", "deployment", "mean"]].values.tolist() == [
        ["score_exact", "right", 1.0], ["score_exact", "wrong", 0.25],
        ["score_exact", "half", 0.5]]
    markdown = compare_cli("stats", str(runs["three"]), "--metric", "exact", "--format",
                           "markdown", "--table", "compare").stdout
    assert "| a | b | metric | test | n |" in markdown and "leaderboard" not in markdown


def test_stats_usage_errors_name_the_flag(runs) -> None:
    run = str(runs["three"])
    cases = {
        ("--baseline", "rihgt"): f"error: --baseline rihgt: {run} has no deployment 'rihgt' "
                                 "(did you mean 'right'?); it has: right, wrong, half",
        ("--by", "tags"): "error: --by tags: column 'tags' holds lists, not one value per row; "
                          "--by tag splits by prompt tag",
        ("--by", "tga"): f"error: --by tga: {run} has no column 'tga' (did you mean 'tag'?); "
                         "use --by tag (prompt tags) or a column such as a label_<key> one",
        ("--alpha", "5"): "error: compare stats: argument --alpha: must be between 0 and 1 "
                          "(e.g. 0.05), got 5",
        ("--test", "bootstrapp"): "error: compare stats: argument --test: invalid choice: "
                                  "'bootstrapp' (choose from 'auto', 'bootstrap', "
                                  "'permutation') (did you mean 'bootstrap'?)",
    }
    for args, expected in cases.items():
        assert _one_line_error(compare_cli("stats", run, *args)) == expected, args
    line = _one_line_error(compare_cli("stats", run, "--metric", "exatc"))
    assert line.startswith(f"error: --metric exatc: {run} has no metric column 'exatc' (did "
                           "you mean 'score_exact'?); it has: ")


def test_stats_of_one_deployment_is_its_leaderboard(runs) -> None:
    proc = compare_cli("stats", str(runs["fast"]), "--metric", "exact")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[:3] == [
        "one deployment (model): nothing to compare it with", "",
        "leaderboard: score_exact (binary; higher is better; mean over prompts, repeats "
        "averaged within a prompt; Wilson interval; rank 1 is best)"]


def test_diff_gate_exits_1_when_significantly_worse(runs) -> None:
    old, new = str(runs["old"]), str(runs["new"])
    proc = compare_cli("diff", old, new, "--metric", "exact", "--fail-if-worse", "exact")
    assert proc.returncode == 1, proc.stderr
    # model: right → wrong, 9 prompts lost; other: half → half, nothing changed.
    p_model = stats.binomtest(0, 9, 0.5).pvalue
    p_adj = multipletests([p_model, 1.0], method="holm")[1][0]
    # The interval is the library's (checked in tests/stats): the gate prints what diff() gave.
    ci = compare.stats.diff(compare.Results.load(runs["old"]), compare.Results.load(runs["new"]),
                            metrics="score_exact").set_index("deployment").loc["model"]
    assert proc.stderr.splitlines() == [
        f"worse: score_exact for model: 1 → 0.25 (diff -0.75, 95% CI {_g(ci.ci_low)}"
        f" to {_g(ci.ci_high)}; p_adj {p_adj:.4f}; higher is better)",
        "regression: the new run is significantly worse on score_exact (Holm over 2 "
        "comparisons, alpha 0.05)",
    ]
    assert proc.stdout.splitlines()[0] == (f"new run ({new}) vs old run ({old}), paired by "
                                           "prompt and deployment:")
    assert _tokens(proc.stdout, "model")[0][:6] == ["model", "score_exact", "McNemar", "exact",
                                                    "12", "1"]
    # The same change read backwards is an improvement: the gate respects the direction.
    back = compare_cli("diff", new, old, "--metric", "exact", "--fail-if-worse", "exact")
    assert back.returncode == 0, back.stderr
    assert back.stderr == ("no significant regression on score_exact (Holm over 2 comparisons, "
                           "alpha 0.05)\n")
    same = compare_cli("diff", old, str(runs["same"]), "--fail-if-worse", "exact", "--format",
                       "json")
    assert same.returncode == 0, same.stderr
    doc = json.loads(same.stdout)
    assert doc["exit_code"] == 0 and doc["fail_if_worse"] == ["score_exact"]
    assert {r["metric"] for r in doc["comparison"]} >= {"score_exact", "latency_s"}


def test_diff_gate_on_latency_says_how_many_times_slower(runs) -> None:
    proc = compare_cli("diff", str(runs["fast"]), str(runs["slower"]), "--fail-if-worse",
                       "latency_s", "--format", "csv")
    assert proc.returncode == 1, proc.stderr
    first, last = proc.stderr.splitlines()
    assert re.fullmatch(r"worse: latency_s for model: [\d.]+× the old run \([\d.]+ → [\d.]+; "
                        r"95% CI [\d.]+× to [\d.]+×; p_adj [<\d.]+; lower is better\)", first)
    assert last.startswith("regression: the new run is significantly worse on latency_s (Holm "
                           "over ")
    table = pd.read_csv(io.StringIO(proc.stdout))
    row = table[table["metric"] == "latency_s"].iloc[0]
    assert row["ratio"] > 2 and bool(row["significant"])  # 60 ms TTFT against 2 ms


def test_diff_usage_errors(runs, tmp_path) -> None:
    old, new = str(runs["old"]), str(runs["new"])
    scored = compare_cli("score", new, "--score", "f1")
    assert scored.returncode == 0, scored.stderr
    assert _one_line_error(compare_cli("diff", old, new, "--fail-if-worse", "f1")) == (
        f"error: --fail-if-worse f1: {old} has no metric column 'score_f1'; score this run too "
        f"(compare score {old} --score ...)")
    assert _one_line_error(compare_cli("diff", old, str(runs["three"]))) == (
        "error: the two runs share no deployment name: old has model, other; new has right, "
        "wrong, half")
    assert _one_line_error(compare_cli("diff", old)) == (
        "error: compare diff: the following arguments are required: NEW_RUN")
