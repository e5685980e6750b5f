"""`compare report`: one self-contained HTML file, opened in the real browser (Debian chromium)
and checked for what a reader sees."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from compare.records import Record
from compare.report import report_html, without_secrets
from compare.results import Results
from tests.ui.test_browser import CHROMIUM_ARGS, chromium_or_fail, save_screenshot

CONFIG = {
    "deployments": {
        "quick": {"backend": "simulated",
                  "simulated": {"seed": 1, "output_tokens": 6, "ttft_ms": 2, "itl_ms": 1}},
        "guarded": {
            "backend": "simulated",
            "simulated": {"seed": 3, "output_tokens": 6, "ttft_ms": 2, "itl_ms": 1},
            "content_filter": [{"category": "violence", "severity": "medium",
                                "terms": ["attack"], "apply_to": "prompt"}],
        },
    }
}
PROMPTS = ["Name a colour.", "Plan an attack on the castle.", "Count to three."]
SECTIONS = ["Summary", "Charts", "Statistics", "Outputs side by side", "Rows not ok",
            "Manifest"]
SIM = {"seed": 1, "output_tokens": 4, "ttft_ms": 2, "itl_ms": 1}
SCORED_CONFIG = {
    "deployments": {
        "right": {"backend": "simulated",
                  "simulated": {**SIM, "replies": [{"match": "capital", "text": "Paris"}]}},
        "wrong": {"backend": "simulated", "simulated": {**SIM, "ttft_ms": 30, "replies": [
            {"match": r"country [1-3]\?", "text": "Paris"}, {"match": "capital", "text": "Rome"}]}},
        "grader": {"backend": "simulated", "simulated": {**SIM, "replies": [
            {"match": "Grade the answer", "text": "Fine. Grade: 4"}]}},
    }
}
CAPITALS = [{"id": f"c{i:02d}", "prompt": f"What is the capital of country {i}?",
             "reference": "Paris"} for i in range(1, 11)]
FILTERED = "rgb(148, 103, 189)"  # STATUS_COLORS["content_filtered"], #9467bd


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    import compare

    out = tmp_path_factory.mktemp("report") / "run"
    with compare.local_endpoint(config=CONFIG) as ep:
        compare.run(PROMPTS, ep, repeats=2, out=out, progress=False)
        return out, ep.api_key


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """right knows every capital, wrong the first three; both priced; exact and a judge."""
    import compare
    from compare.deployments_file import local_deployments

    out = tmp_path_factory.mktemp("report") / "scored"
    with compare.local_endpoint(config=SCORED_CONFIG) as ep:
        deps = [local_deployments(ep, names=[name], price_input_per_1k=price,
                                  price_output_per_1k=price)[0]
                for name, price in (("right", 0.002), ("wrong", 0.0005))]
        compare.run(CAPITALS, deps, out=out, progress=False,
                    scorers=["exact", "judge:grader"], score_with=ep)
    return out


def test_cli_writes_one_file_and_says_where(saved_run: tuple[Path, str], tmp_path: Path) -> None:
    run_dir, key = saved_run
    target = tmp_path / "mail" / "report.html"
    done = subprocess.run([sys.executable, "-m", "compare", "report", str(run_dir), "-o",
                           str(target)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"report: {target} ({target.stat().st_size // 1024} KiB)\n"
    text = target.read_text(encoding="utf-8")
    assert key not in text and "<script" not in text.lower()
    assert 'src="http' not in text and "href=\"http" not in text  # nothing to fetch
    default = subprocess.run([sys.executable, "-m", "compare", "report", str(run_dir)],
                             capture_output=True, text=True, timeout=120)
    assert default.returncode == 0 and (run_dir / "report.html").exists()


@pytest.mark.browser
def test_report_reads_right_in_the_browser(saved_run: tuple[Path, str], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    run_dir, key = saved_run
    results = Results.load(run_dir)
    path = tmp_path / "report.html"
    path.write_text(report_html(results), encoding="utf-8")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium_or_fail()), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        fetched: list[str] = []
        page.on("request", lambda request: fetched.append(request.url))
        page.goto(path.as_uri())
        expect(page.locator("h1")).to_have_text(f"compare report: {results.run_id}")
        assert page.locator("nav a").all_inner_texts() == SECTIONS
        summary = page.locator("#summary table")
        expect(summary.locator("th", has_text="guarded")).to_be_visible()
        expect(summary.locator("th", has_text="content_filtered")).to_be_visible()
        images = page.locator("#charts img")
        assert images.count() == 5
        for i in range(5):
            images.nth(i).scroll_into_view_if_needed()
            expect(images.nth(i)).to_be_visible()
            assert images.nth(i).evaluate("img => img.naturalWidth") > 300
        side = page.locator("#outputs table.cmp-side-by-side")
        assert side.locator("thead th").all_inner_texts() == ["prompt", "quick", "guarded"]
        filtered = side.locator(".cmp-filtered").first
        expect(filtered).to_contain_text("content filter:")
        assert filtered.evaluate("e => getComputedStyle(e).color") == FILTERED
        status = page.locator("#failures td b", has_text="content_filtered").first
        assert status.evaluate("e => getComputedStyle(e).color") == FILTERED
        manifest = page.locator("#manifest pre")
        expect(manifest).to_be_hidden()  # folded until asked for
        page.locator("#manifest summary").click()
        expect(manifest).to_contain_text(f'"run_id": "{results.run_id}"')
        assert key not in page.content()
        assert all(url.startswith(("file:", "data:")) for url in fetched), fetched
        save_screenshot(page, tmp_path, "report.png")
        browser.close()


def test_score_columns_get_scores_and_statistics_sections(saved_run: tuple[Path, str]) -> None:
    results = Results.load(saved_run[0])
    plain = report_html(results)
    # Without scores, the statistics compare the deployments' latency, cost and TTFT.
    assert 'id="scores"' not in plain and "<h3>Paired comparison vs quick</h3>" in plain
    ok = results.frame["status"] == "ok"
    results.frame["score_exact"] = ok.astype(float).where(ok)
    html = report_html(results)
    assert '<a href="#scores">Scores</a><a href="#statistics">Statistics</a>' in html
    n_quick = int((ok & (results.frame["deployment"] == "quick")).sum())
    assert f"<td>1.000</td>\n      <td>{n_quick}</td>" in html
    # The statistics section is compare.stats' leaderboard: guarded answered 2 of 3 prompts.
    statistics = html.split('id="statistics"', 1)[1].split("</section>", 1)[0]
    assert "<h3>score_exact</h3>" in statistics and "95% interval" in statistics
    from compare import stats

    board = stats.leaderboard(results.frame, "score_exact", order=results.deployments)
    assert board.loc["guarded", "n_prompts"] == 2 and board.loc["quick", "rank"] == 1
    for name in ("quick", "guarded"):
        assert f"<th>{name}</th>" in statistics
        assert f"<td>{board.loc[name, 'mean']:.4g}</td>" in statistics


def test_manifest_loses_anything_secret_looking() -> None:
    manifest = {"run_id": "r", "deployments": [{"name": "a", "api_key": "k" * 20,
                                                "api_key_env": "MY_KEY",
                                                "extra": {"token": "t" * 20, "top_k": 3}}],
                "config": {"password": "p"}}
    assert without_secrets(manifest) == {
        "run_id": "r", "deployments": [{"name": "a", "api_key_env": "MY_KEY",
                                        "extra": {"top_k": 3}}], "config": {}}


def test_an_empty_run_still_makes_a_report(tmp_path: Path) -> None:
    results = Results.from_records([Record(run_id="r", prompt_id="p", deployment="d", repeat=0,
                                           endpoint_kind="openai", status="error",
                                           error_type="TransportError", error_message="refused")])
    html = report_html(results, title="nothing answered")
    assert "<h1>nothing answered</h1>" in html and "no timing rows" not in html  # charts are PNG
    assert "TransportError" in html


@pytest.mark.browser
def test_scores_and_statistics_read_right_in_the_browser(scored_run: Path, tmp_path: Path
                                                          ) -> None:
    from playwright.sync_api import expect, sync_playwright

    from compare import stats

    target = tmp_path / "scored.html"
    done = subprocess.run([sys.executable, "-m", "compare", "report", str(scored_run), "-o",
                           str(target), "--baseline", "wrong"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    results = Results.load(scored_run)
    table = results.compare(baseline="wrong")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium_or_fail()), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.goto(target.as_uri())
        assert page.locator("nav a").all_inner_texts() == [
            "Summary", "Charts", "Scores", "Statistics", "Outputs side by side", "Manifest"]
        scores = page.locator("#scores")
        expect(scores.locator("tbody tr").first).to_contain_text("right")
        expect(scores.locator("li").first).to_have_text(
            "score_exact: binary (1 = pass), so the mean is the pass rate; higher is better")
        expect(scores.locator("li").nth(1)).to_have_text(
            "score_judge: ordinal, graded by deployment 'grader'; higher is better")
        section = page.locator("#statistics")
        expect(section.locator("h3", has_text="Paired comparison vs wrong")).to_be_visible()
        rows = section.locator("table", has=page.locator("th", has_text="p_adj"))
        exact = rows.locator("tr", has=page.locator("td", has_text="score_exact"))
        p_adj = float(table.loc[table["metric"] == "score_exact", "p_adj"].iloc[0])
        expect(exact).to_contain_text("McNemar exact")
        expect(exact).to_contain_text(f"{p_adj:.4f}")
        expect(section.locator("li", has_text="McNemar exact (score_exact)")).to_be_visible()
        board = stats.leaderboard(results.frame, "score_exact", order=results.deployments)
        expect(section.locator("p", has_text="leaderboard: score_exact").first).to_be_visible()
        assert board.loc["right", "rank"] == 1
        captions = section.locator("figcaption").all_inner_texts()
        assert captions == ["Forest plot: every deployment vs wrong", "score_exact vs cost",
                            "score_exact vs latency", "score_judge vs cost",
                            "score_judge vs latency"]
        images = section.locator("img")
        for i in range(images.count()):
            images.nth(i).scroll_into_view_if_needed()
            expect(images.nth(i)).to_be_visible()
            assert images.nth(i).evaluate("img => img.naturalWidth") > 300
        save_screenshot(page, tmp_path, "report-statistics.png")
        browser.close()
