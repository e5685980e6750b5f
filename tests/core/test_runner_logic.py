"""Runner logic with an in-process Endpoint (tests/core/fakes.py): scheduling, retries, statuses,
checkpoint/resume, cancellation, pacing and the sync wrapper. Real-HTTP tests live elsewhere."""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from itertools import pairwise

import numpy as np
import pytest

from compare import errors
from compare.checkpoint import RECORDS_FILE, read_checkpoint
from compare.deployments import Deployment
from compare.endpoints.base import ChatRequest, Completion
from compare.records import RECORD_COLUMNS, Record
from compare.results import Results
from compare.runner import Backoff, arun, run
from compare.runner.limits import RateWindow, TokenBucket
from compare.runner.measure import fill_timing, percentile
from compare.runner.plan import build_request, estimate_tokens

from .fakes import FakeEndpoint, FakePool, deployments

PROMPTS = ["alpha one", "beta two", "gamma three"]
FAST = Backoff(base_s=0.001, cap_s=0.002)


async def _run(endpoints: dict[str, FakeEndpoint], prompts=PROMPTS, **kw) -> Results:
    kw.setdefault("progress", False)
    kw.setdefault("backoff", FAST)
    deps = kw.pop("deps", None) or deployments(*endpoints)
    return await arun(prompts, deps, pool=FakePool(endpoints), **kw)


# -- pure helpers ------------------------------------------------------------------------------


def test_percentile_matches_numpy() -> None:
    rng = random.Random(1)
    for n in (1, 2, 5, 17):
        values = sorted(rng.random() for _ in range(n))
        for q in (0, 50, 90, 99, 100):
            assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert math.isnan(percentile([], 50))


def test_backoff_honours_retry_after_then_full_jitter() -> None:
    b = Backoff(base_s=1.0, cap_s=5.0, max_retry_after_s=10.0)
    assert b.delay(3, 2.5) == 2.5
    assert b.delay(1, 500.0) == 10.0
    rng = random.Random(0)
    for retry, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)):
        draws = [b.delay(retry, None, rng) for _ in range(300)]
        assert min(draws) >= 0 and max(draws) <= ceiling
        assert max(draws) > ceiling * 0.8  # full jitter spreads over the whole range


def test_token_bucket_paces_and_corrects() -> None:
    now = [0.0]
    bucket = TokenBucket(rate_per_s=10.0, clock=lambda: now[0])  # no burst: perfectly smooth
    assert bucket.reserve(1) == 0.0  # the first goes at once
    assert bucket.reserve(1) == pytest.approx(0.1)  # then one every 1/rate, in arrival order
    assert bucket.reserve(1) == pytest.approx(0.2)
    now[0] = 1.0
    assert bucket.reserve(0) == 0.0 and bucket.level == pytest.approx(0.0)  # debt paid, no credit
    assert bucket.reserve(25) == 0.0  # larger than any burst: goes, and the next one waits
    assert bucket.reserve(1) == pytest.approx(2.5)
    bucket.refund(20)  # an over-estimate given back
    assert bucket.reserve(1) == pytest.approx(0.6)
    saver = TokenBucket(rate_per_s=10.0, capacity=5.0, clock=lambda: now[0])
    assert [saver.reserve(1) for _ in range(6)] == [0.0] * 6  # a saved-up burst of 5 (+1)
    assert saver.reserve(1) == pytest.approx(0.1)


def _server_window(sent: list[tuple[float, float]], limit: float, window: float) -> int:
    """How many of `sent` the local endpoint's sliding-window limiter would refuse."""
    refused = 0
    for i, (t, n) in enumerate(sent):
        prior = sum(m for s, m in sent[:i] if s > t - window + 1e-9)  # float sums of gaps
        if prior and prior + n > limit:
            refused += 1
    return refused


def test_token_bucket_spaces_requests_within_a_sliding_window() -> None:
    t, rate = 0.0, 10.0
    bucket = TokenBucket(rate, clock=lambda: t)
    sent = []
    for _ in range(300):
        t += bucket.reserve(1)
        sent.append((t, 1.0))
    assert _server_window(sent, limit=rate * 10, window=10.0) == 0
    assert _server_window(sent, limit=rate * 1, window=1.0) == 0  # no burst for 1 s windows
    assert sent[-1][0] == pytest.approx(29.9)  # and no slower than the rate


