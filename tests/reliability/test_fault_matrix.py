"""The fault matrix: every fault of issue 6 × every SDK adapter, through the runner over real HTTP.

One local endpoint serves one simulated deployment per fault plus a healthy one. Each case runs
two prompts × two repeats against [faulty, healthy] and checks:

- exactly one final record per prompt × deployment × repeat;
- the documented status / error_type / http_status / attempts / message of the faulty rows
  (a prompt containing "always" fails on every attempt; for retryable faults the other prompt
  fails only its first attempt, so the retry is seen to work);
- every attempt the records count reached the server (its admin stats), no more, no fewer;
- the healthy deployment of the same run finishes normally;
- an interrupted stream is never `ok`.

Short timeouts and tiny backoffs keep the matrix to about a minute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from compare.deployments import Deployment
from compare.deployments_file import local_deployments
from compare.runner import Backoff, run
from compare.server.local import local_endpoint

from ._support import SIM, free_port, one_row_per_key, sim_dep

MAX_ATTEMPTS = 3
FAST = Backoff(base_s=0.01, cap_s=0.02)
READ_TIMEOUT_S = 0.6
HANG_S = 3.0  # server side; far beyond the client's read timeout
RETRY_AFTER_S = 0.05
OVERSIZED_CHARS = 200_000
KINDS = ("azure-inference", "azure-openai", "openai")
PROMPTS = [
    {"id": "always", "prompt": "always fail on this prompt please"},
    {"id": "once", "prompt": "this prompt fails only at first"},
]
REPEATS = 2
FILTER_TERM = "forbidden-term"


@dataclass(frozen=True)
class Case:
    fault: str
    status: str  # of the rows that fail on every attempt
    error_type: str | None
    http_status: float | None
    retryable: bool
    message: str  # substring of error_message
    stream_only: bool = False  # the fault exists only in SSE bodies
    recovers: bool = True  # the "once" prompt succeeds on a retry
    deployment: dict[str, Any] = field(default_factory=dict)
    # (status, error_type, message) when not streamed, where that differs.
    nostream: tuple[str, str, str] | None = None


def _rules(fault: str, recovers: bool, **kw: Any) -> list[dict[str, Any]]:
    """'always' prompts fail every time; others fail their first attempt only (when retryable)."""
    if not recovers:
        return [{"fault": fault, "rate": 1.0, **kw}]
    return [{"fault": fault, "match": "always", "rate": 1.0, **kw},
            {"fault": fault, "first_attempts": 1, **kw}]


def _case(fault: str, status: str, error_type: str | None, http: float | None, retryable: bool,
          message: str, *, stream_only: bool = False,
          nostream: tuple[str, str, str] | None = None, **rule: Any) -> Case:
    return Case(fault, status, error_type, http, retryable, message, stream_only,
                recovers=retryable, deployment=sim_dep(*_rules(fault, retryable, **rule)),
                nostream=nostream)


CASES: list[Case] = [
    _case("429", "rate_limited", "RateLimitError", 429, True, "HTTP 429",
          retry_after_s=RETRY_AFTER_S),
    _case("429_retry_after_ms", "rate_limited", "RateLimitError", 429, True, "HTTP 429",
          retry_after_s=RETRY_AFTER_S),
    _case("429_no_retry_after", "rate_limited", "RateLimitError", 429, True, "HTTP 429"),
    *(_case(code, "error", "ServerError", int(code), True, f"HTTP {code}")
      for code in ("408", "500", "502", "503", "504")),
    _case("reset_before_response", "error", "TransportError", None, True, "no HTTP answer"),
    # Not streamed, the same reset cuts the JSON body: no answer at all, not a partial one.
    _case("reset_mid_stream", "incomplete", "IncompleteStreamError", None, True,
          "connection lost", after_tokens=2,
          nostream=("error", "TransportError", "no HTTP answer")),
    _case("hang_before_headers", "timeout", "EndpointTimeout", None, True, "read timeout",
          hang_s=HANG_S),
    _case("hang_mid_stream", "timeout", "EndpointTimeout", None, True, "read timeout",
          hang_s=HANG_S, after_tokens=2),
    _case("error_event_mid_stream", "incomplete", "IncompleteStreamError", None, True,
          "error event mid-stream", stream_only=True, after_tokens=2),
    _case("no_finish_reason", "incomplete", "IncompleteStreamError", None, True,
          "without finish_reason"),
    # Wire quirks a correct client must read as a normal answer.
    _case("sse_comments", "ok", None, None, False, "", stream_only=True),
    _case("crlf", "ok", None, None, False, "", stream_only=True),
    _case("oversized_output", "ok", None, None, False, "", size_chars=OVERSIZED_CHARS),
    # Not retryable: one attempt, no retry.
    _case("401", "error", "AuthenticationError", 401, False, "HTTP 401"),
    _case("403", "error", "AuthenticationError", 403, False, "HTTP 403"),
    _case("400", "error", "BadRequestError", 400, False, "HTTP 400"),
    _case("422", "error", "BadRequestError", 422, False, "HTTP 422"),
    Case("content_filter", "content_filtered", "ContentFilterError", 400, False, "content_filter",
         recovers=False, deployment=sim_dep(content_filter=[
             {"category": "violence", "severity": "medium", "terms": [FILTER_TERM],
              "apply_to": "prompt"}])),
    Case("unsupported_parameter", "error", "BadRequestError", 400, False, "unsupported_knob",
         recovers=False, deployment=sim_dep()),
    Case("unknown_deployment", "error", "DeploymentNotFoundError", 404, False, "HTTP 404",
         recovers=False),
    Case("connection_refused", "error", "TransportError", None, True, "no HTTP answer",
         recovers=False),
]
BY_NAME = {c.fault: c for c in CASES}


def _dep_name(case: Case) -> str:
    return "f-" + case.fault.replace("_", "-")


CONFIG = {
    "deployments": {
        **{_dep_name(c): c.deployment for c in CASES if c.deployment},
        # Same seed and shape as the faulty ones: the text a clean stream must reproduce.
        "healthy": sim_dep(),
    }
}


@pytest.fixture(scope="module")
def server():
    with local_endpoint(config=CONFIG) as ep:
        yield ep


def _deployments(server: Any, case: Case, kind: str) -> list[Deployment]:
    timeouts = {"read_timeout_s": READ_TIMEOUT_S, "connect_timeout_s": READ_TIMEOUT_S}
    healthy = local_deployments(server, kind=kind, names=["healthy"], **timeouts)[0]
    name = _dep_name(case)
    if case.fault == "unknown_deployment":
        faulty = healthy.replace(name=name, deployment="no-such-deployment")
    elif case.fault == "connection_refused":
        base = f"http://127.0.0.1:{free_port()}" + ("/openai/v1" if kind == "openai" else "")
        faulty = healthy.replace(name=name, endpoint=base)
    else:
        faulty = local_deployments(server, kind=kind, names=[name], **timeouts)[0]
        if case.fault == "unsupported_parameter":
            faulty = faulty.replace(extra={"unsupported_knob": 1}, extra_parameters="error")
    return [faulty, healthy]


def _prompts(case: Case) -> list[dict[str, str]]:
    if case.fault == "content_filter":
        return [{"id": p["id"], "prompt": f"{p['prompt']} {FILTER_TERM}"} for p in PROMPTS]
    return PROMPTS


def _server_requests(server: Any, name: str) -> int:
    stats = server.stats()
    return int(stats[name]["requests"]) if name in stats else 0


def _matrix() -> list[Any]:
    params = []
    for case in CASES:
        for kind in KINDS:
            for stream in (True, False):
                if stream is False and case.stream_only:
                    continue
                mode = "stream" if stream else "nostream"
                params.append(pytest.param(case.fault, kind, stream,
                                           id=f"{case.fault}-{kind}-{mode}"))
    return params


@pytest.mark.parametrize(("fault", "kind", "stream"), _matrix())
def test_fault(server: Any, fault: str, kind: str, stream: bool) -> None:
    case = BY_NAME[fault]
    if not stream and case.nostream is not None:
        status, error_type, message = case.nostream
        case = replace(case, status=status, error_type=error_type, message=message)
    server.reset_stats()  # also restarts the first-N-attempts counters
    deps = _deployments(server, case, kind)
    res = run(_prompts(case), deps, repeats=REPEATS, stream=stream, max_attempts=MAX_ATTEMPTS,
              backoff=FAST, concurrency=8, progress=False, max_tokens=16)
    frame = res.frame
    one_row_per_key(frame, len(PROMPTS), [d.name for d in deps], REPEATS)
    faulty = frame[frame["deployment"] == deps[0].name]
    healthy = frame[frame["deployment"] == "healthy"]

    # The run's other deployment is untouched by the fault.
    assert (healthy["status"] == "ok").all(), healthy[["status", "error_message"]]
    assert (healthy["attempts"] == 1).all()
    assert healthy["output"].str.len().gt(0).all()

    # Every attempt the records count is one request the server saw (none lost, none extra).
    if case.fault not in ("connection_refused", "unknown_deployment"):
        assert _server_requests(server, deps[0].name) == int(faulty["attempts"].sum()), faulty[
            ["prompt_id", "attempts", "status"]]

    if case.status == "ok":
        _check_clean(case, faulty, healthy, stream)
    elif case.fault in ("401", "403"):
        _check_auth(case, faulty)
    elif case.fault == "connection_refused":
        _check_stopped(case, faulty, "connection refused")
    elif case.fault == "reset_before_response" or (case.fault == "reset_mid_stream"
                                                     and not stream):
        _check_stopped(case, faulty, "connection reset")
    elif case.fault == "unknown_deployment":
        _check_stopped(case, faulty, "no deployment 'no-such-deployment'")
    else:
        _check_failing(case, faulty)


def _check_stopped(case: Case, faulty: Any, cause: str) -> None:
    """No HTTP answer at all (refused, reset before a whole answer) or no such deployment: the
    deployment's first request goes alone (retried when retryable); when it fails so, the
    deployment is stopped and its other rows say so instead of being sent one by one. (A body
    cut by a reset reads as no answer: the client cannot use a half JSON body.)"""
    sent = faulty[faulty["attempts"] > 0]
    assert len(sent) == 1, faulty[["prompt_id", "repeat", "attempts", "error_message"]]
    first = sent.iloc[0]
    assert (first["status"], first["error_type"]) == (case.status, case.error_type)
    assert case.message in first["error_message"] and cause in first["error_message"]
    # Retried before being declared unusable, when the error is retryable.
    assert first["attempts"] == (MAX_ATTEMPTS if case.retryable else 1)
    for _, row in faulty[faulty["attempts"] == 0].iterrows():
        assert row["error_type"] == case.error_type, row.to_dict()
        assert row["error_message"].startswith(
            f"not sent: deployment {row['deployment']!r} was stopped after its first request "
            f"failed ({case.message}"), row["error_message"]


def _check_failing(case: Case, faulty: Any) -> None:
    always = faulty[faulty["prompt_id"] == "always"]
    once = faulty[faulty["prompt_id"] == "once"]
    expected_attempts = MAX_ATTEMPTS if case.retryable else 1
    rows = faulty if not case.recovers else always
    for _, row in rows.iterrows():
        assert row["status"] == case.status, row.to_dict()
        assert row["error_type"] == case.error_type, row.to_dict()
        assert case.message in (row["error_message"] or ""), row["error_message"]
        assert row["attempts"] == expected_attempts, row.to_dict()
        if case.http_status is None:
            assert math.isnan(row["http_status"]), row.to_dict()
        else:
            assert row["http_status"] == case.http_status, row.to_dict()
        assert row["wall_s"] >= 0 and not row["cached"]
    if case.recovers:
        # Repeats of "once" race for its single injected failure: one retried, one not.
        assert (once["status"] == "ok").all(), once[["status", "error_message"]]
        assert sorted(once["attempts"]) == [1, 2], once[["repeat", "attempts"]]
        assert once["output"].str.len().gt(0).all()
        assert (once["finish_reason"].isin(["stop", "length"])).all()
        retried = once[once["attempts"] == 2].iloc[0]
        if case.fault in ("429", "429_retry_after_ms"):
            # The service's retry-after-ms is honoured exactly.
            assert retried["backoff_s"] == pytest.approx(RETRY_AFTER_S)
        else:
            assert 0 <= retried["backoff_s"] <= FAST.cap_s
        if case.fault in ("429", "429_retry_after_ms"):
            expected = RETRY_AFTER_S * (MAX_ATTEMPTS - 1)
            assert always["backoff_s"].to_numpy() == pytest.approx(expected)
        else:
            assert (always["backoff_s"] <= FAST.cap_s * (MAX_ATTEMPTS - 1)).all()
    if case.status in ("incomplete", "timeout"):
        # An interrupted answer is never `ok` and never claims to have finished.
        assert not (faulty.loc[faulty["prompt_id"] == "always", "finish_reason"]
                    .isin(["stop", "length"])).any()
    if case.fault == "content_filter":
        assert faulty["content_filter"].notna().all()
        assert faulty["content_filter"].str.contains('"filtered": true').all()


def _check_auth(case: Case, faulty: Any) -> None:
    # A refused key stops the deployment: the first answer(s) say 401/403, the rest were not sent.
    assert (faulty["status"] == "error").all()
    assert (faulty["error_type"] == "AuthenticationError").all(), faulty["error_type"]
    sent = faulty[faulty["attempts"] == 1]
    assert len(sent) >= 1 and (faulty["attempts"] <= 1).all()
    assert (sent["http_status"] == case.http_status).all()
    assert sent["error_message"].str.contains(case.message).all()
    not_sent = faulty[faulty["attempts"] == 0]
    assert not_sent["error_message"].str.startswith("not sent").all()


def _check_clean(case: Case, faulty: Any, healthy: Any, stream: bool) -> None:
    assert (faulty["status"] == "ok").all(), faulty[["status", "error_message"]]
    assert (faulty["attempts"] == 1).all()
    if case.fault == "oversized_output":
        assert (faulty["output"].str.len() == OVERSIZED_CHARS).all()
        assert (faulty["finish_reason"] == "length").all()
        return
    # Comments and CRLF change nothing: the same seeded text as the clean deployment, in full.
    same = faulty.merge(healthy, on=["prompt_id", "repeat"], suffixes=("", "_clean"))
    assert (same["output"] == same["output_clean"]).all()
    assert (same["completion_tokens"] == SIM["output_tokens"]).all()
    assert (same["finish_reason"] == "stop").all()
    if stream:
        assert same["ttft_s"].notna().all()
