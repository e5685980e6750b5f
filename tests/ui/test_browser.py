"""Real browser: headless Debian Chromium drives the explorer in JupyterLab and in `compare app`.

Each test starts its own server on 127.0.0.1 with temporary Jupyter/IPython dirs, opens the page,
selects two deployments, clicks Run, waits for the side-by-side table and a chart image, and saves
a screenshot into the test's tmp_path (copied to test-output/ in the repo, which git ignores).
The rate tab's votes are clicked in the page, the page reloaded (a new kernel in Voila), and the
votes found again on disk and in the counter.

Chromium is Debian's (`make browser` installs it; playwright drives it via executable_path, no
downloaded browser build). Without it these tests fail, saying so, unless COMPARE_SKIP_BROWSER=1
asks to skip them: a browser test that silently skips would pass CI without testing anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import conftest
from tests.conftest import missing_part

SKIP_VARIABLE = "COMPARE_SKIP_BROWSER"
REPO = Path(__file__).resolve().parents[2]
NAMES = ["smollm2-precise", "sim-fast", "sim-slow"]
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
LAB_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false",
                                                    "checkForUpdates": False},
    # Keep every cell in the DOM so selectors find outputs below the fold.
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
}

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


def find_chromium(fallback: Path = Path("/usr/bin/chromium")) -> Path | None:
    """Debian's chromium on PATH (as the Makefile looks for it), else at `fallback`."""
    found = shutil.which("chromium")
    if found:
        return Path(found)
    return fallback if fallback.is_file() else None


def chromium_or_fail(find: Callable[[], Path | None] = find_chromium) -> Path:
    """The chromium to drive; without one, fail (or skip when COMPARE_SKIP_BROWSER=1)."""
    found = find()
    if found is not None:
        return found
    missing_part("chromium (on PATH or at /usr/bin/chromium)",
                 fix="install Debian's chromium (`make browser`, or apt-get install chromium)",
                 opt_out=SKIP_VARIABLE)


def test_chromium_is_found_on_path_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on_path = tmp_path / "bin" / "chromium"
    on_path.parent.mkdir()
    on_path.write_text("#!/bin/sh\n")
    on_path.chmod(0o755)
    fallback = tmp_path / "usr-bin-chromium"
    fallback.write_text("")
    monkeypatch.setenv("PATH", str(on_path.parent))
    assert find_chromium(fallback) == on_path
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert find_chromium(fallback) == fallback
    assert find_chromium(tmp_path / "nowhere") is None