def _book(sizes: list[float], slack_s: float) -> list[tuple[float, float]]:
    w = RateWindow(60000, window_s=10.0, slack_s=slack_s, clock=lambda: 0.0)  # 10k per 10 s
    assert w.limit == 10000
    sent: list[tuple[float, float]] = []
    for n in sizes:
        t, _ = w.reserve(n)
        assert t >= (sent[-1][0] if sent else 0.0)  # callers keep their order
        sent.append((t, n))
    return sent


@pytest.mark.parametrize("sizes", [(300, 300), (100, 500)])
def test_rate_window_books_like_the_service_counts(sizes) -> None:
    rng = random.Random(5)
    amounts = [float(rng.randint(*sizes)) for _ in range(500)]
    sent = _book(amounts, slack_s=0.1)
    assert _server_window(sent, limit=10000, window=10.0) == 0  # never a 429 from pacing
    # Exact booking (no slack) is the earliest the service's rule admits each request in order;
    # the slack costs about 1% of that.
    exact = _book(amounts, slack_s=0.0)
    assert _server_window(exact, limit=10000, window=10.0) == 0
    assert sent[-1][0] <= exact[-1][0] * 1.015
    assert exact[-1][0] <= 10.0 * sum(amounts) / 10000  # at least the quota's rate


def test_rate_window_refund_and_oversize() -> None:
    now = [0.0]
    w = RateWindow(600, window_s=10.0, slack_s=0.0, clock=lambda: now[0])  # 100 per 10 s
    t1, _ = w.reserve(90)
    t2, _ = w.reserve(20)
    assert (t1, t2) == (0.0, 10.0)  # 90 + 20 > 100: waits until the first leaves the window
    w2 = RateWindow(600, window_s=10.0, slack_s=0.0, clock=lambda: now[0])
    _, booking = w2.reserve(90)
    w2.refund(booking, 85)  # usage said 5
    assert w2.reserve(20)[0] == 0.0
    huge = RateWindow(600, clock=lambda: now[0])
    assert huge.reserve(5000)[0] == 0.0  # larger than the quota: goes (the service decides)


def test_estimate_tokens_is_prompt_plus_max_tokens() -> None:
    req = ChatRequest(deployment="d", messages=[{"role": "user", "content": "x" * 400}],
                      max_tokens=50)
    assert estimate_tokens(req) == 100 + 1 + 50


def test_timing_definitions() -> None:
    comp = Completion(sent_at=10.0, ended_at=10.9, first_token_at=10.1,
                      chunk_times=[10.1, 10.2, 10.4, 10.9], completion_tokens=9)
    rec = Record(run_id="r", prompt_id="p", deployment="d", repeat=0, endpoint_kind="k")
    fill_timing(rec, comp)
    assert rec.ttft_s == pytest.approx(0.1)
    assert rec.latency_s == pytest.approx(0.9)
    assert rec.decode_tps == pytest.approx(8 / 0.8)
    gaps = [0.1, 0.2, 0.5]
    assert rec.itl_p50_s == pytest.approx(np.percentile(gaps, 50))
    assert rec.itl_p90_s == pytest.approx(np.percentile(gaps, 90))


def test_decode_rate_counts_chunks_when_the_service_sends_no_usage() -> None:
    times = [10.1, 10.2, 10.4, 10.9]
    no_usage = Completion(sent_at=10.0, ended_at=10.9, first_token_at=10.1, chunk_times=times)
    rec = Record(run_id="r", prompt_id="p", deployment="d", repeat=0, endpoint_kind="k")
    fill_timing(rec, no_usage)
    assert (rec.tokens_source, rec.completion_chunks) == ("chunks", 4.0)
    assert rec.decode_tps == pytest.approx(3 / 0.8) and math.isnan(rec.completion_tokens)
    usage = Completion(sent_at=10.0, ended_at=10.9, first_token_at=10.1, chunk_times=times,
                       completion_tokens=9)
    rec = Record(run_id="r", prompt_id="p", deployment="d", repeat=0, endpoint_kind="k")
    fill_timing(rec, usage)
    assert (rec.tokens_source, rec.completion_chunks) == ("usage", 4.0)
    assert rec.decode_tps == pytest.approx(8 / 0.8)
    body = Completion(sent_at=10.0, ended_at=10.9, streamed=False)  # one body, no usage
    rec = Record(run_id="r", prompt_id="p", deployment="d", repeat=0, endpoint_kind="k")
    fill_timing(rec, body)
    assert rec.tokens_source == "none" and math.isnan(rec.completion_chunks)
    assert math.isnan(rec.decode_tps)


