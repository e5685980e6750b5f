"""Property-based: whatever JSON (or bytes) a client sends, the endpoint answers 2xx/4xx in Azure
format, never a 5xx or a traceback."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compare.server.local import local_endpoint

from ._http import route

CONFIG = {"deployments": {
    "tiny": {"backend": "simulated",
             "simulated": {"output_tokens": 3, "ttft_ms": 0, "itl_ms": 0, "text": "echo"}},
    "other": {"backend": "simulated",
              "simulated": {"output_tokens": 2, "ttft_ms": 0, "itl_ms": 0}},
}}
KEYS = ["model", "messages", "stream", "temperature", "top_p", "max_tokens", "stop", "seed",
        "stream_options", "n", "response_format", "tools", "presence_penalty", "logprobs",
        "max_completion_tokens", "user", "top_k", "\u0000weird", "x\r\ny"]
scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | \
    st.floats(allow_nan=False) | st.text(max_size=20)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) |
                      st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "assistant", "tool", "bogus"])},
    optional={"content": st.text(max_size=40) | values})
bodies = st.fixed_dictionaries(
    {"model": st.sampled_from(["tiny", "TINY", "other", "nope"]) | values,
     "messages": st.lists(message, max_size=3) | values},
    optional={k: values for k in KEYS[2:]})


@pytest.fixture(scope="module")
def ep():
    with local_endpoint(config=CONFIG) as endpoint:
        yield endpoint


def _post(ep, path: str, data: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(ep.url + path, data=data, method="POST",
                                     headers={"api-key": ep.api_key,
                                              "content-type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies, kind=st.sampled_from(["inference", "azure-openai", "openai-v1"]),
       mode=st.sampled_from([None, "error", "drop", "pass-through", "bogus"]))
def test_random_bodies_never_5xx(ep, body, kind, mode) -> None:
    headers = {"extra-parameters": mode} if mode else {}
    data = json.dumps(body).encode()
    status, raw = _post(ep, route(kind, "tiny"), data, headers)
    assert status < 500, raw
    if status >= 400:
        error = json.loads(raw)["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str)
        assert "Traceback" not in error["message"]


@settings(max_examples=60, deadline=None)
@given(raw=st.binary(max_size=200))
def test_random_bytes_never_5xx(ep, raw: bytes) -> None:
    status, body = _post(ep, route("inference", "tiny"), raw, {})
    assert 400 <= status < 500 or status == 200, body
