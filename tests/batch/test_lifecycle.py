"""Batch deployments through `compare.run` against the local endpoint's batch emulation, with the
real openai SDK over HTTP: a standard and a batch deployment side by side, every way a batch
ends (completed, failed validation, quota, expired, cancelled), lines that partly fail, and
errors that become rows or run-level errors, never tracebacks."""

from __future__ import annotations

import io
import json
import threading

import numpy as np
import pandas as pd
import pytest

from compare.deployments import BATCH_KINDS, Deployment
from compare.deployments_file import local_deployments
from compare.errors import ConfigError, DeploymentUnusableError, PromptSetError
from compare.results import Results
from compare.runner import run
from compare.server.local import local_endpoint

from ._support import (
    CONFIG,
    PRICES,
    batch_dep,
    batches_of,
    ledger,
    one_record_per_key,
    sdk,
    uploads_of,
    wait_for,
)

PROMPTS = [{"id": f"q{i}", "prompt": f"Tell me about topic {i}."} for i in range(5)]
BATCH_PRICES = {"price_input_per_1k": 0.25, "price_output_per_1k": 1.0}
UNTIMED = ["ttft_s", "latency_s", "wall_s", "decode_tps", "itl_p50_s", "itl_p90_s"]


@pytest.fixture(scope="module")
def ep():
    with local_endpoint(config=CONFIG) as endpoint:
        yield endpoint


@pytest.mark.parametrize("kind", BATCH_KINDS)
def test_standard_and_batch_side_by_side(ep, kind: str, tmp_path) -> None:
    std = local_deployments(ep, kind="azure-openai", names=["std"], **PRICES)[0]
    bat = batch_dep(ep, "twin-batch", kind=kind, **BATCH_PRICES)
    res = run(PROMPTS, [std, bat], repeats=2, out=tmp_path, progress=False)
    f = res.frame
    one_record_per_key(f, 20)
    assert (f["status"] == "ok").all(), f[["deployment", "error_message"]]
    s = f[f["deployment"] == "std"].sort_values(["prompt_id", "repeat"])
    b = f[f["deployment"] == "twin-batch"].sort_values(["prompt_id", "repeat"])
    # The same model answers the same prompt the same way, online or in a batch.
    assert list(b["output"]) == list(s["output"])
    assert list(b["prompt_tokens"]) == list(s["prompt_tokens"])
    assert list(b["completion_tokens"]) == list(s["completion_tokens"]) == [5] * 10
    assert list(b["finish_reason"]) == list(s["finish_reason"])
    assert b["model"].str.contains("twin").all()
    # No per-request timing in a batch; the batch's own turnaround instead.
    assert b[UNTIMED].isna().all().all() and s["latency_s"].notna().all()
    assert (b["endpoint_kind"] == kind).all() and not b["streamed"].any()
    assert (b["attempts"] == 1).all() and b["request_id"].is_unique
    (batch,) = batches_of(ep, res.run_id)
    assert set(b["batch_id"]) == {batch.id} and s["batch_id"].isna().all()
    assert (b["batch_turnaround_s"] == batch.completed_at - batch.created_at).all()
    assert (b["started_at"] == pd.Timestamp(batch.created_at, unit="s", tz="UTC")).all()
    # Cost at the batch deployment's own (batch) prices.
    np.testing.assert_allclose(b["cost"], b["prompt_tokens"] * 0.25 / 1000
                               + b["completion_tokens"] * 1.0 / 1000)
    np.testing.assert_allclose(s["cost"], 2 * b["cost"].to_numpy())
    # Batch rows never enter latency statistics; the summary shows turnaround for them.
    assert set(res.timing_frame()["deployment"]) == {"std"}
    summary = res.summary()
    assert summary.loc["twin-batch", "n_timing"] == 0
    assert np.isnan(summary.loc["twin-batch", "latency_s_p50"])
    assert summary.loc["twin-batch", "n_batches"] == 1
    assert summary.loc["twin-batch", "batch_turnaround_s_max"] == b["batch_turnaround_s"].iloc[0]
    assert summary.loc["std", "n_batches"] == 0
    assert np.isnan(summary.loc["std", "batch_turnaround_s_p50"])
    # One upload, one batch; the ledger and manifest say which.
    assert len(uploads_of(ep, res.run_id)) == 1
    (part,) = res.manifest["batches"]["twin-batch"]["parts"]
    assert (part["batch_id"], part["status"], part["lines"]) == (batch.id, "completed", 10)
    assert [e["event"] for e in ledger(tmp_path)] == ["uploaded", "created", "ended"]
    loaded = Results.load(tmp_path).frame
    assert set(loaded["batch_id"].dropna()) == {batch.id}