def test_build_request_overrides_and_system() -> None:
    from compare.prompts import load_prompts

    dep = Deployment(name="d", endpoint="http://x", kind="openai", temperature=0.5, max_tokens=9,
                     system="be brief", extra={"a": 1}, deployment="served")
    p = load_prompts(["hi"])[0]
    req = build_request(p, dep, {"temperature": 0.0, "extra": {"b": 2}}, stream=False)
    assert req.deployment == "served" and req.stream is False
    assert req.temperature == 0.0 and req.max_tokens == 9
    assert req.extra == {"a": 1, "b": 2}
    assert req.messages[0] == {"role": "system", "content": "be brief"}
    own = load_prompts([{"prompt": "hi", "system": "mine"}])[0]
    assert build_request(own, dep, {}, True).messages[0]["content"] == "mine"


async def test_unknown_override_is_rejected() -> None:
    with pytest.raises(TypeError, match="concurency"):
        await _run({"a": FakeEndpoint()}, concurency=3)


# -- fan-out and records -----------------------------------------------------------------------


async def test_fan_out_rows_order_and_metrics() -> None:
    eps = {"a": FakeEndpoint(ttft_s=0.02, gap_s=0.005, headers={
        "apim-request-id": "req-1", "x-ms-region": "Sweden Central",
        "x-ratelimit-remaining-requests": "41", "x-ratelimit-remaining-tokens": "9000"}),
           "b": FakeEndpoint()}
    res = await _run(eps, repeats=2, deps=deployments("a", "b", price_input_per_1k=1.0,
                                                      price_output_per_1k=2.0))
    f = res.frame
    # The record columns, then what to group by: the prompts' tags (the deployments have no labels).
    assert list(f.columns) == [*RECORD_COLUMNS, "tags"]
    assert len(f) == 12 and set(f["status"]) == {"ok"}
    assert list(f["prompt_id"].iloc[:4]) == [f["prompt_id"].iloc[0]] * 4  # prompt-major order
    assert list(f["deployment"].iloc[:4]) == ["a", "a", "b", "b"]
    a = f[f["deployment"] == "a"].iloc[0]
    assert a["ttft_s"] == pytest.approx(0.02, abs=0.015)
    assert a["latency_s"] >= a["ttft_s"] + 3 * 0.005 - 1e-3
    assert a["decode_tps"] == pytest.approx(3 / (a["latency_s"] - a["ttft_s"]))
    assert a["itl_p50_s"] == pytest.approx(0.005, abs=0.004)
    assert a["wall_s"] == pytest.approx(a["latency_s"])
    assert (a["attempts"], a["backoff_s"], a["cached"]) == (1, 0.0, False)
    assert a["request_id"] == "req-1" and a["region"] == "Sweden Central"
    assert a["ratelimit_remaining_requests"] == 41 and a["ratelimit_remaining_tokens"] == 9000
    assert a["cost"] == pytest.approx(2 / 1000 * 1.0 + 4 / 1000 * 2.0)
    assert a["model"] == "fake-model" and a["finish_reason"] == "stop"
    assert str(f["started_at"].dtype).startswith("datetime64") and f["started_at"].notna().all()
    assert f["ttft_s"].dtype == np.float64 and f["attempts"].dtype == np.int64
    assert eps["a"].calls["alpha one"] == 2


async def test_per_deployment_limit_and_no_starvation() -> None:
    slow = FakeEndpoint(ttft_s=0.3)
    fast = FakeEndpoint()
    seen: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    prompts = [f"q{i}" for i in range(12)]
    res = await _run({"slow": slow, "fast": fast}, prompts=prompts, concurrency=4,
                     on_record=lambda r: seen.append((r.deployment, time.perf_counter() - t0)))
    assert len(res) == 24
    assert slow.max_in_flight == 2 and fast.max_in_flight <= 2  # equal shares of 4
    fast_done = max(t for d, t in seen if d == "fast")
    assert fast_done < 0.25  # never queued behind the slow deployment's requests


async def test_explicit_deployment_concurrency() -> None:
    ep = FakeEndpoint(ttft_s=0.02)
    await _run({"a": ep}, prompts=[f"q{i}" for i in range(20)],
               deps=deployments("a", concurrency=3), concurrency=32)
    assert ep.max_in_flight == 3


