"""Secrets: a known key is searched for in everything a run, the CLI, a notebook and the server
produce — files, frames, manifests, checkpoints, logs, exception texts, reprs, terminal output,
stored notebooks. It must be found 0 times.

Two keys: KEY is the endpoint's real key (sent by the good deployments, through the argument
and through an environment variable); WRONG is a refused key (a 401 path, whose error handling
is where keys usually leak).
"""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from compare.deployments import Deployment
from compare.deployments_file import local_deployments
from compare.endpoints import ChatRequest, EndpointPool
from compare.errors import CompareError
from compare.results import Results
from compare.runner import Backoff, arun
from compare.server.local import local_endpoint
from tests.conftest import missing_part

from ._support import REPO, python_env, sim_dep

KEY = "RELIABILITY-KEY-3f9c1a7e5b2d4c6e8a0b"
WRONG = "WRONG-KEY-7d1e9b3c5a2f4e6d8c0a"
SECRETS = (KEY, WRONG)
FAST = Backoff(base_s=0.01, cap_s=0.02)

CONFIG = {"deployments": {
    "plain": sim_dep(),
    "flaky": sim_dep({"fault": "500", "first_attempts": 1},
                     {"fault": "reset_mid_stream", "match": "cut", "rate": 1.0}),
    "filtered": sim_dep(content_filter=[{"category": "hate", "severity": "high",
                                          "terms": ["blocked"], "apply_to": "prompt"}]),
}}
PROMPTS = [{"id": "a", "prompt": "hello there"}, {"id": "b", "prompt": "please cut this"},
           {"id": "c", "prompt": "a blocked word"}]


def assert_clean(text: str | bytes, where: str) -> None:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    for secret in SECRETS:
        assert secret not in text, f"a key leaked into {where}"
        # Parts of it count too (e.g. a truncated message).
        assert secret[:16] not in text, f"part of a key leaked into {where}"


def assert_tree_clean(root: Path) -> int:
    n = 0
    for path in root.rglob("*"):
        if path.is_file():
            assert_clean(path.read_bytes(), str(path))
            if path.suffix == ".parquet":  # compressed pages: check the decoded values too
                assert_clean(pd.read_parquet(path).to_csv(), str(path))
            n += 1
    return n


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "server.log"
    with local_endpoint(config=CONFIG, api_key=KEY, log_path=log) as ep:
        yield ep


def _deployments(server: Any) -> list[Deployment]:
    deps: list[Deployment] = []
    for kind in ("azure-inference", "azure-openai", "openai"):
        for d in local_deployments(server, kind=kind, names=["plain", "flaky", "filtered"]):
            deps.append(d.replace(name=f"{d.name}-{kind}", deployment=d.name))
    base = deps[0]
    # The key from an environment variable instead of the argument.
    deps.append(base.replace(name="from-env", api_key=None, api_key_env="REL_SECRET_KEY"))
    # A refused key, through each adapter.
    for kind in ("azure-inference", "azure-openai", "openai"):
        d = local_deployments(server, kind=kind, names=["plain"])[0]
        deps.append(d.replace(name=f"refused-{kind}", api_key=WRONG, deployment="plain"))
    return deps


async def test_a_run_leaks_no_key(server, tmp_path, monkeypatch, capfd) -> None:
    monkeypatch.setenv("REL_SECRET_KEY", KEY)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # every library's debug logging, SDK request logs included
    deps = _deployments(server)
    out = tmp_path / "run"
    try:
        res = await arun(PROMPTS, deps, out=out, backoff=FAST, max_attempts=2, progress=True,
                         max_tokens=8)
        again = await arun(PROMPTS, deps, out=out, backoff=FAST, max_attempts=2, progress=False,
                           max_tokens=8)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    frame = res.frame
    statuses = set(frame["status"])
    # The run really went through the paths that carry keys and errors.
    assert {"ok", "error", "content_filtered", "incomplete"} <= statuses, statuses
    assert (frame.loc[frame["deployment"].str.startswith("refused"), "http_status"] == 401).any()
    assert (frame.loc[frame["deployment"] == "from-env", "status"] == "ok").all()

    logged = stream.getvalue()
    # The SDKs' own debug logs (request lines, headers) were really captured and searched.
    assert "azure.core" in logged and "openai" in logged, logged[:2000]
    assert_clean(logged, "log records (DEBUG, all loggers)")
    captured = capfd.readouterr()
    assert_clean(captured.out + captured.err, "stdout/stderr of the run (progress bar)")
    for results in (res, again):
        f = results.frame
        texts = (repr(results), f.to_csv(), f.to_json(date_format="iso"), repr(f), f.to_string())
        for text in texts:
            assert_clean(text, "the results frame")
        assert_clean(results.summary().to_csv(), "summary")
        assert_clean(results.wide().to_csv(), "wide view")
        assert_clean(json.dumps(results.manifest, default=str), "manifest")
    assert_clean(Results.load(out).frame.to_csv(), "Results.load")
    assert assert_tree_clean(out) >= 3  # records.jsonl, results.parquet, manifest.json, ...
    assert_clean(server.log_path.read_text(), "the server log")
    for d in deps:
        assert_clean(repr(d) + str(d) + json.dumps(d.to_dict()), f"repr/to_dict of {d.name}")