def test_missing_chromium_fails_unless_told_to_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "OPT_OUTS_USED", Counter())  # not a real skip of this run
    monkeypatch.delenv(SKIP_VARIABLE, raising=False)
    with pytest.raises(pytest.fail.Exception, match=r"make browser.*COMPARE_SKIP_BROWSER=1"):
        chromium_or_fail(lambda: None)
    monkeypatch.setenv(SKIP_VARIABLE, "1")
    with pytest.raises(pytest.skip.Exception, match="skipped because COMPARE_SKIP_BROWSER=1"):
        chromium_or_fail(lambda: None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def jupyter_env(root: Path, **extra: str) -> dict[str, str]:
    """Environment with every Jupyter / IPython / matplotlib dir under `root`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "COMPARE_"))}
    for name, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                      ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython"),
                      ("MPLCONFIGDIR", "mpl"), ("JUPYTERLAB_SETTINGS_DIR", "lab-user-settings"),
                      ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces")):
        (root / sub).mkdir(parents=True, exist_ok=True)
        env[name] = str(root / sub)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.2)
    raise AssertionError(f"server not listening after {timeout} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def fresh_copy(source: Path, target: Path) -> None:
    """The notebook without stored outputs or widget state, so every output the test waits for
    comes from this run (the stored "explorer ok" would otherwise match at once)."""
    import nbformat

    nb = nbformat.read(source, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, target)


def save_screenshot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    out = REPO / "test-output" / "browser"
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, out / name)
    return path


@pytest.fixture(scope="module")
def endpoint():
    """One local endpoint for the JupyterLab test; its kernel reuses it through env vars."""
    from compare.server.local import local_endpoint

    with local_endpoint(only=NAMES) as ep:
        yield ep


@pytest.fixture
def browser_page(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator:
    executable = chromium_or_fail()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.errors = errors  # type: ignore[attr-defined]
        # Kept in the repo's (ignored) test-output/: pytest rotates old tmp dirs away.
        failures = REPO / "test-output" / "browser"
        failures.mkdir(parents=True, exist_ok=True)
        page.failure_path = failures / f"failed-{request.node.name}.png"  # type: ignore[attr-defined]
        try:
            yield page
        finally:
            browser.close()


def drive_explorer(page, expect, status_text: str) -> None:
    """Select sim-fast + sim-slow, click Run, wait for the table and a chart image."""
    try:
        _drive_explorer(page, expect, status_text)
    except BaseException:
        with contextlib.suppress(Exception):  # what the page showed while the server still ran
            page.screenshot(path=str(page.failure_path), full_page=True)
        raise


def _drive_explorer(page, expect, status_text: str) -> None:
    select = page.locator(".widget-select-multiple select").first
    expect(select).to_be_visible(timeout=120_000)
    select.select_option(["sim-fast", "sim-slow"])
    page.locator("button.widget-button:text-is('Run')").first.click()
    expect(page.locator(".widget-html", has_text=status_text).first).to_be_visible(
        timeout=120_000)
    table = page.locator("table.cmp-side-by-side").first
    expect(table.locator("th", has_text="sim-slow")).to_be_visible(timeout=10_000)
    expect(table.locator("th", has_text="sim-fast")).to_be_visible()
    assert table.locator("tbody tr").count() >= 3
    page.locator(".widget-tab .lm-TabBar-tab", has_text="charts").first.click()
    image = page.locator(".widget-tab img.widget-image").first
    expect(image).to_be_visible(timeout=30_000)
    width = image.evaluate("img => img.naturalWidth")
    assert width > 300, f"chart image not loaded (naturalWidth={width})"


def test_explorer_in_jupyterlab(endpoint, browser_page, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    root = tmp_path / "lab"
    root.mkdir()
    fresh_copy(REPO / "notebooks" / "02-explorer.ipynb", root / "explorer-copy.ipynb")
    settings = tmp_path / "lab-settings"
    settings.mkdir()
    (settings / "overrides.json").write_text(json.dumps(LAB_OVERRIDES))
    port, token = free_port(), secrets.token_hex(16)
    env = jupyter_env(tmp_path / "jupyter", COMPARE_ENDPOINT_URL=endpoint.url,
                      COMPARE_ENDPOINT_KEY=endpoint.api_key)
    log = tmp_path / "jupyterlab.log"
    with log.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
             "--ip=127.0.0.1", f"--port={port}", f"--ServerApp.root_dir={root}",
             f"--LabApp.app_settings_dir={settings}"],
            env={**env, "JUPYTER_TOKEN": token}, stdout=log_file, stderr=subprocess.STDOUT,
            cwd=root)
    try:
        wait_for_port(port, proc, log)
        status = f"http://127.0.0.1:{port}/api/status?token={token}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(status, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        page = browser_page
        page.goto(f"http://127.0.0.1:{port}/lab/tree/explorer-copy.ipynb?token={token}")
        expect(page.locator("#jp-main-statusbar")).to_contain_text("Idle", timeout=90_000)
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        # The notebook's own programmatic run ends with this assert cell's output.
        # (in an output area: the cell's source contains the same words)
        expect(page.locator(".jp-OutputArea-output", has_text="explorer ok").first).to_be_visible(
            timeout=120_000)
        expect(page.locator(".jp-OutputArea-output", has_text="endpoint left running").first
               ).to_be_visible(timeout=30_000)
        drive_explorer(page, expect, "run #2 done: 6 records")
        shot = save_screenshot(page, tmp_path, "jupyterlab-explorer.png")
        assert shot.stat().st_size > 50_000
        assert not [e for e in page.errors if "widget" in e.lower()], page.errors
    finally:
        stop(proc)


def start_app(tmp_path: Path, token: str) -> tuple[subprocess.Popen, int, Path]:
    """`compare app` on sim-fast and sim-slow, runs under tmp_path/runs: (process, port, log)."""
    port = free_port()
    env = jupyter_env(tmp_path / "jupyter", COMPARE_APP_TOKEN=token)
    log = tmp_path / "app.log"
    with log.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "compare.voila", "--port", str(port), "--only",
             "sim-fast,sim-slow", "--out", str(tmp_path / "runs")],
            env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=tmp_path)
    wait_for_port(port, proc, log)
    return proc, port, log


def test_compare_app_in_voila(browser_page, tmp_path: Path) -> None:
    import psutil
    from playwright.sync_api import expect

    token = secrets.token_hex(16)
    proc, port, log = start_app(tmp_path, token)
    children: list = []
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
        assert token not in " ".join(" ".join(c.cmdline()) for c in children if c.is_running())
        page = browser_page
        page.goto(f"http://127.0.0.1:{port}/?token={token}")
        drive_explorer(page, expect, "run #1 done: 16 records")  # bundled demo set: 8 prompts
        shot = save_screenshot(page, tmp_path, "voila-app.png")
        assert shot.stat().st_size > 50_000
        assert not [e for e in page.errors if "widget" in e.lower()], page.errors
        # Export from the page writes into the app's --out directory.
        page.locator(".widget-tab .lm-TabBar-tab", has_text="export").first.click()
        page.locator("button.widget-button:text-is('Save CSV')").first.click()
        expect(page.locator(".widget-html", has_text="results.csv").first).to_be_visible(
            timeout=10_000)
        assert (tmp_path / "runs" / "results.csv").exists()
        # The "open run" tab shows a saved run directory in the same tabs.
        saved = next((tmp_path / "runs").glob("explorer-*"))
        page.locator(".widget-tab .lm-TabBar-tab", has_text="open run").first.click()
        page.locator(".widget-text input[placeholder^='runs/NAME']").first.fill(str(saved))
        page.locator("button.widget-button:text-is('Open')").first.click()
        expect(page.locator(".widget-html", has_text=f"opened {saved}: 16 records").first
               ).to_be_visible(timeout=30_000)
    finally:
        stop(proc)
    # SIGTERM unwound the app: its local endpoint and kernels are gone too.
    _gone, alive = psutil.wait_procs(children, timeout=15)
    assert not alive, f"left running: {[p.pid for p in alive]}"
    assert "compare app: serving" in log.read_text()


def tab(page, title: str):
    return page.locator(".widget-tab .lm-TabBar-tab", has_text=re.compile(f"^{title}$")).first


def counter(page, text: str):
    return page.locator(".widget-html", has_text=text).first


def test_rate_tab_votes_survive_a_reload(browser_page, tmp_path: Path) -> None:
    """Votes clicked in the app are on disk at once; a reloaded page (a new kernel) reopens the
    newest run, counts them, and shows the next pair; the compare tab ranks by them."""
    from playwright.sync_api import expect

    from compare.ratings import plan_pairs
    from compare.results import Results

    token = secrets.token_hex(16)
    proc, port, _log = start_app(tmp_path, token)
    try:
        page = browser_page
        url = f"http://127.0.0.1:{port}/?token={token}"
        page.goto(url)
        drive_explorer(page, expect, "run #1 done: 16 records")
        run_dir = next((tmp_path / "runs").glob("explorer-*"))
        pairs = plan_pairs(Results.load(run_dir).frame, seed=0)
        total = len(pairs)
        assert total >= 4
        tab(page, "rate").click()
        expect(counter(page, f"votes given: 0 / {total} pairs")).to_be_visible(timeout=10_000)
        answers = page.locator(".cmp-rate-answer")
        expect(answers.first).to_be_visible()
        assert "sim-" not in " ".join(answers.all_inner_texts())  # names hidden
        page.locator(".widget-text input[placeholder^='optional: why']").first.fill("clearer")
        page.locator("button.widget-button:text-is('A better')").first.click()
        expect(counter(page, f"votes given: 1 / {total} pairs")).to_be_visible(timeout=10_000)
        reveal = f"A was {pairs[0].left}, B was {pairs[0].right}"
        expect(page.locator(".widget-html", has_text=reveal).first).to_be_visible()
        page.locator("button.widget-button:text-is('tie')").first.click()
        expect(counter(page, f"votes given: 2 / {total} pairs")).to_be_visible(timeout=10_000)
        votes = (run_dir / "ratings.jsonl").read_text(encoding="utf-8").splitlines()
        assert [json.loads(v)["vote"] for v in votes] == ["left", "tie"]
        assert json.loads(votes[0])["note"] == "clearer"

        page.reload()  # Voila starts a new kernel: the explorer reopens the newest run
        expect(page.locator(".widget-html", has_text=f"opened {run_dir}").first).to_be_visible(
            timeout=120_000)
        tab(page, "rate").click()
        expect(counter(page, f"votes given: 2 / {total} pairs")).to_be_visible(timeout=30_000)
        shown = page.locator(".widget-html:visible", has_text=pairs[2].prompt_id)
        expect(shown.first).to_be_visible()
        page.locator("button.widget-button:text-is('B better')").first.click()
        expect(counter(page, f"votes given: 3 / {total} pairs")).to_be_visible(timeout=10_000)
        save_screenshot(page, tmp_path, "voila-rate-tab.png")
        lines = (run_dir / "ratings.jsonl").read_text(encoding="utf-8").splitlines()
        assert [json.loads(v)["vote"] for v in lines] == ["left", "tie", "right"]

        tab(page, "compare").click()
        expect(page.locator(".widget-html", has_text="Ranked by your votes (3 in ratings.jsonl)"
                            ).first).to_be_visible(timeout=60_000)
        expect(page.locator("table.cmp-stats").first).to_be_visible()
        forest = page.locator(".widget-tab img.widget-image:visible").first
        expect(forest).to_be_visible(timeout=30_000)
        save_screenshot(page, tmp_path, "voila-compare-tab.png")
        assert not [e for e in page.errors if "widget" in e.lower()], page.errors
    finally:
        stop(proc)