async def test_retries_count_attempts_and_backoff() -> None:
    def script(req: ChatRequest, attempt: int):
        if req.messages[-1]["content"] == "alpha one" and attempt <= 2:
            return errors.RateLimitError("slow down", http_status=429, retry_after_s=0.05)
        if req.messages[-1]["content"] == "beta two" and attempt == 1:
            return errors.ServerError("boom", http_status=503)
        return None

    ep = FakeEndpoint(script=script)
    res = await _run({"a": ep})
    f = res.frame.set_index("prompt_id")
    ids = res.prompt_table["id"].tolist()
    first = f.loc[ids[0]]
    assert first["status"] == "ok" and first["attempts"] == 3
    assert first["backoff_s"] == pytest.approx(0.1)
    assert first["wall_s"] >= 0.1 > first["latency_s"]
    second = f.loc[ids[1]]
    assert second["attempts"] == 2 and 0 <= second["backoff_s"] <= FAST.base_s
    assert f.loc[ids[2]]["attempts"] == 1
    assert ep.calls["alpha one"] == 3


async def test_attempts_are_bounded_and_status_kept() -> None:
    ep = FakeEndpoint(script=lambda r, a: errors.EndpointTimeout("read timed out"))
    res = await _run({"a": ep}, prompts=["x"], max_attempts=3)
    row = res.frame.iloc[0]
    assert (row["status"], row["attempts"], row["error_type"]) == ("timeout", 3, "EndpointTimeout")
    assert ep.calls["x"] == 3


async def test_auth_error_stops_only_that_deployment() -> None:
    bad = FakeEndpoint(script=lambda r, a: errors.AuthenticationError(
        "Access denied due to invalid subscription key sk-fake-secret", http_status=401))
    good = FakeEndpoint()
    prompts = [f"q{i}" for i in range(10)]
    deps = [Deployment(name="bad", endpoint="http://127.0.0.1:9", kind="azure-inference",
                       api_key_env="MY_KEY_VAR", concurrency=1),
            *deployments("good")]
    import os

    os.environ["MY_KEY_VAR"] = "sk-env-secret-123"
    try:
        res = await _run({"bad": bad, "good": good}, prompts=prompts, deps=deps)
    finally:
        del os.environ["MY_KEY_VAR"]
    f = res.frame
    b = f[f["deployment"] == "bad"]
    assert sum(bad.calls.values()) == 1  # stopped at once, nothing else sent
    assert (b["status"] == "error").all() and (b["error_type"] == "AuthenticationError").all()
    assert b["error_message"].str.contains("MY_KEY_VAR").all()
    assert int((b["attempts"] == 0).sum()) == 9
    assert b["error_message"].str.contains("not sent").sum() == 9
    assert not f["error_message"].str.contains("sk-", na=False).any()  # no secrets in rows
    assert (f[f["deployment"] == "good"]["status"] == "ok").all()


async def test_not_found_content_filter_and_adapter_bug_become_rows() -> None:
    # (A 404 on a deployment's *first* request stops the deployment instead: see
    # test_unusable_first_request_stops_the_deployment.)
    def script(req: ChatRequest, attempt: int):
        text = req.messages[-1]["content"]
        if text == "gamma three":
            return errors.DeploymentNotFoundError("no deployment 'x'", http_status=404)
        if text == "beta two":
            return errors.ContentFilterError("filtered", http_status=400, code="content_filter",
                                             content_filter={"hate": {"filtered": True}})
        return ValueError("SDK parser choked")

    res = await _run({"a": FakeEndpoint(script=script)})
    f = res.frame
    assert list(f["status"]) == ["error", "content_filtered", "error"]
    assert list(f["http_status"].iloc[1:]) == [400, 404]
    assert json.loads(f["content_filter"].iloc[1]) == {"hate": {"filtered": True}}
    assert f["error_type"].iloc[0] == "ValueError" and f["attempts"].iloc[0] == 1


async def test_missing_finish_reason_is_incomplete_after_retries() -> None:
    ep = FakeEndpoint(finish_reason=None)
    res = await _run({"a": ep}, prompts=["x"], max_attempts=2)
    row = res.frame.iloc[0]
    assert row["status"] == "incomplete" and row["attempts"] == 2
    assert row["output"] == "w0 w1 w2 w3 " and not math.isnan(row["ttft_s"])


async def test_output_content_filter_finish_reason() -> None:
    res = await _run({"a": FakeEndpoint(finish_reason="content_filter")}, prompts=["x"])
    assert res.frame["status"].iloc[0] == "content_filtered"


async def test_missing_key_fails_only_that_deployment(monkeypatch) -> None:
    from compare.endpoints.base import Endpoint  # noqa: F401  (protocol import stays valid)

    monkeypatch.delenv("AZURE_AI_CHAT_KEY", raising=False)

    class Pool(FakePool):
        def get(self, deployment):
            if deployment.name == "nokey":
                deployment.resolve_api_key()
            return super().get(deployment)

    deps = [Deployment(name="nokey", endpoint="http://127.0.0.1:9"), *deployments("ok")]
    res = await arun(["x", "y"], deps, pool=Pool({"ok": FakeEndpoint()}), progress=False)
    f = res.frame
    assert (f[f["deployment"] == "nokey"]["error_type"] == "CredentialError").all()
    assert f[f["deployment"] == "nokey"]["error_message"].str.contains("AZURE_AI_CHAT_KEY").all()
    assert (f[f["deployment"] == "ok"]["status"] == "ok").all()


