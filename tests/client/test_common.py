"""Pure logic shared by the adapters: SSE decoding, Retry-After, status → error, defaults."""

from __future__ import annotations

import email.utils
import time

import pytest

from compare.deployments import Deployment
from compare.endpoints.completion import Accumulator
from compare.endpoints.http_errors import error_fields, http_error, retry_after_s
from compare.endpoints.sse import SSEDecoder
from compare.errors import (
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    DeploymentNotFoundError,
    RateLimitError,
    ServerError,
)
from compare.prompts import Prompt
from compare.runner.plan import build_request

# -- SSE -------------------------------------------------------------------------------------

STREAM = (
    b": keep-alive\r\n\r\n"
    b'data: {"a": 1}\r\n\r\n'
    b"event: error\n"
    b'data: {"error":\n'
    b'data:  "x"}\n\n'
    b"\r"  # a lone CR line ending: a blank line with no data dispatches nothing
    b"data:no-space\r\r"
    b"id: 7\nretry: 10\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    ("message", '{"a": 1}'),
    ("error", '{"error":\n "x"}'),
    ("message", "no-space"),
    ("message", "[DONE]"),
]


def decode(pieces: list[bytes]) -> list[tuple[str, str]]:
    decoder = SSEDecoder()
    events: list[tuple[str, str]] = []
    for piece in pieces:
        events.extend(decoder.feed(piece))
    events.extend(decoder.close())
    return events


def test_sse_whole_stream() -> None:
    assert decode([STREAM]) == EXPECTED


@pytest.mark.parametrize("split", range(1, len(STREAM)))
def test_sse_split_anywhere(split: int) -> None:
    # Network reads can cut anywhere, including between the CR and LF of one line end.
    assert decode([STREAM[:split], STREAM[split:]]) == EXPECTED


def test_sse_byte_by_byte() -> None:
    assert decode([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


def test_sse_last_event_without_blank_line_is_delivered() -> None:
    assert decode([b'data: {"tail": true}']) == [("message", '{"tail": true}')]
    assert decode([b"data: x\n"]) == [("message", "x")]


def test_sse_utf8_split_inside_a_character() -> None:
    raw = 'data: {"t": "é漢"}\n\n'.encode()
    assert decode([raw[:10], raw[10:]]) == [("message", '{"t": "é漢"}')]


# -- Retry-After -----------------------------------------------------------------------------


def test_retry_after_ms_wins() -> None:
    assert retry_after_s({"retry-after-ms": "250", "retry-after": "3"}) == 0.25


def test_retry_after_seconds_and_date() -> None:
    assert retry_after_s({"retry-after": "3"}) == 3.0
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert retry_after_s({"retry-after": date}, now=now) == pytest.approx(30, abs=1)
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert retry_after_s({"retry-after": past}, now=now) == 0.0


@pytest.mark.parametrize(
    "headers",
    [{}, {"retry-after": "soon"}, {"retry-after-ms": "-5"}, {"retry-after": "nan"}],
)
def test_retry_after_unreadable(headers: dict[str, str]) -> None:
    assert retry_after_s(headers) is None


def test_bad_ms_falls_back_to_seconds() -> None:
    assert retry_after_s({"retry-after-ms": "x", "retry-after": "2"}) == 2.0


# -- status → error --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, DeploymentNotFoundError),
        (408, ServerError),
        (409, BadRequestError),
        (413, BadRequestError),
        (422, BadRequestError),
        (429, RateLimitError),
        (500, ServerError),
        (503, ServerError),
        (599, ServerError),
    ],
)
def test_http_error_types(status: int, error_type: type) -> None:
    err = http_error(status, {"error": {"code": "X", "message": "m"}}, {}, deployment="d")
    assert type(err) is error_type and err.http_status == status and err.code == "X"


def test_content_filter_by_code_or_inner_code() -> None:
    inner = {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {"hate": 1}}
    by_code = http_error(
        400, {"error": {"code": "content_filter", "innererror": inner}}, {}, deployment="d"
    )
    by_inner = http_error(
        400, {"error": {"code": "other", "innererror": inner}}, {}, deployment="d"
    )
    for err in (by_code, by_inner):
        assert isinstance(err, ContentFilterError) and err.content_filter == {"hate": 1}
    # The openai SDK hands over the `error` object itself as the body.
    flat = http_error(400, {"code": "content_filter", "innererror": inner}, {}, deployment="d")
    assert isinstance(flat, ContentFilterError)


def test_error_fields_from_text_and_bytes() -> None:
    assert error_fields(b'{"error": {"code": "c", "message": "m"}}')[:2] == ("c", "m")
    assert error_fields("<html>Bad gateway</html>") == (None, "<html>Bad gateway</html>", None)
    assert error_fields(None) == (None, None, None)
    long = error_fields("x" * 2000)[1]
    assert long is not None and len(long) == 500


def test_rate_limit_error_carries_retry_after_and_headers() -> None:
    err = http_error(429, None, {"retry-after-ms": "1200", "x-request-id": "r"}, deployment="d")
    assert isinstance(err, RateLimitError) and err.retry_after_s == 1.2
    assert err.headers["x-request-id"] == "r"


# -- Accumulator -----------------------------------------------------------------------------


def test_accumulator_times_only_content_chunks() -> None:
    acc = Accumulator(10.0, streamed=True)
    acc.add_chunk({"model": "m", "choices": [{"index": 0, "delta": {"role": "assistant"}}]}, 10.1)
    acc.add_chunk({"choices": [{"index": 0, "delta": {"content": "a"}}]}, 10.2)
    acc.add_chunk({"choices": [{"index": 1, "delta": {"content": "other choice"}}]}, 10.25)
    acc.add_chunk(
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": "b"},
                    "finish_reason": "stop",
                    "content_filter_results": {"hate": {"filtered": False}},
                }
            ]
        },
        10.3,
    )
    acc.add_chunk({"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2}}, 10.4)
    c = acc.finish()
    assert (c.text, c.model, c.finish_reason) == ("ab", "m", "stop")
    assert c.first_token_at == 10.2 and c.chunk_times == [10.2, 10.3] and c.ended_at == 10.4
    assert (c.prompt_tokens, c.completion_tokens) == (4, 2)
    assert c.content_filter == {"content_filter_results": {"hate": {"filtered": False}}}


# -- deployment defaults ---------------------------------------------------------------------


def test_build_request_fills_unset_defaults_once() -> None:
    d = Deployment(
        name="shown",
        deployment="svc",
        endpoint="https://x",
        api_key="k",
        temperature=0.2,
        max_tokens=50,
        stop=["END"],
        system="Be brief.",
        extra={"a": 1, "b": 2},
    )
    hi = Prompt("p", [{"role": "user", "content": "hi"}])
    out = build_request(hi, d, {"temperature": 0.9, "extra": {"b": 3}}, stream=True)
    assert out.deployment == "svc"
    assert (out.temperature, out.max_tokens, out.stop) == (0.9, 50, ["END"])
    assert out.extra == {"a": 1, "b": 3}
    assert out.messages[0] == {"role": "system", "content": "Be brief."}
    assert build_request(hi, d, {"temperature": 0.9, "extra": {"b": 3}}, stream=True) == out
    # A system message already present is kept as the only one.
    own = Prompt("q", [{"role": "system", "content": "mine"}, {"role": "user", "content": "hi"}])
    assert [m["content"] for m in build_request(own, d, {}, True).messages] == ["mine", "hi"]
