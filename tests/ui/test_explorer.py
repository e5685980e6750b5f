"""The explorer driven from code (as notebooks do) against a real local endpoint over HTTP."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from compare.errors import ConfigError
from compare.explorer import Explorer, side_by_side_html
from compare.prompts import demo_prompts
from compare.results import Results
from compare.server.local import local_endpoint

SLOW_CONFIG = {
    "deployments": {
        # ~0.15 s per request, one at a time: a run of 40 takes ~6 s, long enough to stop midway.
        "steady": {
            "backend": "simulated",
            "simulated": {"seed": 3, "output_tokens": {"dist": "fixed", "value": 10},
                          "ttft_ms": {"dist": "fixed", "value": 50},
                          "itl_ms": {"dist": "fixed", "value": 10}},
        },
        "guarded": {
            "backend": "simulated",
            "simulated": {"seed": 5, "output_tokens": 4, "ttft_ms": 2, "itl_ms": 1},
            "content_filter": [{"category": "violence", "severity": "medium",
                                "terms": ["attack"], "apply_to": "prompt"}],
        },
        "wordy": {
            "backend": "simulated",
            "simulated": {"seed": 4, "output_tokens": {"dist": "fixed", "value": 400},
                          "ttft_ms": {"dist": "fixed", "value": 5},
                          "itl_ms": {"dist": "fixed", "value": 0}},
        },
    }
}


@pytest.fixture(scope="module")
def slow_endpoint():
    with local_endpoint(config=SLOW_CONFIG) as ep:
        yield ep


async def test_run_fills_counters_tabs_and_exports(sim_endpoint, tmp_path: Path) -> None:
    explorer = Explorer(endpoint=sim_endpoint, prompts=["Say hi.", "Name a colour.", "Count to 3."],
                        out_dir=tmp_path / "runs", max_tokens=32)
    explorer.select(["sim-fast", "sim-slow"])
    task = explorer.run_clicked()
    assert task is not None and explorer.running
    assert explorer.run_button.disabled and not explorer.stop_button.disabled
    results = await explorer.wait()
    assert isinstance(results, Results)
    assert len(results) == 6 and set(results.deployments) == {"sim-fast", "sim-slow"}
    assert not explorer.run_button.disabled and explorer.stop_button.disabled
    assert "run #1 done: 6 records" in explorer.status.value
    # Counters: both deployments finished all three prompts.
    assert explorer.counters.value.count("3 / 3") == 2
    # Side by side: one row per prompt, one column per deployment, status under each output.
    table = explorer.outputs.value
    assert table.count("<tr><td class=\"cmp-prompt\">") == 3
    assert "<th>sim-fast</th>" in table and "<th>sim-slow</th>" in table
    assert table.count('class="cmp-meta"') == 6
    assert "Name a colour." in table
    # Charts: one PNG per chart; the frame tab is a pandas table.
    images = [box.children[1] for box in explorer.charts.children]
    assert len(images) == 5 and all(img.value[:4] == b"\x89PNG" for img in images)
    assert '<table border="1" class="dataframe">' in explorer.frame_view.value
    # The checkpointed run directory and both export buttons.
    assert list((tmp_path / "runs").glob("explorer-*/records.jsonl"))
    explorer.export_dir.value = str(tmp_path / "export")
    parquet = explorer.export_parquet()
    csv = explorer.export_csv()
    assert parquet is not None and parquet.exists() and csv is not None and csv.exists()
    back = Results.load(tmp_path / "export")
    assert back.frame["prompt_id"].tolist() == results.frame["prompt_id"].tolist()
    assert "wrote" in explorer.export_status.value
    # A second run right away gets its own run directory: nothing is replayed as cached.
    explorer.run_clicked()
    again = await explorer.wait()
    assert again is not None and len(again) == 6 and not again.frame["cached"].any()
    assert len(list((tmp_path / "runs").glob("explorer-*/records.jsonl"))) == 2
    assert "run #2 done" in explorer.status.value


async def test_stop_keeps_finished_records_and_loop_stays_responsive(slow_endpoint) -> None:
    explorer = Explorer(endpoint=slow_endpoint, prompts=[f"prompt {i}" for i in range(40)],
                        concurrency=1, max_tokens=16)
    explorer.select(["steady"])
    explorer.run_clicked()
    # While it runs the event loop stays free: short sleeps come back on time.
    lags = []
    seen_partial = False
    deadline = time.monotonic() + 30
    while len(explorer.records) < 5 and time.monotonic() < deadline:
        t0 = time.perf_counter()
        await asyncio.sleep(0.02)
        lags.append(time.perf_counter() - t0 - 0.02)
        counters = explorer.counters.value
        seen_partial |= " / 40" in counters and "<td>0 / 40" not in counters
    assert len(explorer.records) >= 5
    assert max(lags) < 0.25
    assert seen_partial, "counters never showed a partial count during the run"
    explorer.stop_clicked()
    results = await explorer.wait()
    assert explorer.stopped and "stopped" in explorer.status.value
    assert results is not None and 5 <= len(results) < 40
    assert (results.frame["status"] == "ok").all()
    assert len(results) == len(explorer.records)
    assert not explorer.running and not explorer.run_button.disabled
    assert "steady" in explorer.outputs.value


async def test_long_outputs_are_folded(slow_endpoint) -> None:
    explorer = Explorer(endpoint=slow_endpoint, prompts=["write a lot"], max_tokens=400)
    explorer.select(["wordy", "steady"])
    explorer.run_clicked()
    results = await explorer.wait()
    assert results is not None
    html = side_by_side_html(results, explorer.prompts)
    assert html.count("<details") == 1  # the wordy answer only
    assert "click to unfold" in html


async def test_bad_inputs_say_why_instead_of_running(sim_endpoint) -> None:
    explorer = Explorer(endpoint=sim_endpoint, prompts=[])
    explorer.deployment_select.value = ()
    assert explorer.run_clicked() is None
    assert "select at least one deployment" in explorer.status.value
    explorer.select(["sim-fast"])
    explorer.prompt_source.value = "typed"
    explorer.prompt_text.value = "  \n"
    assert explorer.run_clicked() is None
    assert "type at least one prompt" in explorer.status.value
    with pytest.raises(ConfigError):
        await explorer.wait()
    with pytest.raises(ConfigError, match="no deployment 'nope'"):
        explorer.select(["nope"])
    with pytest.raises(ConfigError, match="endpoint="):
        Explorer()


def test_repr_is_short_and_stable(sim_endpoint) -> None:
    explorer = Explorer(endpoint=sim_endpoint)
    bundle = explorer._repr_mimebundle_()
    assert bundle["text/plain"].startswith("Explorer(")
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert sim_endpoint.api_key not in repr(explorer)


async def test_click_on_another_thread_runs_on_the_kernel_loop(sim_endpoint) -> None:
    # JupyterLab 4.6 sends widget messages to an ipykernel subshell thread: a click there must
    # still run on the loop the explorer was made on, and Stop / wait() must work from both.
    explorer = Explorer(endpoint=sim_endpoint, prompts=["one", "two"], max_tokens=16)
    explorer.select(["sim-fast"])
    await asyncio.to_thread(explorer.run_button.click)
    assert explorer.running
    results = await explorer.wait()
    assert results is not None and len(results) == 2
    assert explorer.background.task is not None
    assert explorer.background.task.get_loop() is asyncio.get_running_loop()
    assert "run #1 done: 2 records" in explorer.status.value


async def test_prompt_file_and_deployments_file(sim_endpoint, tmp_path: Path, monkeypatch) -> None:
    # A client deployments YAML (the key from an environment variable) and a JSONL prompt file.
    monkeypatch.setenv("UI_TEST_SIM_KEY", sim_endpoint.api_key)
    deployments = tmp_path / "deployments.yaml"
    deployments.write_text(
        "deployments:\n"
        f"  - name: fast-from-file\n    deployment: sim-fast\n    kind: azure-inference\n"
        f"    endpoint: {sim_endpoint.url}\n    api_key_env: UI_TEST_SIM_KEY\n",
        encoding="utf-8")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"id": "a", "prompt": "first"}\n{"id": "b", "prompt": "second"}\n',
                       encoding="utf-8")
    explorer = Explorer(deployments=deployments, prompts=prompts, max_tokens=8)
    assert explorer.prompt_source.value == "file"
    assert explorer.prompt_set().ids == ["a", "b"]
    assert explorer.deployment_select.value == ("fast-from-file",)
    explorer.run_clicked()
    results = await explorer.wait()
    assert results is not None and results.frame["prompt_id"].tolist() == ["a", "b"]
    assert (results.frame["status"] == "ok").all()
    # An empty file field means the bundled demo set.
    explorer.prompt_file.value = ""
    assert explorer.prompt_set().ids == demo_prompts().ids


FILTERED_COLOUR = "#9467bd"  # charts.STATUS_COLORS["content_filtered"]


async def test_content_filtered_is_a_result_in_its_own_colour(slow_endpoint) -> None:
    explorer = Explorer(endpoint=slow_endpoint, prompts=["say hello", "plan an attack"],
                        max_tokens=8)
    explorer.select(["guarded"])
    explorer.run_clicked()
    results = await explorer.wait()
    assert results is not None
    assert results.frame["status"].tolist() == ["ok", "content_filtered"]
    counters = explorer.counters.value
    assert "<th>failed</th><th>content filtered</th>" in counters
    assert ('<td>2 / 2</td><td style="color:inherit">0</td>'
            f'<td style="color:{FILTERED_COLOUR}">1</td>') in counters
    table = explorer.outputs.value
    assert 'class="cmp-text cmp-filtered">content filter: ' in table
    assert "cmp-error" not in table.split("</style>", 1)[1]
    assert f'<b style="color:{FILTERED_COLOUR}">content_filtered</b>' in table


async def test_open_a_saved_run_without_sending(sim_endpoint, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    first = Explorer(endpoint=sim_endpoint, prompts=["one", "two"], out_dir=runs, max_tokens=8)
    first.select(["sim-fast"])
    first.run_clicked()
    done = await first.wait()
    assert done is not None
    run_dir = next(runs.glob("explorer-*"))
    before = sim_endpoint.stats()["sim-fast"]["requests"]

    browse = Explorer.open(run_dir)
    opened = await browse.wait()
    assert opened is not None and len(opened) == 2
    assert repr(browse) == f"Explorer(saved run {run_dir}: sim-fast)"
    assert browse.run_button.disabled and browse.deployment_select.disabled
    assert browse.deployment_select.value == ("sim-fast",)
    assert "<th>sim-fast</th>" in browse.outputs.value and "one" in browse.outputs.value
    assert len(browse.charts.children) == 5
    assert '<table border="1" class="dataframe">' in browse.frame_view.value
    assert browse.counters.value.count("2 / 2") == 1
    said = f"opened {run_dir}: 2 records, 1 deployments (a saved run: nothing was sent)"
    assert said in browse.status.value and said in browse.open_status.value
    assert browse.run_clicked() is None
    assert "this explorer only browses a saved run" in browse.status.value
    assert sim_endpoint.stats()["sim-fast"]["requests"] == before  # nothing sent
    # Export works on what was opened.
    browse.export_dir.value = str(tmp_path / "again")
    assert browse.export_csv() == tmp_path / "again" / "results.csv"

    # The "open run" field of a running explorer: a bad path says why, a good one shows it.
    first.open_dir.value = str(tmp_path / "nope")
    first.open_button.click()
    assert f"cannot open: {tmp_path / 'nope'}: no such run directory" in first.open_status.value
    assert first.open_run(run_dir) is not None
    await first.wait()
    assert not first.run_button.disabled and "opened" in first.status.value
    with pytest.raises(ConfigError, match="no such run directory"):
        Explorer.open(tmp_path / "nope")