async def test_requests_per_minute_pacing() -> None:
    ep = FakeEndpoint()
    t0 = time.perf_counter()
    res = await _run({"a": ep}, prompts=[f"q{i}" for i in range(16)],
                     deps=deployments("a", requests_per_minute=600))  # one every 0.1 s
    elapsed = time.perf_counter() - t0
    assert len(res) == 16
    assert 1.45 <= elapsed < 2.5
    starts = sorted(res.frame["started_at"])
    gaps = [(b - a).total_seconds() for a, b in pairwise(starts)]
    assert min(gaps) >= 0.095  # evenly spaced, no burst


async def test_retry_after_pauses_the_deployment() -> None:
    calls: list[float] = []

    def script(req: ChatRequest, attempt: int):
        calls.append(time.perf_counter())
        if len(calls) == 1:
            return errors.RateLimitError("429", http_status=429, retry_after_s=0.3)
        return None

    ep = FakeEndpoint(ttft_s=0.01, script=script)
    await _run({"a": ep}, prompts=[f"q{i}" for i in range(6)], deps=deployments("a",
               concurrency=1))
    assert calls[1] - calls[0] >= 0.29  # the next request waited for the deployment's pause


# -- checkpoint, resume, cancellation ----------------------------------------------------------


async def test_resume_replays_finished_and_sends_the_rest(tmp_path) -> None:
    out = tmp_path / "run"
    flaky = {"on": True}

    def script(req: ChatRequest, attempt: int):
        if flaky["on"] and req.messages[-1]["content"] == "gamma three":
            return errors.ServerError("down", http_status=500)
        return None

    ep = FakeEndpoint(script=script)
    first = await _run({"a": ep}, out=out, max_attempts=1)
    assert list(first.frame["status"]) == ["ok", "ok", "error"]
    assert (out / RECORDS_FILE).exists() and (out / "results.parquet").exists()
    run_id = first.run_id
    flaky["on"] = False
    ep.calls.clear()
    seen = []
    second = await _run({"a": ep}, out=out, on_record=seen.append)
    assert dict(ep.calls) == {"gamma three": 1}  # only the failed key was sent again
    f = second.frame
    assert list(f["cached"]) == [True, True, False]
    assert list(f["status"]) == ["ok", "ok", "ok"]
    assert second.run_id == run_id and set(f["run_id"]) == {run_id}
    assert len(seen) == 3 and sum(r.cached for r in seen) == 2
    assert second.summary().loc["a", "n_timing"] == 1  # cached rows never count for latency
    assert len(read_checkpoint(out)) == 4  # append-only; last row per key wins on load
    loaded = Results.load(out)
    assert list(loaded.frame["cached"]) == [True, True, False]


