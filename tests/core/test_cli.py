"""The `compare` command line as a user runs it: subprocesses, exit codes, one-line errors,
runs against the local endpoint, and resume after the process was killed mid-run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compare.checkpoint import read_checkpoint
from compare.results import Results

CONFIG = {
    "deployments": {
        "quick": {
            "backend": "simulated",
            "simulated": {"seed": 1, "output_tokens": 4, "ttft_ms": 2, "itl_ms": 1},
        },
        "steady": {
            "backend": "simulated",
            "simulated": {"seed": 2, "output_tokens": 5, "ttft_ms": 120, "itl_ms": 5},
        },
        "shaky": {  # fails one prompt (not the first one sent)
            "backend": "simulated",
            "simulated": {"seed": 4, "output_tokens": 4, "ttft_ms": 2, "itl_ms": 1},
            "faults": [{"fault": "500", "match": "question 2"}],
        },
        "guarded": {
            "backend": "simulated",
            "simulated": {"seed": 3, "output_tokens": 4, "ttft_ms": 2, "itl_ms": 1},
            "content_filter": [{"category": "violence", "severity": "medium",
                                "terms": ["attack"], "apply_to": "prompt"}],
        },
    }
}


def compare_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "compare", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, cwd=cwd, timeout=timeout)


@pytest.fixture(scope="module")
def server():
    from compare.server.local import local_endpoint

    with local_endpoint(config=CONFIG) as ep:
        yield ep


@pytest.fixture
def prompts_file(tmp_path) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"question {i}"}) + "\n"
                            for i in range(3)))
    return path


def _target(server, *names: str) -> list[str]:
    args = ["--endpoint", server.url, "--kind", "azure-inference"]
    for n in names:
        args += ["--deployment", n]
    return args


def _key(server) -> dict[str, str]:
    return {"AZURE_AI_CHAT_KEY": server.api_key}


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize("command", ["", "run", "score", "summary", "stats", "diff", "show",
                                     "report", "deployments", "demo"])
def test_help(command: str) -> None:
    proc = compare_cli(*([command] if command else []), "--help")
    assert proc.returncode == 0, proc.stderr
    assert "usage: compare" in proc.stdout and "130" in proc.stdout


@pytest.mark.parametrize(("args", "code"), [(["--help"], 0), (["run", "--help"], 0), (["run"], 2),
                                            ([], 2)])
def test_python_m_compare_is_the_compare_script(args: list[str], code: int) -> None:
    # The console script installed by [project.scripts] and both `-m` spellings: same output.
    script = Path(sys.executable).parent / "compare"
    ways = [[str(script)], [sys.executable, "-m", "compare"], [sys.executable, "-m", "compare.cli"]]
    done = [subprocess.run([*way, *args], capture_output=True, text=True, timeout=60)
            for way in ways]
    assert {(d.returncode, d.stdout, d.stderr) for d in done} == {
        (done[0].returncode, done[0].stdout, done[0].stderr)}
    assert done[0].returncode == code and "compare" in done[0].stdout + done[0].stderr


def test_the_parser_is_light() -> None:
    # `compare --help` and a mistyped flag answer at once: the parser imports no pandas, numpy
    # or scorer; commands import what they need when they run.
    code = ("import sys; from compare.cli.parser import build_parser; build_parser(); "
            "print([m for m in ('pandas', 'numpy', 'scipy', 'compare.scorers', 'compare.stats') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("command", ["serve", "app"])
def test_delegated_help(command: str) -> None:
    proc = compare_cli(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout


def test_usage_errors_are_one_line() -> None:
    assert "--prompts" in _one_line_error(compare_cli("run"))
    assert "--repeats" in _one_line_error(compare_cli("run", "-p", "x.jsonl", "--repeats", "0"))
    assert "invalid choice" in _one_line_error(compare_cli("run", "-p", "x", "--kind", "azure"))
    assert compare_cli().returncode == 2


def test_bad_files_are_named(tmp_path, prompts_file) -> None:
    deps = tmp_path / "deployments.yaml"
    deps.write_text("deployments:\n  - name: a\n    endpoint: http://127.0.0.1:9\n"
                    "    temprature: 0\n")
    line = _one_line_error(compare_cli("run", "-p", str(prompts_file), "-d", str(deps)))
    assert f"{deps}:4" in line and "temprature" in line
    bad_prompts = tmp_path / "bad.jsonl"
    bad_prompts.write_text('{"prompt": "ok"}\n{"promt": "typo"}\n')
    line = _one_line_error(compare_cli("run", "-p", str(bad_prompts), "--local"))
    assert f"{bad_prompts}:2" in line and "promt" in line
    line = _one_line_error(compare_cli("summary", str(tmp_path / "nope")))
    assert "nope" in line


def _without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}


def test_missing_key_names_the_flag_and_the_variable(tmp_path, prompts_file) -> None:
    def error(*args: str, env: dict[str, str]) -> str:
        proc = subprocess.run([sys.executable, "-m", "compare", "run", "-p", str(prompts_file),
                               *args], capture_output=True, text=True, env=env, timeout=60)
        return _one_line_error(proc)

    target = ["--endpoint", "http://127.0.0.1:9", "--kind", "azure-openai"]
    env = _without("AZURE_OPENAI_API_KEY", "CLI_TEST_KEY")
    assert error(*target, "--deployment", "gpt", env=env) == (
        "error: no API key for deployment 'gpt': set the environment variable "
        "AZURE_OPENAI_API_KEY, or name another one with --api-key-env NAME before --deployment "
        "(keys never go on the command line)")
    assert error(*target, "--api-key-env", "CLI_TEST_KEY", "--deployment", "gpt", env=env) == (
        "error: no API key for deployment 'gpt': the environment variable CLI_TEST_KEY "
        "(--api-key-env) is not set")
    deps = tmp_path / "deps.yaml"
    deps.write_text("deployments:\n  - name: a\n    endpoint: http://127.0.0.1:9\n")
    assert error("-d", str(deps), env=_without("AZURE_AI_CHAT_KEY")) == (
        "error: no API key for deployment 'a': set the environment variable AZURE_AI_CHAT_KEY "
        f"(or name another one with api_key_env: in {deps})")
    deps.write_text("deployments:\n  - name: a\n    endpoint: http://127.0.0.1:9\n"
                    "    api_key_env: CLI_TEST_KEY\n")
    assert error("-d", str(deps), env=env) == (
        "error: no API key for deployment 'a': the environment variable CLI_TEST_KEY "
        f"(api_key_env in {deps}) is not set")
    # A key where a variable name belongs is refused without being echoed.
    secret = "sk-abc123def456ghi789"
    line = error(*target, "--api-key-env", secret, "--deployment", "gpt", env=env)
    assert line == ("error: compare run: argument --api-key-env: give the name of an environment "
                    "variable (letters, digits and _, e.g. MY_AZURE_KEY) that holds the key, not "
                    "the key itself")


def test_unknown_flags_and_commands_get_a_did_you_mean() -> None:
    cases = {
        ("run", "-p", "x.jsonl", "--model", "gpt-4o"):
            "error: compare run: unrecognized argument --model (did you mean '--deployment'?)",
        ("run", "-p", "x.jsonl", "--temprature", "0", "--outt", "d"):
            "error: compare run: unrecognized arguments --temprature (did you mean "
            "'--temperature'?), --outt (did you mean '--out'?)",
        ("deployments", "--key", "k"):
            "error: compare deployments: unrecognized argument --key (did you mean "
            "'--api-key-env'?)",
        ("rn",):
            "error: compare: argument COMMAND: invalid choice: 'rn' (choose from 'run', 'score', "
            "'summary', 'stats', 'diff', 'show', 'report', 'deployments', 'demo', 'serve', "
            "'app') (did you mean 'run'?)",
        ("summary", "runs/a", "runs/b"): "error: compare summary: unrecognized argument runs/b",
    }
    for args, expected in cases.items():
        assert _one_line_error(compare_cli(*args)) == expected, args


def test_one_deployment_through_two_kinds_needs_two_display_names(server, tmp_path,
                                                                  prompts_file) -> None:
    env = {"CLI_SERVER_KEY": server.api_key}
    twice = compare_cli("run", "-p", str(prompts_file), "--api-key-env", "CLI_SERVER_KEY",
                        "--endpoint", server.url, "--kind", "azure-inference", "--deployment",
                        "quick", "--endpoint", server.url + "/openai/v1", "--kind", "openai",
                        "--deployment", "quick", env=env)
    assert _one_line_error(twice) == (
        "error: deployment name 'quick' is given 2 times; give each a display name with "
        "NAME=DISPLAY, e.g. --deployment quick=quick-azure-inference and --deployment "
        "quick=quick-openai")
    out = tmp_path / "two-kinds"
    proc = compare_cli("run", "-p", str(prompts_file), "--api-key-env", "CLI_SERVER_KEY",
                       "--endpoint", server.url, "--kind", "azure-inference", "--deployment",
                       "quick=quick-inference", "--endpoint", server.url + "/openai/v1",
                       "--kind", "openai", "--deployment", "quick=quick-openai", "-o", str(out),
                       "--no-charts", env=env)
    assert proc.returncode == 0, proc.stderr
    frame = Results.load(out).frame
    kinds = {d: set(g) for d, g in frame.groupby("deployment")["endpoint_kind"]}
    assert kinds == {"quick-inference": {"azure-inference"}, "quick-openai": {"openai"}}
    assert (frame["status"] == "ok").all()
    manifest = (out / "manifest.json").read_text()
    assert '"api_key_env": "CLI_SERVER_KEY"' in manifest and server.api_key not in manifest


def test_deployments_yaml_in_the_current_folder_is_announced(server, tmp_path) -> None:
    (tmp_path / "deployments.yaml").write_text(
        f"deployments:\n  - name: quick\n    endpoint: {server.url}\n")
    proc = compare_cli("deployments", "--no-info", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ("using ./deployments.yaml (found in the current folder; --deployments "
                           "FILE, --deployment NAME or --local choose others)\n")
    assert proc.stdout.splitlines()[0] == "quick"


def test_deployments_check_each_and_exit_non_zero(server) -> None:
    ok = compare_cli("deployments", *_target(server, "quick"), env=_key(server))
    assert ok.returncode == 0 and ok.stderr == ""
    assert re.search(r"^  check: ok: answered a 1-token request in \d+\.\d\d s$", ok.stdout,
                     re.MULTILINE), ok.stdout
    wrong = compare_cli("deployments", *_target(server, "quick"),
                        env={"AZURE_AI_CHAT_KEY": "not-the-key-0123456789"})
    assert wrong.returncode == 1
    assert wrong.stderr == ("quick: key refused (HTTP 401): check the key in the environment "
                            "variable AZURE_AI_CHAT_KEY\n")
    assert "  check: FAILED: key refused (HTTP 401)" in wrong.stdout
    ghost = compare_cli("deployments", *_target(server, "quick", "ghost"), env=_key(server))
    assert ghost.returncode == 1
    assert ghost.stderr == (f"ghost: no deployment 'ghost' at {server.url} (HTTP 404): check the "
                            "deployment name, the endpoint URL and the kind (azure-inference)\n")
    gone = compare_cli("deployments", "--endpoint", "http://127.0.0.1:9", "--deployment", "quick",
                       env=_key(server))
    assert gone.returncode == 1 and len(gone.stderr.splitlines()) == 1
    assert gone.stderr.startswith("quick: unreachable: ")
    assert gone.stderr.endswith(": check the endpoint URL and that the service is up\n")
    keyless = compare_cli("deployments", "--endpoint", server.url, "--api-key-env",
                          "CLI_TEST_NO_SUCH_KEY", "--deployment", "quick")
    assert keyless.returncode == 2
    assert keyless.stderr == ("quick: no API key: the environment variable CLI_TEST_NO_SUCH_KEY "
                              "(--api-key-env) is not set\n")


def test_run_summary_and_deployments(server, tmp_path, prompts_file) -> None:
    out = tmp_path / "runs" / "one"
    proc = compare_cli("run", "-p", str(prompts_file), *_target(server, "quick", "steady"),
                       "--repeats", "2", "--out", str(out), env=_key(server))
    assert proc.returncode == 0, proc.stderr
    assert "quick" in proc.stdout and "steady" in proc.stdout
    assert "ttft_s: TTFT (s): send → first content chunk" in proc.stdout
    assert proc.stdout.endswith(f"\nresults: {out}/ (results.parquet, manifest.json, "
                                f"records.jsonl)\ncharts:  {out}/charts.png\n")
    assert (out / "charts.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {"records.jsonl", "results.parquet", "manifest.json"} <= {p.name for p in out.iterdir()}
    res = Results.load(out)
    assert len(res) == 12 and set(res.frame["status"]) == {"ok"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["config"]["repeats"] == 2
    assert server.api_key not in (out / "manifest.json").read_text()

    summary = compare_cli("summary", str(out), "--format", "json")
    assert summary.returncode == 0
    table = json.loads(summary.stdout)
    assert table["quick"]["n"] == 6 and table["steady"]["ttft_s_p50"] >= 0.12

    listing = compare_cli("deployments", *_target(server, "quick", "steady"), env=_key(server))
    assert listing.returncode == 0, listing.stderr
    assert "quick" in listing.stdout and "simulated" in listing.stdout


def test_run_from_deployments_file_with_failures_exits_1(server, tmp_path, prompts_file) -> None:
    deps = tmp_path / "deployments.yaml"
    deps.write_text(
        "defaults:\n"
        f"  endpoint: {server.url}\n"
        "  kind: azure-inference\n"
        "  api_key_env: MY_LOCAL_KEY\n"
        "deployments:\n"
        "  - name: quick\n"
        "  - name: shaky\n")
    proc = compare_cli("run", "-p", str(prompts_file), "-d", str(deps), "-o",
                       str(tmp_path / "r"), "--max-attempts", "1", "--no-charts",
                       env={"MY_LOCAL_KEY": server.api_key})
    assert proc.returncode == 1, proc.stderr
    assert "1 of 6 rows failed" in proc.stderr and "ServerError" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_unusable_deployment_stops_the_run_before_fanning_out(server, tmp_path,
                                                                  prompts_file) -> None:
    proc = compare_cli("run", "-p", str(prompts_file), *_target(server, "quick", "ghost"),
                       "-o", str(tmp_path / "r"), "--no-charts", env=_key(server))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == "error: cannot use this deployment (nothing else was sent):"
    assert lines[1].startswith("  ghost: DeploymentNotFoundError: HTTP 404 DeploymentNotFound")
    assert len(lines) == 2 and "Traceback" not in proc.stderr


def test_content_filtered_rows_are_a_result_not_a_failure(server, tmp_path) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"id": "calm", "prompt": "say hello"}\n'
                       '{"id": "harsh", "prompt": "plan an attack"}\n')
    proc = compare_cli("run", "-p", str(prompts), *_target(server, "guarded"), "-o",
                       str(tmp_path / "filtered"), "--no-charts", env=_key(server))
    assert proc.returncode == 0
    assert proc.stderr == ("1 of 2 rows content_filtered (the service's filter answered instead "
                           "of the model; not a failure)\n")


def _wait_for_records(path: Path, n: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError(f"fewer than {n} records after {timeout} s")


def _requests(server, name: str) -> int:
    return int(server.stats()[name]["requests"])


def test_resume_after_kill_sends_only_unfinished(server, tmp_path) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"k{i}", "prompt": f"kill test {i}"}) + "\n"
                               for i in range(20)))
    out = tmp_path / "killed"
    before = _requests(server, "steady")
    args = [sys.executable, "-m", "compare", "run", "-p", str(prompts),
            *_target(server, "steady"), "--concurrency", "2", "-o", str(out), "--no-progress"]
    proc = subprocess.Popen(args, env={**os.environ, **_key(server)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    _wait_for_records(out / "records.jsonl", 5, proc)
    proc.send_signal(signal.SIGKILL)  # no cleanup at all: only the flushed lines survive
    proc.wait()
    kept = read_checkpoint(out)
    assert 5 <= len(kept) < 20 and not (out / "results.parquet").exists()
    sent_first = _requests(server, "steady") - before
    assert len(kept) <= sent_first <= len(kept) + 2  # at most 2 were in flight

    again = compare_cli(*args[3:], env=_key(server))
    assert again.returncode == 0, again.stderr
    res = Results.load(out)
    assert len(res) == 20 and set(res.frame["status"]) == {"ok"}
    assert int(res.frame["cached"].sum()) == len(kept)
    assert set(res.frame.loc[res.frame["cached"], "prompt_id"]) == {r["prompt_id"] for r in kept}
    # Finished requests were not sent again: the rerun sent exactly the rest.
    assert _requests(server, "steady") - before - sent_first == 20 - len(kept)
    assert res.summary().loc["steady", "n_timing"] == 20 - len(kept)


def test_ctrl_c_exits_130_and_keeps_records(server, tmp_path) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"c{i}", "prompt": f"ctrl c {i}"}) + "\n"
                               for i in range(30)))
    out = tmp_path / "interrupted"
    args = [sys.executable, "-m", "compare", "run", "-p", str(prompts),
            *_target(server, "steady"), "--concurrency", "2", "-o", str(out)]
    proc = subprocess.Popen(args, env={**os.environ, **_key(server)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_records(out / "records.jsonl", 3, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "run the same command again to resume" in err
    kept = read_checkpoint(out)
    assert 3 <= len(kept) < 30
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    assert len(Results.load(out)) == len(kept)


def test_deployments_of_the_local_endpoint() -> None:
    proc = compare_cli("deployments", "--local", "--only", "sim-fast,sim-slow")
    assert proc.returncode == 0, proc.stderr
    assert "sim-fast" in proc.stdout and "sim-slow" in proc.stdout
    assert "info: " in proc.stdout and "simulated" in proc.stdout


@pytest.mark.llama
def test_demo_with_real_models(tmp_path) -> None:
    out = tmp_path / "demo"
    proc = compare_cli("demo", "--out", str(out), "--only", "smollm2,gemma3-base,sim-fast",
                       "--max-tokens", "8", "--no-progress", timeout=600)
    assert proc.returncode == 0, proc.stderr
    for name in ("smollm2", "gemma3-base", "sim-fast", "latency_s_p50"):
        assert name in proc.stdout
    assert {"results.parquet", "manifest.json", "records.jsonl", "charts.png"} <= {
        p.name for p in out.iterdir()}
    assert (out / "charts.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = Results.load(out)
    real = res.frame[res.frame["deployment"].isin(["smollm2", "gemma3-base"])]
    assert (real["status"] == "ok").all() and real["output"].str.strip().str.len().gt(0).all()
    assert not real["model"].str.contains("simulated").any()
    assert res.manifest["packages"]["llama-cpp-python"]
    # One request at a time per real model, as the endpoint declares (said in the output);
    # illustrative prices → cost; a mean score per deployment for prompts with a reference.
    assert ("smollm2, gemma3-base: the local endpoint declares 1 request at a time each"
            in proc.stdout)
    assert "ILLUSTRATIVE prices" in proc.stdout
    assert res.frame["cost"].gt(0).all()
    by_name = {d["name"]: d for d in res.manifest["deployments"]}
    assert [by_name[n]["max_concurrent_requests"] for n in ("smollm2", "gemma3-base",
                                                            "sim-fast")] == [1, 1, None]
    assert all(by_name[n]["concurrency"] is None for n in by_name)
    header = proc.stdout.splitlines()[0].split()
    assert header[-2:] == ["score_f1_mean", "score_includes_mean"]
    assert res.frame["score_includes"].notna().sum() == 3 * 5


def test_demo_prices_everything_and_its_notes_say_what_the_runner_does() -> None:
    from types import SimpleNamespace

    from compare.cli.demo import (
        DEMO_PRICE_LABEL,
        DEMO_PRICES_PER_1K,
        demo_deployments,
        demo_notes,
    )
    from compare.deployments import Deployment
    from compare.prompts import demo_prompts
    from compare.scorers import default_scorers_for

    names = ["smollm2", "smollm2-precise", "gemma3-base", "sim-fast", "sim-slow"]
    # Anything with .url/.api_key/.deployment_names is a local endpoint to local_deployments.
    ep = SimpleNamespace(url="http://127.0.0.1:9", api_key="k" * 24, deployment_names=names)
    deps = {d.name: d for d in demo_deployments(ep)}
    assert list(deps) == names
    for name, dep in deps.items():
        assert (dep.price_input_per_1k, dep.price_output_per_1k) == DEMO_PRICES_PER_1K[name]
        assert dep.labels["prices"] == DEMO_PRICE_LABEL and dep.concurrency is None
    # What a running local endpoint declares (local_deployments copies it): one generation at
    # a time per loaded llama model, smollm2 and smollm2-precise on the same one.
    shared = "smollm2+smollm2-precise"
    declared = [Deployment(name="smollm2", endpoint=ep.url, max_concurrent_requests=1,
                           capacity_group=shared),
                Deployment(name="smollm2-precise", endpoint=ep.url, max_concurrent_requests=1,
                           capacity_group=shared),
                Deployment(name="gemma3-base", endpoint=ep.url, max_concurrent_requests=1),
                Deployment(name="sim-fast", endpoint=ep.url,
                           labels={"model": "fast-simulated"})]
    scorers = default_scorers_for(demo_prompts())
    assert [s.name for s in scorers] == ["f1", "includes"]
    assert demo_notes(declared, scorers, 5).splitlines() == [
        "notes:",
        "  gemma3-base: the local endpoint declares 1 request at a time each (a loaded llama.cpp "
        "model generates one answer at a time) and the runner sends no more, so TTFT measures "
        "the model, not a queue on the server.",
        "  smollm2 and smollm2-precise share one loaded model: 1 request at a time across them "
        "(the runner waits before the send, so the wait is not in their TTFT).",
        "  smollm2-precise is greedy and reproducible: it evaluates the prompt token by token "
        "with a fresh cache, so its TTFT is longer by design.",
        "  scores: f1 and includes on the 5 bundled prompts with a reference (chosen from their "
        "tags by compare.scorers.default_scorers_for); the others have no score and are left "
        "out of the means.",
        "  sim-fast: simulated, answering placeholder text, so their scores are 0 by design.",
    ]


def test_demo_on_simulated_deployments_prints_cost_and_definitions(tmp_path) -> None:
    out = tmp_path / "demo"
    proc = compare_cli("demo", "--out", str(out), "--only", "sim-fast", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    header, row = proc.stdout.splitlines()[0], proc.stdout.splitlines()[2]
    assert header.split()[-3:] == ["cost", "score_f1_mean", "score_includes_mean"]
    assert row.split()[0] == "sim-fast"
    cells = dict(zip(header.split(), row.split()[1:], strict=True))
    assert cells["error_rate"] == "0.0%" and cells["n"] == cells["ok"] == "8"
    assert cells["completion_tokens"].isdigit() and float(cells["cost"]) > 0
    # Placeholder text never contains a reference: 0, said so in the notes.
    assert cells["score_includes_mean"] == "0.000"
    assert ("  sim-fast: simulated, answering placeholder text, so their scores are 0 by "
            "design.") in proc.stdout.splitlines()
    for needle in ("n: rows", "error_rate: share of rows that failed (error, timeout, "
                   "rate_limited, incomplete; content_filtered is a result, not a failure)",
                   "ttft_s: TTFT (s)",
                   "completion_tokens: total", "cost: total", "ILLUSTRATIVE prices"):
        assert needle in proc.stdout
    assert "request at a time" not in proc.stdout  # no real model in this run


def test_run_on_the_local_endpoint_with_another_kind(tmp_path, prompts_file) -> None:
    out = tmp_path / "local"
    proc = compare_cli("run", "-p", str(prompts_file), "--local", "--only", "sim-fast",
                       "--kind", "openai", "-o", str(out), "--no-stream")
    assert proc.returncode == 0, proc.stderr
    f = Results.load(out).frame
    assert (f["endpoint_kind"] == "openai").all() and (~f["streamed"]).all()
    assert f["ttft_s"].isna().all() and f["latency_s"].notna().all()


@pytest.mark.parametrize("content", [
    b"deployments:\n  - name: caf\xe9\n    endpoint: http://127.0.0.1:9\n",  # latin-1
    b"deployments:\n  - name: a\x1f\n",  # a control character
    b"[" * 5000 + b"]" * 5000,  # nesting deeper than the parser's recursion
])
def test_unreadable_deployments_file_is_one_line(tmp_path, prompts_file, content: bytes) -> None:
    path = tmp_path / "deployments.yaml"
    path.write_bytes(content)
    line = _one_line_error(compare_cli("run", "-p", str(prompts_file), "-d", str(path)))
    assert str(path) in line
