"""`compare app` (compare.voila) without a browser: parser, app notebook, endpoint from the
environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from compare import voila
from compare.explorer import Explorer


def test_parser_defaults_and_options() -> None:
    args = voila.build_parser().parse_args([])
    assert args.port == 8866 and args.token is None and not args.no_token
    args = voila.build_parser().parse_args(
        ["--port", "0", "--no-token", "--only", "sim-fast,sim-slow", "--out", "x"])
    assert args.port == 0 and args.no_token and args.only == ["sim-fast", "sim-slow"]


def test_cli_delegates_app_help() -> None:
    done = subprocess.run([sys.executable, "-m", "compare", "app", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Voila" in done.stdout and "--token" in done.stdout and "127.0.0.1" in done.stdout


def test_app_notebook_holds_no_endpoint_or_key(tmp_path: Path) -> None:
    path = voila.write_app_notebook(tmp_path)
    nb = nbformat.read(path, as_version=4)
    assert [c.cell_type for c in nb.cells] == ["markdown", "code"]
    code = nb.cells[1].source
    assert "explorer_from_env()" in code
    assert "http" not in code and "key" not in code.lower()


def test_env_endpoint_unset_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(voila.ENV_URL, raising=False)
    assert voila.env_endpoint() is None


def test_env_endpoint_asks_the_server_for_names(sim_endpoint, monkeypatch) -> None:
    monkeypatch.setenv(voila.ENV_URL, sim_endpoint.url + "/")
    monkeypatch.setenv(voila.ENV_KEY, sim_endpoint.api_key)
    monkeypatch.delenv(voila.ENV_NAMES, raising=False)
    endpoint = voila.env_endpoint()
    assert endpoint is not None
    assert endpoint.url == sim_endpoint.url
    assert sorted(endpoint.deployment_names) == sorted(sim_endpoint.deployment_names)
    assert sim_endpoint.api_key not in repr(endpoint)
    monkeypatch.setenv(voila.ENV_NAMES, "sim-fast")
    assert voila.env_endpoint().deployment_names == ["sim-fast"]  # type: ignore[union-attr]


async def test_explorer_from_env(sim_endpoint, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv(voila.ENV_URL, sim_endpoint.url)
    monkeypatch.setenv(voila.ENV_KEY, sim_endpoint.api_key)
    monkeypatch.setenv(voila.ENV_NAMES, ",".join(sim_endpoint.deployment_names))
    monkeypatch.setenv(voila.ENV_OUT, str(tmp_path))
    monkeypatch.delenv(voila.ENV_DEPLOYMENTS_FILE, raising=False)
    explorer = voila.explorer_from_env()
    assert isinstance(explorer, Explorer)
    assert [d.name for d in explorer.deployments] == sim_endpoint.deployment_names
    assert explorer.export_dir.value == str(tmp_path)
    monkeypatch.delenv(voila.ENV_URL)
    with pytest.raises(Exception, match=voila.ENV_URL):
        voila.explorer_from_env()


async def test_app_explorer_reopens_the_newest_run(sim_endpoint, monkeypatch,
                                                   tmp_path: Path) -> None:
    # A reloaded app page gets a new kernel: it shows the run it was on, so rating continues.
    first = Explorer(endpoint=sim_endpoint, prompts=["one"], out_dir=tmp_path, max_tokens=4)
    first.select(["sim-fast"])
    first.run_clicked()
    await first.wait()
    first.run_clicked()
    newest = await first.wait()
    assert newest is not None and newest.path is not None
    (tmp_path / "export").mkdir()  # an export directory without results is not a run
    monkeypatch.setenv(voila.ENV_URL, sim_endpoint.url)
    monkeypatch.setenv(voila.ENV_KEY, sim_endpoint.api_key)
    monkeypatch.setenv(voila.ENV_NAMES, "sim-fast")
    monkeypatch.setenv(voila.ENV_OUT, str(tmp_path))
    monkeypatch.delenv(voila.ENV_DEPLOYMENTS_FILE, raising=False)
    explorer = voila.explorer_from_env()
    await explorer.wait()
    assert explorer.open_dir.value == str(newest.path)
    assert f"opened {newest.path}: 1 records" in explorer.status.value
    assert not explorer.run_button.disabled  # the app can still run