async def test_torn_last_line_is_dropped_and_truncated(tmp_path) -> None:
    out = tmp_path / "run"
    ep = FakeEndpoint()
    await _run({"a": ep}, out=out, prompts=["x", "y"])
    path = out / RECORDS_FILE
    good = path.read_bytes()
    lines = good.splitlines(keepends=True)
    path.write_bytes(lines[0] + lines[1][: len(lines[1]) // 2])  # killed mid-write
    (out / "results.parquet").unlink()
    with pytest.warns(RuntimeWarning, match="torn"):
        partial = Results.load(out)
    assert len(partial) == 1
    ep.calls.clear()
    with pytest.warns(RuntimeWarning, match="torn"):
        res = await _run({"a": ep}, out=out, prompts=["x", "y"])
    assert sum(ep.calls.values()) == 1 and list(res.frame["cached"]) == [True, False]
    rows = [json.loads(line) for line in path.read_bytes().splitlines()]
    assert len(rows) == 2  # the torn tail was cut off before appending


async def test_cancel_keeps_finished_records(tmp_path) -> None:
    out = tmp_path / "run"
    ep = FakeEndpoint(ttft_s=0.05)
    prompts = [f"q{i}" for i in range(40)]
    task = asyncio.ensure_future(_run({"a": ep}, out=out, prompts=prompts,
                                      deps=deployments("a", concurrency=2)))
    await asyncio.sleep(0.33)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    kept = read_checkpoint(out)
    assert 4 <= len(kept) < 40
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    assert len(Results.load(out)) == len(kept)
    ep.calls.clear()
    res = await _run({"a": ep}, out=out, prompts=prompts)
    assert sum(ep.calls.values()) == 40 - len(kept)
    assert int(res.frame["cached"].sum()) == len(kept) and len(res) == 40


async def test_sync_run_inside_a_running_loop() -> None:
    # Jupyter runs cells inside an event loop; run() must still work there.
    ep = FakeEndpoint()
    res = run(["x", "y"], deployments("a"), pool=FakePool({"a": ep}), progress=False)
    assert len(res) == 2 and set(res.frame["status"]) == {"ok"}


def test_sync_run_without_a_loop_and_progress_bar(capsys) -> None:
    ep = FakeEndpoint()
    res = run(["x", "y"], deployments("a"), pool=FakePool({"a": ep}), progress=True)
    assert len(res) == 2
    err = capsys.readouterr().err
    assert "2/2" in err and "a 2 done/0 failed" in err


async def test_on_record_errors_do_not_stop_the_run() -> None:
    def boom(rec):
        raise RuntimeError("callback bug")

    with pytest.warns(RuntimeWarning, match="on_record"):
        res = await _run({"a": FakeEndpoint()}, on_record=boom)
    assert len(res) == 3


async def test_tokens_per_minute_pacing_is_corrected_by_usage(monkeypatch) -> None:
    import compare.runner.limits as runner_module

    monkeypatch.setattr(runner_module, "RATE_WINDOW_S", 0.5)  # 500 tokens per 0.5 s window
    # Without max_tokens each request is booked at 256 + prompt but uses ~5: corrected by usage,
    # 10 requests fit one window (uncorrected: one per window, ~3 s).
    ep = FakeEndpoint()
    t0 = time.perf_counter()
    res = await _run({"a": ep}, prompts=[f"q{i}" for i in range(10)],
                     deps=deployments("a", tokens_per_minute=60000, concurrency=1))
    assert len(res) == 10 and time.perf_counter() - t0 < 0.5


async def test_tokens_per_minute_pacing_charges_max_tokens(monkeypatch) -> None:
    import compare.runner.limits as runner_module

    monkeypatch.setattr(runner_module, "RATE_WINDOW_S", 0.5)  # 50 tokens per 0.5 s window
    # With max_tokens set, services charge prompt + max_tokens at admission; so does the pacing:
    # 50 tokens each, one request per window (0.5 s + 0.1 s slack).
    ep = FakeEndpoint()
    t0 = time.perf_counter()
    await _run({"a": ep}, prompts=[f"q{i}" for i in range(4)], max_tokens=49,
               deps=deployments("a", tokens_per_minute=6000, concurrency=1))
    assert 1.75 <= time.perf_counter() - t0 < 3.0


def test_keyboard_interrupt_in_a_running_loop_keeps_records(tmp_path) -> None:
    import _thread
    import threading

    out = tmp_path / "run"
    ep = FakeEndpoint(ttft_s=0.05)

    async def cell() -> None:  # what a notebook cell does: sync run() inside a running loop
        threading.Timer(0.4, _thread.interrupt_main).start()
        run([f"q{i}" for i in range(60)], deployments("a", concurrency=2),
            pool=FakePool({"a": ep}), progress=False, out=out)

    # Like ipykernel (and unlike asyncio.run), this loop leaves SIGINT to Python's default
    # handler, so "interrupt the kernel" raises KeyboardInterrupt inside the blocked cell.
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(cell())
    finally:
        loop.close()
    kept = read_checkpoint(out)
    assert 4 <= len(kept) < 60
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"


async def test_a_killed_rerun_never_leaves_a_stale_parquet(tmp_path) -> None:
    out = tmp_path / "run"
    ep = FakeEndpoint(ttft_s=0.05)
    await _run({"a": ep}, out=out, prompts=["x", "y"])
    assert (out / "results.parquet").exists()
    task = asyncio.ensure_future(_run({"a": ep}, out=out, prompts=["x", "y", "z", "w"],
                                      deps=deployments("a", concurrency=1)))
    for _ in range(200):
        await asyncio.sleep(0.01)
        if len(read_checkpoint(out)) == 3:
            break
    # Mid-rerun (as if killed now): the old parquet is gone, the checkpoint has the new record.
    assert not (out / "results.parquet").exists()
    assert len(Results.load(out)) == 3
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_load_prefers_a_newer_checkpoint_over_the_parquet(tmp_path) -> None:
    import os

    ep = FakeEndpoint()
    out = tmp_path / "run"
    res = run(["x", "y"], deployments("a"), pool=FakePool({"a": ep}), progress=False, out=out)
    extra = json.loads((out / RECORDS_FILE).read_text().splitlines()[0])
    extra["prompt_id"] = "late"
    with open(out / RECORDS_FILE, "a") as f:  # a later run's record, then a kill before saving
        f.write(json.dumps(extra) + "\n")
    parquet_ns = (out / "results.parquet").stat().st_mtime_ns
    os.utime(out / RECORDS_FILE, ns=(parquet_ns + 10**9, parquet_ns + 10**9))
    assert len(res) == 2 and len(Results.load(out)) == 3


@pytest.mark.parametrize("error", [
    errors.DeploymentNotFoundError("HTTP 404 — no deployment 'a'", http_status=404),
    errors.TransportError("no HTTP answer from 'a' at 127.0.0.1:9: connection refused"),
])
async def test_unusable_first_request_stops_the_deployment(error: Exception) -> None:
    bad = FakeEndpoint(script=lambda r, a: error)
    good = FakeEndpoint()
    with pytest.warns(RuntimeWarning, match="deployment 'bad' cannot be used"):
        res = await _run({"bad": bad, "good": good}, prompts=[f"q{i}" for i in range(6)],
                         deps=deployments("bad", "good", concurrency=2), max_attempts=2)
    f = res.frame
    b = f[f["deployment"] == "bad"]
    sent = 2 if error.retryable else 1  # the first request's attempts, nothing more
    assert sum(bad.calls.values()) == sent
    assert (b["error_type"] == type(error).__name__).all()
    assert b["error_message"].str.startswith("not sent: deployment 'bad' was stopped").sum() == 5
    assert (f[f["deployment"] == "good"]["status"] == "ok").all()


async def test_fail_fast_raises_naming_every_unusable_deployment(tmp_path) -> None:
    eps = {"a": FakeEndpoint(script=lambda r, n: errors.DeploymentNotFoundError(
               "HTTP 404 — no deployment 'a'", http_status=404)),
           "b": FakeEndpoint(script=lambda r, n: errors.AuthenticationError(
               "HTTP 401 — the key or token was refused", http_status=401)),
           "c": FakeEndpoint(ttft_s=0.05)}
    with pytest.raises(errors.DeploymentUnusableError) as info:
        await _run(eps, deps=deployments("a", "b", "c"), fail_fast=True, out=tmp_path / "r")
    assert set(info.value.problems) == {"a", "b"}
    assert str(info.value).startswith("cannot use these deployments (nothing else was sent):")
    assert "  a: DeploymentNotFoundError: HTTP 404" in str(info.value)
    assert sum(eps["a"].calls.values()) == sum(eps["b"].calls.values()) == 1
    assert sum(eps["c"].calls.values()) <= 3  # c's own fan-out may have started, then stopped


async def test_declared_capacity_is_the_default_and_shared_by_its_group() -> None:
    eps = {n: FakeEndpoint(ttft_s=0.02) for n in ("x", "y", "z")}
    deps = [*deployments("x", "y", max_concurrent_requests=1, capacity_group="one-model"),
            *deployments("z", max_concurrent_requests=2)]
    shared_in_flight: list[int] = []

    def track(rec) -> None:
        shared_in_flight.append(eps["x"].in_flight + eps["y"].in_flight)

    res = await _run(eps, prompts=[f"q{i}" for i in range(6)], deps=deps, on_record=track)
    assert len(res) == 18
    # x and y share one loaded model: one request at a time across both; z its own two.
    assert eps["x"].max_in_flight == eps["y"].max_in_flight == 1
    assert max(shared_in_flight) <= 1 and eps["z"].max_in_flight == 2


async def test_more_in_flight_than_declared_says_ttft_includes_queueing() -> None:
    deps = deployments("x", max_concurrent_requests=1, concurrency=4)
    with pytest.warns(RuntimeWarning, match=r"'x' serves 1 request at once .* sends up to 4: "
                                            r"its TTFT and latency include waiting"):
        res = await _run({"x": FakeEndpoint()}, deps=deps)
    assert len(res) == 3


async def test_resume_refuses_another_comparison_and_fresh_starts_over(tmp_path) -> None:
    out = tmp_path / "run"
    await _run({"a": FakeEndpoint()}, out=out)
    with pytest.raises(errors.ConfigError, match=r"holds rows of other deployments \(a; this "
                                                 r"run: b\) — use a new out directory"):
        await _run({"b": FakeEndpoint()}, out=out)
    with pytest.raises(errors.ConfigError, match="holds rows of another prompt set"):
        await _run({"a": FakeEndpoint()}, out=out, prompts=["other"])
    moved = deployments("a")[0].replace(endpoint="https://other.example.com")
    with pytest.raises(errors.ConfigError, match="holds rows of deployment 'a' from another"):
        await _run({"a": FakeEndpoint()}, out=out, deps=[moved])
    # The local endpoint takes a new port each time it starts: a loopback port is not a move.
    restarted = deployments("a")[0].replace(endpoint="http://127.0.0.1:10")
    res = await _run({"a": FakeEndpoint()}, out=out, deps=[restarted])
    assert res.frame["cached"].all()
    # Extending the run (one more prompt) resumes; fresh=True starts over.
    ep = FakeEndpoint()
    res = await _run({"a": ep}, out=out, prompts=[*PROMPTS, "delta four"])
    assert int(res.frame["cached"].sum()) == 3 and sum(ep.calls.values()) == 1
    fresh = FakeEndpoint()
    res = await _run({"b": fresh}, out=out, fresh=True)
    assert not res.frame["cached"].any() and sum(fresh.calls.values()) == 3


async def test_resume_logs_what_it_does(tmp_path, caplog) -> None:
    out = tmp_path / "run"
    await _run({"a": FakeEndpoint()}, out=out)
    with caplog.at_level("INFO", logger="compare.runner"):
        await _run({"a": FakeEndpoint()}, out=out, repeats=2)
    assert f"resuming {out}: 3 finished, 3 to send" in caplog.text


async def test_scrubbing_replaces_only_the_exact_secret_never_prose() -> None:
    # A key that is also a word (here 8+ characters, the minimum scrubbed) must not eat the
    # same word in a message; the exact key as a token is replaced.
    message = "Access denied: the key 'password' is wrong; password protected resources"
    bad = FakeEndpoint(script=lambda r, a: errors.AuthenticationError(
        f"{message} (sent: secret-password-123)", http_status=401))
    deps = [Deployment(name="bad", endpoint="http://127.0.0.1:9", kind="openai",
                       api_key="secret-password-123")]
    with pytest.warns(RuntimeWarning):
        res = await _run({"bad": bad}, prompts=["x"], deps=deps)
    text = res.frame["error_message"].iloc[0]
    assert "password protected" in text and "'password' is wrong" in text
    assert "secret-password-123" not in text and "(sent: ***)" in text
    assert text.count("HTTP 401") <= 1


def test_python_users_see_the_first_failure_per_deployment() -> None:
    recs = [Record(run_id="r", prompt_id=f"p{i}", deployment=d, repeat=0, endpoint_kind="k",
                   status="error" if d == "bad" else "ok", error_type="AuthenticationError",
                   error_message="HTTP 401: key refused — check the key in AZURE_AI_CHAT_KEY")
            for d in ("good", "bad") for i in range(2)]
    text = repr(Results.from_records(recs))
    assert text.splitlines() == [
        "Results(4 rows; deployments: good, bad; ok=2 error=2)",
        "  bad: 2 failed, first: AuthenticationError: HTTP 401: key refused — check the key in "
        "AZURE_AI_CHAT_KEY",
    ]


async def test_a_deployment_that_stops_answering_mid_run_is_stopped() -> None:
    # Its first request is fine; then every attempt gets no HTTP answer (the server went away):
    # after MAX_UNREACHABLE_IN_A_ROW such attempts in a row the rest are not sent.
    from compare.runner.measure import MAX_UNREACHABLE_IN_A_ROW

    def script(req: ChatRequest, attempt: int):
        if req.messages[-1]["content"] != "q0":
            return errors.TransportError("no HTTP answer from 'a' at 127.0.0.1:9: connection "
                                         "refused")
        return None

    ep = FakeEndpoint(script=script)
    res = await _run({"a": ep}, prompts=[{"id": f"q{i}", "prompt": f"q{i}"} for i in range(40)],
                     max_attempts=3, deps=deployments("a", concurrency=2))
    f = res.frame
    assert f.loc[f["prompt_id"] == "q0", "status"].item() == "ok"
    sent = int(f["attempts"].sum()) - 1
    assert MAX_UNREACHABLE_IN_A_ROW <= sent <= MAX_UNREACHABLE_IN_A_ROW + 2
    stopped = f[f["attempts"] == 0]
    assert len(stopped) >= 30 and stopped["error_message"].str.startswith(
        "not sent: deployment 'a' was stopped after it gave no HTTP answer to 8 attempts").all()