async def test_exceptions_and_reprs_leak_no_key(server, monkeypatch) -> None:
    texts: list[str] = [repr(server), str(server)]
    async with EndpointPool() as pool:
        texts.append(repr(pool))
        for kind in ("azure-inference", "azure-openai", "openai"):
            dep = local_deployments(server, kind=kind, names=["plain"])[0].replace(api_key=WRONG)
            endpoint = pool.get(dep)
            texts += [repr(endpoint), repr(endpoint.client), repr(pool)]
            for stream in (True, False):
                with pytest.raises(CompareError) as info:
                    await endpoint.chat(ChatRequest("plain", [{"role": "user", "content": "x"}],
                                                    stream=stream))
                err = info.value
                # What a notebook or a terminal shows when it propagates: the whole chain.
                texts.append("".join(traceback.format_exception(err)))
                texts += [str(err), repr(err), repr(err.args), json.dumps(err.headers),
                          repr(getattr(err, "partial", None)), repr(err.__cause__),
                          str(err.__cause__)]
    # A missing key: the error names the variable, not a value.
    monkeypatch.setenv("REL_SECRET_KEY", KEY)
    dep = Deployment(name="x", endpoint=server.url, api_key_env="REL_OTHER_VAR")
    with pytest.raises(CompareError) as info:
        dep.resolve_api_key()
    texts += [str(info.value), repr(info.value)]
    for text in texts:
        assert_clean(text, "an exception or repr")
    assert "REL_OTHER_VAR" in str(info.value)


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "compare.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_cli_output_leaks_no_key(server, tmp_path) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    target = ["--endpoint", server.url, "--kind", "azure-inference", "--deployment", "plain",
              "--deployment", "flaky", "--deployment", "filtered"]
    good = python_env(AZURE_AI_CHAT_KEY=KEY)
    bad = python_env(AZURE_AI_CHAT_KEY=WRONG)
    out = tmp_path / "cli-run"
    procs = [
        _cli("run", "-p", str(prompts), *target, "-o", str(out), "--max-attempts", "2",
             env=good),
        _cli("summary", str(out), env=good),
        _cli("summary", str(out), "--format", "json", env=good),
        _cli("deployments", *target, env=good),
        _cli("run", "-p", str(prompts), *target, "-o", str(tmp_path / "refused"), env=bad),
        _cli("deployments", *target, env=bad),
    ]
    assert procs[0].returncode in (0, 1), procs[0].stderr
    assert procs[4].returncode != 0 and "401" in procs[4].stderr + procs[4].stdout
    for proc in procs:
        assert_clean(proc.stdout + proc.stderr, f"CLI output of {proc.args[3:5]}")
    assert_tree_clean(tmp_path)


@pytest.mark.parametrize("how", ["env", "flag"])
def test_serve_prints_no_given_key(tmp_path, how: str) -> None:
    config = tmp_path / "deps.yaml"
    config.write_text(json.dumps({"deployments": {"plain": sim_dep()}}))
    args = [sys.executable, "-m", "compare.cli", "serve", "--deployments", str(config),
            "--port", "0"]
    env = python_env()
    if how == "env":
        env["COMPARE_SERVER_KEY"] = KEY
    else:
        args += ["--api-key", KEY]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith("compare-server listening on http://127.0.0.1:"), line
        url = line.rsplit(" ", 1)[1].strip()
        # One refused and one accepted request, so the access log has lines to check.
        asyncio.run(_two_requests(url))
        time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert_clean(line + out + err, f"compare serve output (key via {how})")
    assert "status=401" in err and "status=200" in err  # the log is really there