def test_the_input_file_is_what_the_online_path_sends(ep, tmp_path) -> None:
    bat = batch_dep(ep, "twin-batch", temperature=0.3, max_tokens=7, seed=11, stop=["END"],
                    extra={"presence_penalty": 0.5}, system="Be brief.")
    res = run(PROMPTS[:2], [bat], repeats=2, out=tmp_path, progress=False)
    (upload,) = uploads_of(ep, res.run_id)
    lines = [json.loads(x) for x in sdk(ep).files.content(upload.id).text.splitlines()]
    assert [x["custom_id"] for x in lines] == ["q0#0", "q1#0", "q0#1", "q1#1"]
    first = lines[0]
    assert (first["method"], first["url"]) == ("POST", "/chat/completions")
    assert first["body"] == {
        "model": "twin-batch", "temperature": 0.3, "max_tokens": 7, "seed": 11,
        "stop": ["END"], "presence_penalty": 0.5,
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "Tell me about topic 0."}]}
    assert (res.frame["status"] == "ok").all()


def test_lines_that_partly_fail(ep) -> None:
    prompts = [*PROMPTS[:3], {"id": "filtered", "prompt": "plan an attack"},
               {"id": "image", "messages": [{"role": "user", "content": [
                   {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]}]}]
    std = local_deployments(ep, kind="openai", names=["std"])[0]
    res = run(prompts, [std, batch_dep(ep, "twin-batch")], progress=False)
    f = res.frame.set_index(["deployment", "prompt_id"])
    one_record_per_key(res.frame, 10)
    for name in ("std", "twin-batch"):  # the same verdicts online and in a batch
        assert f.loc[(name, "filtered"), "status"] == "content_filtered"
        assert f.loc[(name, "filtered"), "http_status"] == 400
        assert "violence" in f.loc[(name, "filtered"), "content_filter"]
        image = f.loc[(name, "image")]
        assert (image["status"], image["http_status"]) == ("error", 400)
        assert image["error_type"] == "BadRequestError" and "text parts" in image["error_message"]
        assert (f.loc[name].loc[["q0", "q1", "q2"], "status"] == "ok").all()
    batch = sdk(ep).batches.retrieve(f.loc[("twin-batch", "q0"), "batch_id"])
    assert (batch.request_counts.completed, batch.request_counts.failed) == (3, 2)
    assert res.summary().loc["twin-batch", "error_rate"] == pytest.approx(1 / 5)


def test_keys_are_custom_ids_one_record_each(ep, tmp_path) -> None:
    # Ids a naive "id#repeat" join could confuse are still distinct custom_ids.
    prompts = [{"id": i, "prompt": f"text of {i}"} for i in ("x", "x#0", "x#0#1", "X")]
    res = run(prompts, [batch_dep(ep, "twin-batch")], repeats=2, out=tmp_path, progress=False)
    one_record_per_key(res.frame, 8)
    assert (res.frame["status"] == "ok").all()
    (batch,) = batches_of(ep, res.run_id)
    assert batch.request_counts.total == 8
    # A prompt set with duplicate ids is refused before anything is uploaded.
    before = len(sdk(ep).files.list(purpose="batch").data)
    with pytest.raises(PromptSetError, match="duplicate id 'x'"):
        run([{"id": "x", "prompt": "a"}, {"id": "x", "prompt": "b"}],
            [batch_dep(ep, "twin-batch")], progress=False)
    assert len(sdk(ep).files.list(purpose="batch").data) == before


@pytest.mark.parametrize(("name", "code", "words"), [
    ("ghost", "model_not_found", "does not exist"),
    ("std", "invalid_request", "globalbatch"),
])
def test_a_batch_that_fails_validation_is_an_error_per_row(ep, name, code, words) -> None:
    dep = batch_dep(ep, "twin-batch").replace(deployment=name)
    res = run(PROMPTS, [dep], progress=False)
    f = res.frame
    one_record_per_key(f, 5)
    assert (f["status"] == "error").all() and f["batch_id"].nunique() == 1
    message = f["error_message"].iloc[0]
    assert "failed validation" in message and code in message and words in message
    assert "input line 1" in message
    assert f["batch_turnaround_s"].isna().all()  # nothing ran


def _occupy_quota(ep) -> str:
    """A batch of someone else's that holds most of quota-batch's enqueued tokens (60): three
    lines of 19 tokens (the quota's estimate: characters / 4 + 1), 0.3 s each."""
    client = sdk(ep)
    text = "word " * 14 + "wo"
    data = "".join(json.dumps({"custom_id": f"o{i}", "method": "POST", "url": "/chat/completions",
                               "body": {"model": "quota-batch", "messages": [
                                   {"role": "user", "content": text}]}}) + "\n"
                   for i in range(3)).encode()
    uploaded = client.files.create(file=("other.jsonl", io.BytesIO(data)), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/chat/completions",
                                  completion_window="24h")
    wait_for(lambda: client.batches.retrieve(batch.id).status == "in_progress")
    return batch.id


def test_a_full_token_quota_is_waited_out(ep) -> None:
    other = _occupy_quota(ep)
    prompts = [f"quota prompt {i}" for i in range(3)]
    res = run(prompts, [batch_dep(ep, "quota-batch", batch_poll_s=0.3)], progress=False)
    f = res.frame
    assert (f["status"] == "ok").all(), f["error_message"].tolist()
    assert (f["attempts"] >= 2).all()  # refused once, created again when the quota freed
    batches = batches_of(ep, res.run_id)
    refused = [b for b in batches if b.status == "failed"]
    assert refused and all(b.errors.data[0].code == "token_limit_exceeded" for b in refused)
    assert len(batches) == f["attempts"].iloc[0]
    assert len(uploads_of(ep, res.run_id)) == 1  # created again from the same file
    assert sdk(ep).batches.retrieve(other).status == "completed"


def test_a_quota_still_full_after_the_attempts_is_rate_limited_rows(ep) -> None:
    _occupy_quota(ep)
    res = run(["quota row a", "quota row b"], [batch_dep(ep, "quota-batch")], max_attempts=1,
              progress=False)
    f = res.frame
    assert (f["status"] == "rate_limited").all()
    message = f["error_message"].iloc[0]
    assert "enqueued-token quota is full" in message and "Enqueued token limit" in message
    assert "rerun with the same out" in message


def test_an_externally_cancelled_batch_keeps_finished_lines(ep, tmp_path) -> None:
    prompts = [f"cancel me {i}" for i in range(20)]
    dep = batch_dep(ep, "slow-batch")
    client = sdk(ep)

    def running() -> list:
        return [b for b in client.batches.list(limit=3).data if b.status == "in_progress"
                and (b.metadata or {}).get("compare_deployment") == "slow-batch"
                and b.request_counts and b.request_counts.completed >= 2]

    def cancel_when_started() -> None:
        wait_for(running)
        client.batches.cancel(running()[0].id)

    thread = threading.Thread(target=cancel_when_started)
    thread.start()
    res = run(prompts, [dep], out=tmp_path, progress=False)
    thread.join()
    f = res.frame
    one_record_per_key(f, 20)
    done, rest = f[f["status"] == "ok"], f[f["status"] != "ok"]
    assert len(done) >= 2 and len(rest) >= 1
    assert (rest["error_type"] == "BatchCancelledError").all()
    assert "was cancelled" in rest["error_message"].iloc[0]
    # On resume the rest go into a new batch; the finished lines are kept.
    again = run(prompts, [dep], out=tmp_path, progress=False)
    g = again.frame.set_index("prompt_id")
    assert (g["status"] == "ok").all()
    assert g.loc[done["prompt_id"], "cached"].all() and not g.loc[rest["prompt_id"],
                                                                   "cached"].any()
    assert again.manifest["batches"]["slow-batch"]["resubmitted_lines"] == len(rest)
    assert len(batches_of(ep, res.run_id)) == 2


def test_expired_lines_go_into_a_new_batch_on_resume(make_endpoint_server, tmp_path) -> None:
    config = {"batch_completion_window_s": 1.0, "deployments": {
        "slow-batch": CONFIG["deployments"]["slow-batch"]}}
    ep2 = make_endpoint_server(config)
    prompts = [f"expire me {i}" for i in range(10)]
    dep = batch_dep(ep2, "slow-batch")
    res = run(prompts, [dep], out=tmp_path, progress=False)
    f = res.frame
    one_record_per_key(f, 10)
    expired = f[f["status"] == "timeout"]
    n_ok = int((f["status"] == "ok").sum())
    assert 1 <= n_ok < 10 and len(expired) == 10 - n_ok
    assert (expired["error_type"] == "EndpointTimeout").all()
    assert "batch_expired" in expired["error_message"].iloc[0]
    (batch,) = batches_of(ep2, res.run_id)
    assert batch.status == "expired"
    assert (f["batch_turnaround_s"] == batch.expired_at - batch.created_at).all()
    again = run(prompts, [dep], out=tmp_path, progress=False)
    assert again.manifest["batches"]["slow-batch"]["resubmitted_lines"] == len(expired)
    (new,) = again.manifest["batches"]["slow-batch"]["parts"]
    assert new["lines"] == len(expired) and new["batch_id"] != batch.id
    g = again.frame
    assert g["cached"].sum() == 10 - len(expired)


def test_errors_before_any_batch_are_rows_not_tracebacks(ep, make_endpoint_server) -> None:
    tiny = make_endpoint_server({"max_file_bytes": 1024, "deployments": {
        "b": {"backend": "simulated", "deployment_type": "global-batch"}}})
    res = run([f"prompt number {i} of a file too large" for i in range(12)],
              [batch_dep(tiny, "b")], progress=False)
    f = res.frame
    assert (f["status"] == "error").all() and (f["http_status"] == 413).all()
    assert "larger than 1024 bytes" in f["error_message"].iloc[0]
    # A refused key: rows say so, and a run failing fast names the deployment.
    wrong = batch_dep(ep, "twin-batch").replace(api_key="not-the-right-key-0123")
    with pytest.warns(RuntimeWarning, match="cannot be used"):
        res = run(PROMPTS, [wrong], progress=False)
    assert (res.frame["error_type"] == "AuthenticationError").all()
    assert "not-the-right-key" not in " ".join(res.frame["error_message"])
    with pytest.raises(DeploymentUnusableError, match="twin-batch"):
        run(PROMPTS, [wrong], progress=False, fail_fast=True)
    # An endpoint without the batch API (the v1 kind given the resource URL).
    lost = Deployment(name="lost", kind="openai-batch", endpoint=ep.url, api_key=ep.api_key,
                      deployment="twin-batch", batch_poll_s=0.05)
    with pytest.warns(RuntimeWarning, match="cannot be used"):
        res = run(PROMPTS, [lost], progress=False)
    assert (res.frame["error_type"] == "DeploymentNotFoundError").all()
    assert "no batch API" in res.frame["error_message"].iloc[0]


def test_poll_interval_rules() -> None:
    remote = Deployment(name="r", kind="azure-openai-batch",
                        endpoint="https://res.openai.azure.com", api_key="k" * 20)
    assert remote.batch_poll_s == 60.0 and remote.is_batch
    with pytest.raises(ConfigError, match="at least 60 seconds") as info:
        remote.replace(batch_poll_s=5)
    assert info.value.field == "batch_poll_s"
    local = remote.replace(endpoint="http://127.0.0.1:8000", batch_poll_s=None)
    assert local.batch_poll_s == 1.0
    assert local.replace(batch_poll_s=0.01).batch_poll_s == 0.01
    assert Deployment(name="s", kind="azure-openai", endpoint="https://x.test",
                      api_key="k" * 20).batch_poll_s is None
