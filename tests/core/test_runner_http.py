"""The runner against the real local endpoint over HTTP, through every real SDK adapter.

One server per module with simulated deployments whose delays and faults are fixed, so the
record columns can be checked exactly: TTFT and latency against the configured delays, attempts
and backoff against deterministic faults, statuses for 401/404/content filter/truncated streams.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from itertools import pairwise

import pytest

from compare.deployments import ONLINE_KINDS as KINDS
from compare.deployments import Deployment
from compare.deployments_file import local_deployments
from compare.records import RECORD_COLUMNS
from compare.runner import Backoff, arun, run

TTFT_MS = 80
ITL_MS = 12
TOKENS = 10
FAST = Backoff(base_s=0.01, cap_s=0.02)

CONFIG = {
    "deployments": {
        "fixed": {
            "backend": "simulated",
            "simulated": {"seed": 1, "output_tokens": TOKENS, "ttft_ms": TTFT_MS,
                          "itl_ms": ITL_MS},
            "capacity": {"rpm": 100000, "tpm": 100000000},
        },
        "quick": {
            "backend": "simulated",
            "simulated": {"seed": 2, "output_tokens": 4, "ttft_ms": 2, "itl_ms": 1},
            "content_filter": [
                {"category": "violence", "severity": "medium", "terms": ["forbidden"],
                 "apply_to": "prompt"},
            ],
        },
        "retry429": {
            "backend": "simulated",
            "simulated": {"seed": 3, "output_tokens": 4, "ttft_ms": 2, "itl_ms": 1},
            "faults": [{"fault": "429", "first_attempts": 2, "retry_after_s": 0.05}],
        },
        "retry503": {
            "backend": "simulated",
            "simulated": {"seed": 4, "output_tokens": 4, "ttft_ms": 2, "itl_ms": 1},
            "faults": [{"fault": "503", "first_attempts": 1}],
        },
        "denied": {
            "backend": "simulated",
            "simulated": {"seed": 5, "output_tokens": 4, "ttft_ms": 2, "itl_ms": 1},
            "faults": [{"fault": "401", "rate": 1.0}],
        },
        "truncated": {
            "backend": "simulated",
            "simulated": {"seed": 6, "output_tokens": 6, "ttft_ms": 2, "itl_ms": 1},
            "faults": [{"fault": "no_finish_reason", "rate": 1.0}],
        },
        **{
            f"limited-{limit}": {
                "backend": "simulated",
                "simulated": {"seed": 8, "output_tokens": 8, "ttft_ms": 5, "itl_ms": 1},
                "capacity": {"rpm": 1200, "tpm": 60000, "window_s": 1},
            }
            for limit in ("requests", "tokens")
        },
        "faulty": {
            "backend": "simulated",
            "simulated": {"seed": 7, "output_tokens": 6, "ttft_ms": 2, "itl_ms": 1},
            "faults": [
                {"fault": "429_retry_after_ms", "first_attempts": 1, "match": "[ms]",
                 "retry_after_s": 0.03},
                {"fault": "429_no_retry_after", "first_attempts": 1, "match": "[none]"},
                {"fault": "502", "first_attempts": 2, "match": "[502]"},
                {"fault": "reset_before_response", "first_attempts": 1, "match": "[reset]"},
                {"fault": "reset_mid_stream", "first_attempts": 1, "match": "[midreset]"},
                {"fault": "error_event_mid_stream", "first_attempts": 1, "match": "[event]"},
                {"fault": "hang_before_headers", "first_attempts": 1, "match": "[hang]",
                 "hang_s": 5},
            ],
        },
    }
}
PROMPTS = [{"id": f"q{i}", "prompt": f"Tell me about topic {i}."} for i in range(4)]


@pytest.fixture(scope="module")
def server():
    from compare.server.local import local_endpoint

    with local_endpoint(config=CONFIG) as ep:
        yield ep


def _deps(ep, *names, kind="azure-inference", **kw) -> list[Deployment]:
    return local_deployments(ep, kind=kind, names=list(names), **kw)


def _requests(ep, name: str) -> int:
    """Requests the server saw for a deployment (its admin stats)."""
    return int(ep.stats()[name]["requests"])


def _check_ok_rows(frame, stream: bool) -> None:
    # The record columns, then what to group by: local deployments' labels, the prompts' tags.
    assert tuple(frame.columns) == (*RECORD_COLUMNS, "label_endpoint", "label_model",
                                    "label_version", "label_deployment_type", "tags")
    assert (frame["status"] == "ok").all(), frame[["status", "error_message"]]
    assert frame["output"].str.len().gt(0).all()
    assert frame["model"].str.contains("simulated").all()
    assert (frame["completion_tokens"] == TOKENS).all() and frame["prompt_tokens"].gt(0).all()
    assert (frame["finish_reason"].isin(["stop", "length"])).all()
    assert (frame["attempts"] == 1).all() and (frame["backoff_s"] == 0).all()
    assert (frame["streamed"] == stream).all()
    expected_latency = (TTFT_MS + (TOKENS - 1) * ITL_MS) / 1000 if stream else TTFT_MS / 1000
    assert frame["latency_s"].min() >= expected_latency - 0.002
    if stream:
        assert frame["ttft_s"].notna().all() and frame["decode_tps"].gt(0).all()
    else:
        assert frame["ttft_s"].isna().all() and frame["itl_p50_s"].isna().all()


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "nostream"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_adapter_sync(server, kind: str, stream: bool) -> None:
    res = run(PROMPTS, _deps(server, "fixed", kind=kind), stream=stream, progress=False)
    assert len(res) == 4
    _check_ok_rows(res.frame, stream)
    assert (res.frame["endpoint_kind"] == kind).all()


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "nostream"])
@pytest.mark.parametrize("kind", KINDS)
async def test_every_adapter_async(server, kind: str, stream: bool) -> None:
    res = await arun(PROMPTS, _deps(server, "fixed", kind=kind), stream=stream, progress=False,
                     repeats=2)
    assert len(res) == 8 and sorted(set(res.frame["repeat"])) == [0, 1]
    _check_ok_rows(res.frame, stream)


@pytest.mark.parametrize("kind", KINDS)
async def test_timing_matches_the_configured_delays(server, kind: str) -> None:
    from compare.endpoints import EndpointPool

    deps = _deps(server, "fixed", kind=kind, concurrency=2)
    pool = EndpointPool()
    try:
        # Warm the connections first: TCP connects are real client time, but not the server's.
        await arun(["warm a", "warm b"], deps, pool=pool, progress=False)
        prompts = [f"timing probe {i}" for i in range(16)]
        res = await arun(prompts, deps, pool=pool, progress=False)
    finally:
        await pool.aclose()
    f = res.frame
    assert (f["status"] == "ok").all()
    ttft_err = sorted(v - TTFT_MS / 1000 for v in f["ttft_s"])
    expected = (TTFT_MS + (TOKENS - 1) * ITL_MS) / 1000
    lat_err = sorted(v - expected for v in f["latency_s"])
    # 16 requests through 2 slots: 8 waves of ~0.19 s. Had the clock started before a slot was
    # free, wave k would measure k × 0.19 s too much. What remains is HTTP, the server's timer
    # slack and SDK parsing: a few ms, never below the configured delay. Other processes share
    # the 2 cores (load 4-6 seen while tests ran), so the bounds are on the quieter quarter and
    # the median (typically 3-6 ms), with a loose max.
    for err in (ttft_err, lat_err):
        assert err[0] > -0.001, err
        assert err[len(err) // 4] < 0.010, err
        assert statistics.median(err) < 0.020, err
        assert err[-1] < 0.08, err
    assert statistics.median(f["itl_p50_s"]) == pytest.approx(ITL_MS / 1000, abs=0.003)
    tps = statistics.median(f["decode_tps"])
    assert tps == pytest.approx(1000 / ITL_MS, rel=0.25)
    assert (f["wall_s"] - f["latency_s"]).abs().max() < 1e-9  # one attempt: wall = latency


async def test_headers_captured(server) -> None:
    res = await arun(PROMPTS[:1], _deps(server, "fixed"), progress=False)
    row = res.frame.iloc[0]
    assert row["request_id"] and isinstance(row["request_id"], str)
    assert row["region"] == "local"
    assert row["ratelimit_remaining_requests"] > 0 and row["ratelimit_remaining_tokens"] > 0
    assert row["started_at"].year >= 2026


async def test_retries_are_counted_with_backoff(server) -> None:
    before = _requests(server, "retry429"), _requests(server, "retry503")
    res = await arun(PROMPTS[:2], _deps(server, "retry429", "retry503"), progress=False,
                     backoff=FAST)
    f = res.frame.set_index("deployment")
    r429 = f.loc["retry429"]
    assert (r429["status"] == "ok").all() and (r429["attempts"] == 3).all()
    # The service's retry-after (50 ms, twice) is what was slept.
    assert r429["backoff_s"].tolist() == pytest.approx([0.1, 0.1], abs=0.002)
    assert (r429["wall_s"] >= r429["latency_s"] + 0.1).all()
    r503 = f.loc["retry503"]
    assert (r503["attempts"] == 2).all() and (r503["backoff_s"] <= FAST.base_s).all()
    assert _requests(server, "retry429") - before[0] == 6  # every attempt went over the wire
    assert _requests(server, "retry503") - before[1] == 4


async def test_exhausted_retries_keep_the_status(server) -> None:
    res = await arun(["never enough"], _deps(server, "retry429"), progress=False, max_attempts=2,
                     backoff=FAST)
    row = res.frame.iloc[0]
    assert (row["status"], row["attempts"], row["http_status"]) == ("rate_limited", 2, 429)
    assert row["error_type"] == "RateLimitError"


async def test_refused_key_stops_only_that_deployment(server) -> None:
    bad = Deployment(name="badkey", deployment="quick", endpoint=server.url,
                     kind="azure-inference", api_key="not-the-key-0000", concurrency=1)
    deps = [bad, *_deps(server, "denied", concurrency=1), *_deps(server, "quick")]
    prompts = [f"p{i}" for i in range(6)]
    res = await arun(prompts, deps, progress=False)
    f = res.frame
    for name in ("badkey", "denied"):
        rows = f[f["deployment"] == name]
        assert (rows["status"] == "error").all()
        assert (rows["error_type"] == "AuthenticationError").all()
        assert int(rows["attempts"].sum()) == 1  # one refused request, the rest never sent
        assert rows["error_message"].str.contains("not sent").sum() == 5
    assert f.loc[f["deployment"] == "badkey", "error_message"].str.contains(
        "api_key given for deployment 'badkey'").all()
    assert (f.loc[f["deployment"] == "quick", "status"] == "ok").all()
    assert not f["error_message"].str.contains("not-the-key-0000", na=False).any()
    assert not f["error_message"].str.contains(server.api_key, regex=False, na=False).any()


@pytest.mark.parametrize("kind", KINDS)
async def test_unknown_deployment_and_content_filter_rows(server, kind: str) -> None:
    ghost = Deployment(name="ghost", endpoint=_deps(server, "quick", kind=kind)[0].endpoint,
                       kind=kind, api_key=server.api_key)
    prompts = ["a harmless question", "a forbidden question"]
    with pytest.warns(RuntimeWarning, match="deployment 'ghost' cannot be used"):
        res = await arun(prompts, [ghost, *_deps(server, "quick", kind=kind)], progress=False)
    f = res.frame.set_index(["deployment", res.frame.index])
    g = res.frame[res.frame["deployment"] == "ghost"]
    assert (g["status"] == "error").all() and (g["http_status"] == 404).all()
    assert (g["error_type"] == "DeploymentNotFoundError").all()
    # The first request found no such deployment; the other row was not sent.
    assert list(g["attempts"]) == [1, 0]
    assert g["error_message"].iloc[1].startswith("not sent: deployment 'ghost' was stopped")
    q = res.frame[res.frame["deployment"] == "quick"].reset_index(drop=True)
    assert q.loc[0, "status"] == "ok"
    assert q.loc[1, "status"] == "content_filtered" and q.loc[1, "http_status"] == 400
    assert "violence" in json.loads(q.loc[1, "content_filter"]).__repr__()
    assert q.loc[1, "attempts"] == 1
    assert len(f) == 4


async def test_stream_without_finish_reason_is_incomplete(server) -> None:
    res = await arun(["cut short"], _deps(server, "truncated"), progress=False, max_attempts=2,
                     backoff=FAST)
    row = res.frame.iloc[0]
    assert row["status"] == "incomplete" and row["attempts"] == 2
    assert row["output"] and not math.isnan(row["ttft_s"])


async def test_no_secret_in_any_file(server, tmp_path) -> None:
    out = tmp_path / "run"
    await arun(PROMPTS, _deps(server, "quick", "denied"), out=out, progress=False)
    for path in out.iterdir():
        assert server.api_key.encode() not in path.read_bytes(), path.name


# fault tag → (attempts, exact backoff_s or None for "jittered, at most the first ceiling")
FAULTS = {
    "[ms]": (2, 0.03),
    "[none]": (2, None),
    "[502]": (3, None),
    "[reset]": (2, None),
    "[midreset]": (2, None),
    "[event]": (2, None),
    "[hang]": (2, None),
}


@pytest.mark.parametrize("kind", KINDS)
async def test_each_fault_is_retried_to_success(server, kind: str) -> None:
    # The first attempt(s) of each distinct prompt fail (prompt text names the fault); the kind
    # in the text keeps the server's per-prompt attempt counters apart between kinds.
    prompts = [{"id": tag, "prompt": f"{tag} via {kind}"} for tag in FAULTS]
    deps = _deps(server, "faulty", kind=kind, read_timeout_s=0.5)
    res = await arun(prompts, deps, progress=False, backoff=FAST, max_attempts=4)
    f = res.frame.set_index("prompt_id")
    for tag, (attempts, backoff) in FAULTS.items():
        row = f.loc[tag]
        assert row["status"] == "ok", (tag, row["error_type"], row["error_message"])
        assert row["attempts"] == attempts, tag
        if backoff is not None:
            assert row["backoff_s"] == pytest.approx(backoff, abs=1e-6), tag
        else:
            assert 0 <= row["backoff_s"] <= FAST.cap_s * (attempts - 1), tag
        assert row["wall_s"] >= row["latency_s"] + row["backoff_s"] - 1e-6, tag
        assert row["output"], tag
    assert f.loc["[hang]", "wall_s"] >= 0.5  # the read timeout fired, then the retry succeeded


@pytest.mark.parametrize("limit", ["requests", "tokens"])
async def test_client_pacing_meets_the_service_limits(server, monkeypatch, limit: str) -> None:
    import compare.runner.limits as runner_module

    # The local endpoint's quota here: 20 requests or 1000 tokens per 1 s sliding window.
    monkeypatch.setattr(runner_module, "RATE_WINDOW_S", 1.0)
    if limit == "requests":
        pacing, n, max_tokens, ideal = {"requests_per_minute": 1200}, 40, 8, 39 / 20
    else:  # each request counts prompt + max_tokens = ~100 tokens: 10 per window
        pacing, n, max_tokens, ideal = {"tokens_per_minute": 60000}, 30, 90, 2.0
    deps = _deps(server, f"limited-{limit}", **pacing)  # its own quota: no earlier traffic
    prompts = [f"{limit} pacing {i}" for i in range(n)]
    t0 = time.perf_counter()
    res = await arun(prompts, deps, progress=False, max_tokens=max_tokens, backoff=FAST)
    elapsed = time.perf_counter() - t0
    f = res.frame
    assert (f["status"] == "ok").all()
    throttled = int((f["attempts"] > 1).sum())
    assert throttled <= 1, f[["attempts", "backoff_s"]]  # pacing, not 429s, sets the pace
    assert ideal * 0.9 <= elapsed <= ideal * 1.3


async def test_run_inside_a_loop_draws_the_bar_on_the_calling_thread(server, monkeypatch) -> None:
    """Jupyter's case: run() from a running loop works on a worker thread, but the tqdm.auto bar
    (an ipywidget there) is created and updated only on the calling (kernel main) thread."""
    import threading

    import tqdm.auto

    calls: list[tuple[str, threading.Thread]] = []

    class Spy(tqdm.auto.tqdm):  # the real bar, recording which thread touches it
        def __init__(self, *args, **kwargs) -> None:
            calls.append(("init", threading.current_thread()))
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            calls.append(("update", threading.current_thread()))
            return super().update(n)

        def close(self) -> None:
            calls.append(("close", threading.current_thread()))
            super().close()

    monkeypatch.setattr(tqdm.auto, "tqdm", Spy)
    res = run(PROMPTS, _deps(server, "quick"), progress=True)
    assert len(res.frame) == len(PROMPTS)
    assert {t for _, t in calls} == {threading.current_thread()}
    names = [n for n, _ in calls]
    assert names[0] == "init" and names[-1] == "close"
    assert names.count("update") == len(PROMPTS)  # close: tqdm may call it again itself


async def test_resume_resends_a_prompt_whose_text_or_parameters_changed(server, tmp_path) -> None:
    from compare.checkpoint import REQUEST_HASH_KEY, read_checkpoint

    out = tmp_path / "run"
    deps = _deps(server, "quick")
    prompts = [{"id": f"k{i}", "prompt": f"Resume check {i}."} for i in range(3)]
    before = _requests(server, "quick")
    first = await arun(prompts, deps, out=out, progress=False)
    assert (first.frame["status"] == "ok").all() and _requests(server, "quick") - before == 3
    lines = read_checkpoint(out)
    # The fingerprint rides in the checkpoint line only; the record columns stay as designed.
    assert all(len(row[REQUEST_HASH_KEY]) == 16 for row in lines)
    assert REQUEST_HASH_KEY not in first.frame.columns

    same = await arun(prompts, deps, out=out, progress=False)
    assert same.frame["cached"].all() and _requests(server, "quick") - before == 3
    assert same.manifest["resent_changed_requests"] == 0

    # Same id, new text: only that key is sent again, and the new answer replaces the old.
    edited = [*prompts[:2], {"id": "k2", "prompt": "A different question now."}]
    again = await arun(edited, deps, out=out, progress=False)
    assert _requests(server, "quick") - before == 4
    assert again.manifest["resent_changed_requests"] == 1
    fresh = again.frame.set_index("prompt_id")
    assert not fresh.loc["k2", "cached"] and fresh.loc[["k0", "k1"], "cached"].all()
    assert len(again.frame) == 3

    # A changed parameter changes every request of the deployment.
    more = await arun(edited, deps, out=out, progress=False, max_tokens=7)
    assert _requests(server, "quick") - before == 7 and not more.frame["cached"].any()

    # Checkpoint lines written before fingerprints existed are trusted, not re-sent.
    text = (out / "records.jsonl").read_text()
    (out / "records.jsonl").write_text("".join(
        json.dumps({k: v for k, v in json.loads(line).items() if k != REQUEST_HASH_KEY}) + "\n"
        for line in text.splitlines()))
    old = await arun(prompts, deps, out=out, progress=False)
    assert old.frame["cached"].all() and _requests(server, "quick") - before == 7


async def test_shared_limit_serialises_deployments_without_queueing_in_ttft(server) -> None:
    """Two names on one backend (like smollm2 / smollm2-precise on one loaded model) with a
    shared limit of 1: never both in flight, and the wait is before the send (not in ttft_s)."""
    from dataclasses import replace

    import pandas as pd

    base = _deps(server, "fixed")[0]
    deps = [replace(base, name=n, deployment="fixed", concurrency=2) for n in ("a", "b")]
    prompts = [f"shared {i}" for i in range(4)]
    t0 = time.perf_counter()
    res = await arun(prompts, deps, progress=False, shared_limits=[(["a", "b"], 1)])
    elapsed = time.perf_counter() - t0
    f = res.frame
    assert (f["status"] == "ok").all() and len(f) == 8
    start = pd.to_datetime(f["started_at"], utc=True).map(lambda t: t.timestamp()).to_numpy()
    spans = sorted(zip(start, start + f["latency_s"].to_numpy(), strict=True))
    assert all(nxt[0] >= end - 0.002 for (_, end), nxt in pairwise(spans)), spans
    assert f["ttft_s"].max() < (TTFT_MS + 40) / 1000
    assert elapsed >= f["latency_s"].sum() - 0.01  # one after another
    assert res.manifest["config"]["shared_limits"] == [[["a", "b"], 1]]


@pytest.mark.parametrize(("limits", "needle"), [
    ([(["a", "ghost"], 1)], "no deployment named 'ghost'"),
    ([(["a"], 0)], "positive integer"),
    ([(["a"], 1), (["a", "b"], 1)], "'a' is in two groups"),
    ([("a",)], "expected (names, n) pairs"),
])
async def test_shared_limits_are_checked(server, limits, needle: str) -> None:
    from dataclasses import replace

    from compare.errors import ConfigError

    base = _deps(server, "quick")[0]
    deps = [replace(base, name=n, deployment="quick") for n in ("a", "b")]
    with pytest.raises(ConfigError) as info:
        await arun(["x"], deps, progress=False, shared_limits=limits)
    assert needle in str(info.value)