async def _two_requests(url: str) -> None:
    import aiohttp

    body = {"model": "plain", "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as session:
        for key in (WRONG, KEY):
            async with session.post(f"{url}/chat/completions?api-version=2024-05-01-preview",
                                    json=body, headers={"api-key": key}) as resp:
                await resp.read()


def test_a_notebook_run_leaks_no_key(server, tmp_path) -> None:
    """The Azure notebook, pointed at the local endpoint through its documented variables."""
    if importlib.util.find_spec("nbconvert") is None:
        missing_part("nbconvert", fix="pip install '.[notebook]' (make test installs it)",
                     opt_out="COMPARE_SKIP_NOTEBOOK")
    work = tmp_path / "nb"
    work.mkdir()
    shutil.copy(REPO / "notebooks" / "04-azure.ipynb", work / "04-azure.ipynb")
    env = python_env(
        AZURE_AI_CHAT_ENDPOINT=server.url, AZURE_AI_CHAT_KEY=KEY,
        AZURE_AI_CHAT_MODELS="plain,flaky",
        MPLCONFIGDIR=str(tmp_path / "mpl"), IPYTHONDIR=str(tmp_path / "ipy"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "jcfg"), JUPYTER_DATA_DIR=str(tmp_path / "jdata"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jrun"),
    )
    env.pop("COMPARE_AZURE_DEPLOYMENTS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
         "--inplace", "--ExecutePreprocessor.timeout=180", "04-azure.ipynb"],
        cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    executed = (work / "04-azure.ipynb").read_text()
    assert "comparing ['plain', 'flaky']" in executed  # it really ran against the endpoint
    assert_clean(proc.stdout + proc.stderr, "nbconvert output")
    assert (work / "runs" / "azure" / "records.jsonl").exists()
    assert_tree_clean(work)


# Shapes of a credential in a stored notebook: a key/token assignment, a bearer header, or a
# token_urlsafe-like string (mixed case and digits; hex ids are lower-case only).
_CREDENTIAL_PATTERNS = [
    re.compile(r"(?i)(api[-_]?key|token|secret|password)[\"']?\s*[:=]\s*[\"'][^\"'\s]{12,}"),
    re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/-]{16,}"),
    re.compile(r"(?<![A-Za-z0-9_-])(?=[A-Za-z0-9_-]{32}(?![A-Za-z0-9_-]))"
               r"(?=[^\s\"]*[A-Z])(?=[^\s\"]*[a-z])(?=[^\s\"]*\d)[A-Za-z0-9_-]{32}"),
]


def _notebook_text(nb: dict[str, Any]) -> tuple[str, str]:
    """(the notebook as JSON without images, the text a reader sees: sources and text outputs).

    Base64 payloads (images, widget state) look like tokens, so the token-shape pattern only
    reads the visible text; assignments and bearer headers are searched everywhere.
    """
    visible: list[str] = []
    for cell in nb.get("cells", []):
        visible.append("".join(cell.get("source", "")))
        for output in cell.get("outputs", []):
            visible.append("".join(output.get("text", "")))
            visible += output.get("traceback", [])
            data = output.get("data", {})
            for mime in list(data):
                if mime.startswith("image/"):
                    data[mime] = "<image>"
                elif mime.startswith("text/") or mime == "application/json":
                    value = data[mime]
                    visible.append(value if isinstance(value, str) else json.dumps(value))
    return json.dumps(nb), "\n".join(visible)


def test_stored_notebooks_hold_no_key_or_token() -> None:
    notebooks = sorted((REPO / "notebooks").glob("*.ipynb"))
    assert notebooks, "no notebooks to check"
    env_values = [v for k, v in os.environ.items()
                  if re.search(r"KEY|TOKEN|SECRET|PASSWORD", k) and len(v) >= 8]
    for path in notebooks:
        whole, visible = _notebook_text(json.loads(path.read_text()))
        for value in env_values:
            assert value not in whole, f"{path.name} holds the value of an environment secret"
        for i, pattern in enumerate(_CREDENTIAL_PATTERNS):
            found = pattern.search(visible if i == 2 else whole)
            assert found is None, f"{path.name} holds something like a credential: {found[0]!r}"
