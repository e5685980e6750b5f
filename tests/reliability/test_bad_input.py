"""The local endpoint and the loaders under bad input.

Endpoint: loopback bind by default, 401 without (or with a wrong) key on every route, a capped
body size (with and without Content-Length), and 4xx Azure-format errors for malformed JSON,
wrong types and unknown fields (per `extra-parameters`). Then hypothesis throws generated
requests at it: 0 × 5xx, every error in Azure format, no traceback in the server log.

Loaders: generated prompt sets (lists, JSONL, CSV, DataFrames) and deployments files (client
YAML, server YAML) either load or raise a `compare.errors.ConfigError` — never anything else.
"""

from __future__ import annotations

import collections
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from compare.deployments import FIELD_NAMES
from compare.deployments_file import load_deployments
from compare.errors import ConfigError
from compare.prompts import FIELDS as PROMPT_FIELDS
from compare.prompts import load_prompts
from compare.server.config import FAULTS, load_config, parse_config
from compare.server.local import local_endpoint

from ._support import python_env, sim_dep

MAX_BODY = 4096
CONFIG = {"max_body_bytes": MAX_BODY, "deployments": {
    "plain": sim_dep(),
    "other": sim_dep(),
    "emb": {"backend": "simulated", "model_type": "embeddings"},
}}
INFERENCE = "/chat/completions?api-version=2024-05-01-preview"
AOAI = "/openai/deployments/plain/chat/completions?api-version=2024-10-21"
V1 = "/openai/v1/chat/completions"
CHAT_ROUTES = (INFERENCE, AOAI, V1)
EMBED_ROUTES = ("/embeddings?api-version=2024-05-01-preview",
                "/openai/deployments/emb/embeddings?api-version=2024-10-21",
                "/openai/v1/embeddings")
FUZZ_EXAMPLES = int(os.environ.get("RELIABILITY_FUZZ_EXAMPLES", "300"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("bad-input") / "server.log"
    with local_endpoint(config=CONFIG, log_path=log) as ep:
        yield ep


class Client:
    """A blocking keep-alive HTTP client (hypothesis examples run synchronously)."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                resp = self.conn.getresponse()
                data = resp.read()
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
            except (http.client.HTTPException, ConnectionError):
                # The server closed a connection (e.g. after a 413); retry once on a new one.
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def chat(self, path: str, payload: Any, key: str | None, **headers: str
             ) -> tuple[int, dict[str, str], bytes]:
        hdrs = {"Content-Type": "application/json", **headers}
        if key is not None:
            hdrs["api-key"] = key
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.request("POST", path, body, hdrs)


@pytest.fixture(scope="module")
def client(server) -> Client:
    return Client(server.url)


def assert_azure_error(status: int, data: bytes, expected: int | tuple[int, ...]) -> dict:
    expected = (expected,) if isinstance(expected, int) else expected
    assert status in expected, (status, data[:300])
    body = json.loads(data)
    error = body["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert "Traceback" not in error["message"]
    return error


def _msg(text: str = "hi") -> dict[str, Any]:
    return {"model": "plain", "messages": [{"role": "user", "content": text}], "max_tokens": 4}


# ---------------------------------------------------------------- fixed cases


def test_binds_loopback_only_by_default(server, tmp_path) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    port = int(server.url.rsplit(":", 1)[1])
    listeners = [c for c in psutil.net_connections("inet")
                 if c.status == psutil.CONN_LISTEN and c.laddr.port == port]
    assert listeners and all(c.laddr.ip == "127.0.0.1" for c in listeners), listeners
    # `compare serve` without --host too.
    config = tmp_path / "deps.yaml"
    config.write_text(json.dumps({"deployments": {"plain": sim_dep()}}))
    proc = subprocess.Popen([sys.executable, "-m", "compare.cli", "serve", "--deployments",
                             str(config), "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=python_env(COMPARE_SERVER_KEY="k" * 24))
    try:
        line = proc.stdout.readline()
        assert line.startswith("compare-server listening on http://127.0.0.1:"), line
        port = int(line.strip().rsplit(":", 1)[1])
        found = [c for c in psutil.net_connections("inet")
                 if c.status == psutil.CONN_LISTEN and c.laddr.port == port]
        assert found and all(c.laddr.ip == "127.0.0.1" for c in found), found
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


@pytest.mark.parametrize("key", [None, "", "wrong-key-0123456789"], ids=["none", "empty", "wrong"])
@pytest.mark.parametrize("route", [*CHAT_ROUTES, "/info?api-version=2024-05-01-preview&model=plain",
                                   "/openai/v1/models", "/_compare/stats"])
def test_requests_without_the_key_get_401(server, client, route: str, key: str | None) -> None:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["api-key"] = key
    method = "POST" if "completions" in route else "GET"
    body = json.dumps(_msg()).encode() if method == "POST" else None
    status, _, data = client.request(method, route, body, headers)
    assert_azure_error(status, data, 401)
    # A bearer token with the wrong value is refused too; the right one passes.
    status, _, data = client.request(method, route, body,
                                     {**headers, "Authorization": "Bearer nope"})
    assert status == 401
    status, _, data = client.request(method, route, body,
                                     {"Content-Type": "application/json",
                                      "Authorization": f"Bearer {server.api_key}"})
    assert status == 200, data[:300]


@pytest.mark.parametrize("route", CHAT_ROUTES)
def test_body_size_is_capped(server, client, route: str) -> None:
    big = _msg("x" * (MAX_BODY * 4))
    status, _, data = client.chat(route, big, server.api_key)
    assert_azure_error(status, data, 413)
    # Without Content-Length (chunked), the cap holds while reading.
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    payload = json.dumps(big).encode()
    chunks = (payload[i:i + 1000] for i in range(0, len(payload), 1000))
    conn.request("POST", route, body=chunks, encode_chunked=True,
                 headers={"api-key": server.api_key, "Content-Type": "application/json",
                          "Transfer-Encoding": "chunked"})
    resp = conn.getresponse()
    assert_azure_error(resp.status, resp.read(), 413)
    conn.close()
    # Just under the cap is fine.
    status, _, data = client.chat(route, _msg("y" * (MAX_BODY - 300)), server.api_key)
    assert status == 200, data[:300]


BAD_BODIES = {
    "not-json": b"{this is not json",
    "truncated": b'{"model": "plain", "messages": [',
    "not-utf8": b'{"model": "plain", "messages": "\xff\xfe"}',
    "array": b"[1, 2, 3]",
    "string": b'"hello"',
    "null": b"null",
    "empty": b"",
    "messages-not-list": json.dumps({"model": "plain", "messages": "hi"}).encode(),
    "messages-empty": json.dumps({"model": "plain", "messages": []}).encode(),
    "message-not-object": json.dumps({"model": "plain", "messages": ["hi"]}).encode(),
    "bad-role": json.dumps({"model": "plain",
                            "messages": [{"role": "robot", "content": "x"}]}).encode(),
    "content-number": json.dumps({"model": "plain",
                                  "messages": [{"role": "user", "content": 5}]}).encode(),
    "temperature-string": json.dumps({**_msg(), "temperature": "hot"}).encode(),
    "temperature-high": json.dumps({**_msg(), "temperature": 9}).encode(),
    "max-tokens-float": json.dumps({**_msg(), "max_tokens": 1.5}).encode(),
    "max-tokens-zero": json.dumps({**_msg(), "max_tokens": 0}).encode(),
    "stream-string": json.dumps({**_msg(), "stream": "yes"}).encode(),
    "stop-number": json.dumps({**_msg(), "stop": 3}).encode(),
    "model-number": json.dumps({**_msg(), "model": 3}).encode(),
    "unknown-field": json.dumps({**_msg(), "frobnicate": True}).encode(),
    "nan": b'{"model": "plain", "messages": [{"role": "user", "content": "x"}], '
           b'"temperature": NaN}',
    "deep": b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize("route", CHAT_ROUTES, ids=["inference", "aoai", "v1"])
@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_malformed_and_mistyped_bodies_get_4xx(server, client, route: str, name: str) -> None:
    status, _, data = client.chat(route, BAD_BODIES[name], server.api_key)
    if name == "deep":
        # 200 kB of brackets is over the 4 kB cap here; below we send it under a bigger cap.
        assert_azure_error(status, data, 413)
        return
    # A non-string model is looked up before the body is validated: 404, still a client error.
    error = assert_azure_error(status, data, (400, 404) if name == "model-number" else 400)
    if name == "unknown-field":
        assert error.get("param") == "frobnicate"


def test_deeply_nested_json_is_a_client_error(make_endpoint_server) -> None:
    ep = make_endpoint_server({"max_body_bytes": 1_048_576, "deployments": {"plain": sim_dep()}})
    client = Client(ep.url)
    for route in CHAT_ROUTES:
        status, _, data = client.chat(route, b"[" * 100_000 + b"]" * 100_000, ep.api_key)
        assert_azure_error(status, data, (400, 413))
    assert "Traceback" not in ep.log_path.read_text()


@pytest.mark.parametrize("route", CHAT_ROUTES, ids=["inference", "aoai", "v1"])
def test_extra_parameters_modes(server, client, route: str) -> None:
    body = {**_msg(), "frobnicate": 1}
    status, _, data = client.chat(route, body, server.api_key)
    assert_azure_error(status, data, 400)
    status, headers, data = client.chat(route, body, server.api_key,
                                        **{"extra-parameters": "drop"})
    assert status == 200 and headers["x-compare-dropped-parameters"] == "frobnicate"
    status, headers, data = client.chat(route, body, server.api_key,
                                        **{"extra-parameters": "pass-through"})
    assert status == 200 and headers["x-compare-passed-parameters"] == "frobnicate"
    status, _, data = client.chat(route, body, server.api_key, **{"extra-parameters": "maybe"})
    assert_azure_error(status, data, 400)


# ---------------------------------------------------------------- fuzzing the endpoint

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                     st.floats(allow_nan=False), st.text(max_size=30))
_json = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12)
_content = st.one_of(st.text(max_size=60), _json,
                     st.lists(st.fixed_dictionaries({"type": st.sampled_from(["text", "image"]),
                                                     "text": st.one_of(st.text(max_size=20),
                                                                       _scalars)}), max_size=3))
_message = st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "assistant", "tool",
                                                     "robot", ""]),
                           "content": _content}),
    _json,
)
_param_values = {
    "temperature": st.one_of(st.floats(-1, 3), _scalars),
    "top_p": st.one_of(st.floats(-0.5, 1.5), _scalars),
    "max_tokens": st.one_of(st.integers(-5, 50), _scalars),
    "max_completion_tokens": st.one_of(st.integers(-5, 50), _scalars),
    "seed": st.one_of(st.integers(-(2**65), 2**65), _scalars),
    "stop": st.one_of(st.text(max_size=5), st.lists(st.text(max_size=5), max_size=6), _scalars),
    "stream": st.one_of(st.booleans(), _scalars),
    "stream_options": st.one_of(st.fixed_dictionaries({"include_usage": _scalars}), _json),
    "presence_penalty": st.one_of(st.floats(-3, 3), _scalars),
    "frequency_penalty": st.one_of(st.floats(-3, 3), _scalars),
    "response_format": st.one_of(st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "json_object", "xml"])}), _json),
    "n": st.one_of(st.integers(-1, 3), _scalars),
    "logprobs": _scalars,
    "model": st.one_of(st.sampled_from(["plain", "PLAIN", "other", "ghost"]), _scalars),
    "tools": _json,
    "frobnicate": _json,
}
_valid_params = {
    "temperature": st.floats(0, 2), "top_p": st.floats(0, 1), "max_tokens": st.integers(1, 20),
    "seed": st.integers(-(2**40), 2**40), "stop": st.lists(st.text(min_size=1, max_size=3),
                                                        max_size=4),
    "stream": st.booleans(), "stream_options": st.just({"include_usage": True}),
    "presence_penalty": st.floats(-2, 2), "frequency_penalty": st.floats(-2, 2),
}
# Mostly-valid requests (to reach generation, streaming and stop sequences) with one field
# possibly replaced by anything.
_valid_body = st.builds(
    lambda base, key, value: {**base, **({key: value} if key else {})},
    st.fixed_dictionaries(
        {"model": st.sampled_from(["plain", "other", "PLAIN"]),
         "messages": st.lists(st.fixed_dictionaries(
             {"role": st.sampled_from(["user", "system", "assistant"]),
              "content": st.text(max_size=40)}), min_size=1, max_size=3)},
        optional=_valid_params),
    st.one_of(st.none(), st.sampled_from(sorted(_param_values))),
    _json,
)
_embed_body = st.fixed_dictionaries(
    {"model": st.one_of(st.sampled_from(["emb", "plain", "ghost"]), _scalars),
     "input": st.one_of(st.text(max_size=20), st.lists(st.text(max_size=20), max_size=4),
                        st.lists(st.integers(-5, 70000), max_size=4), _json)},
    optional={"dimensions": st.one_of(st.integers(-2, 100), _scalars),
              "encoding_format": st.one_of(st.sampled_from(["float", "base64", "hex"]),
                                           _scalars),
              "input_type": st.one_of(st.sampled_from(["text", "query", "document"]),
                                      _scalars),
              "user": _scalars, "frobnicate": _json})
_bodies = st.one_of(
    _valid_body,
    _embed_body,
    st.fixed_dictionaries(
        {"messages": st.one_of(st.lists(_message, min_size=0, max_size=3), _json)},
        optional=_param_values),
    _json,
)
_routes = st.sampled_from([
    *CHAT_ROUTES,
    "/chat/completions",  # no api-version
    "/chat/completions?api-version=1999",
    "/openai/deployments/ghost/chat/completions?api-version=2024-10-21",
    "/openai/deployments/%F0%9F%98%80/chat/completions?api-version=2024-10-21",
    "/openai/v1/chat/completions?api-version=v1",
    "/embeddings?api-version=2024-05-01-preview",
    "/nope",
])
_extra_mode = st.one_of(st.none(), st.sampled_from(["error", "drop", "pass-through", "bogus", ""]))


def test_fuzz_endpoint_never_5xx_and_leaves_no_traceback(server, client) -> None:
    """Fuzz the endpoint, then read its log: the fuzz and the check run in one test, so the
    check never depends on test order."""
    statuses: collections.Counter[int] = collections.Counter()

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(route=st.one_of(st.sampled_from(CHAT_ROUTES + EMBED_ROUTES), _routes), body=_bodies,
           mode=_extra_mode, raw=st.sampled_from([False, False, True]), data=st.data())
    def one(route: str, body: Any, mode: str | None, raw: bool, data: st.DataObject) -> None:
        payload = json.dumps(body).encode()
        if raw:
            # Byte-level damage: cut, flip or splice the JSON.
            cut = data.draw(st.integers(0, len(payload)))
            junk = data.draw(st.binary(max_size=8))
            payload = payload[:cut] + junk + payload[cut + len(junk):]
        headers = {"extra-parameters": mode} if mode is not None else {}
        status, hdrs, reply = client.chat(route, payload, server.api_key, **headers)
        statuses[status] += 1
        assert status < 500, (status, route, payload[:300], reply[:300])
        if status >= 400:
            assert_azure_error(status, reply, status)
            assert hdrs.get("x-ms-error-code") or status in (404, 405)
        else:
            assert status == 200
            if "embeddings" in route:
                assert json.loads(reply)["data"], reply[:300]
            elif hdrs.get("content-type", "").startswith("text/event-stream"):
                assert reply.rstrip().endswith(b"data: [DONE]"), reply[-200:]
            else:
                assert json.loads(reply)["choices"][0]["finish_reason"] in ("stop", "length")

    one()
    status, _, _ = client.chat(INFERENCE, _msg(), server.api_key)
    assert status == 200
    time.sleep(0.1)
    log = server.log_path.read_text()
    assert "Traceback" not in log, log[log.find("Traceback"):][:2000]
    assert "status=500" not in log
    stats = server.stats()
    assert not any(s.startswith("5") for d in stats.values() for s in d["by_status"]), stats
    print(f"\nendpoint fuzz: {sum(statuses.values())} requests, statuses "
          f"{dict(sorted(statuses.items()))}")
    # The generator reaches both the happy path and the validators.
    assert statuses[200] > 0 and statuses[400] > 0


# ---------------------------------------------------------------- fuzzing the loaders


def _must_load_or_config_error(load: Any, *args: Any) -> None:
    try:
        load(*args)
    except ConfigError as e:
        text = str(e)
        assert text and "Traceback" not in text
    # Anything else propagates and fails the test with its traceback.


_prompt_rows = st.one_of(
    st.text(max_size=30),
    st.dictionaries(st.sampled_from([*PROMPT_FIELDS, "vars.x", "vars.", "promt", "", "id "]),
                    _json, max_size=5),
    _json,
)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(rows=st.lists(_prompt_rows, max_size=6))
def test_fuzz_prompt_lists(rows: list[Any]) -> None:
    _must_load_or_config_error(load_prompts, rows)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(lines=st.lists(st.one_of(
    st.builds(json.dumps, _prompt_rows),
    st.text(max_size=40),
), max_size=6), suffix=st.sampled_from([".jsonl", ".csv", ".json", ".txt", ""]))
def test_fuzz_prompt_files(lines: list[str], suffix: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"prompts{suffix}"
        path.write_text("\n".join(lines), encoding="utf-8")
        _must_load_or_config_error(load_prompts, path)
        _must_load_or_config_error(load_prompts, str(path))


@settings(max_examples=FUZZ_EXAMPLES // 3, deadline=None)
@given(columns=st.dictionaries(st.sampled_from([*PROMPT_FIELDS, "vars.topic", "other"]),
                               st.lists(_scalars, min_size=2, max_size=2), max_size=4))
def test_fuzz_prompt_frames(columns: dict[str, list[Any]]) -> None:
    frame = pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in columns.items()})
    _must_load_or_config_error(load_prompts, frame)


_dep_values = st.one_of(_scalars, _json, st.sampled_from([
    "azure-inference", "azure-openai", "openai", "key", "entra", "http://127.0.0.1:1",
    "https://x.example", "error", "drop", "pass-through"]))
_dep = st.dictionaries(st.sampled_from([*FIELD_NAMES, "temprature", "nmae"]), _dep_values,
                       max_size=6)
_deps_doc = st.one_of(
    st.fixed_dictionaries({"deployments": st.one_of(st.lists(_dep, max_size=3), _json)},
                          optional={"defaults": _dep, "extra": _json}),
    st.lists(_dep, max_size=3),
    _json,
)


def _yaml_text(doc: Any, damage: str) -> str:
    text = yaml.safe_dump(doc, allow_unicode=True)
    return text if not damage else text[: len(text) // 2] + damage


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(doc=_deps_doc, damage=st.one_of(st.just(""), st.text(max_size=12)))
@example(doc=[], damage="\x1f")  # a control character: yaml's reader rejects it first
def test_fuzz_deployments_file(doc: Any, damage: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "deployments.yaml"
        path.write_text(_yaml_text(doc, damage), encoding="utf-8")
        _must_load_or_config_error(load_deployments, path)


_sim = st.dictionaries(st.sampled_from(["seed", "output_tokens", "ttft_ms", "itl_ms", "text",
                                        "bogus"]),
                       st.one_of(_scalars, st.fixed_dictionaries(
                           {"dist": st.sampled_from(["fixed", "uniform", "normal", "zipf"])},
                           optional={"min": _scalars, "max": _scalars, "value": _scalars,
                                     "mean": _scalars, "sd": _scalars})), max_size=4)
_server_dep = st.fixed_dictionaries(
    {"backend": st.one_of(st.sampled_from(["simulated", "llama"]), _scalars)},
    optional={"simulated": _sim, "model": _scalars, "defaults": _json,
              "capacity": st.one_of(_json, st.fixed_dictionaries(
                  {"rpm": _scalars}, optional={"tpm": _scalars, "window_s": _scalars})),
              "faults": st.lists(st.fixed_dictionaries(
                  {"fault": st.one_of(st.sampled_from(FAULTS), _scalars)},
                  optional={"rate": _scalars, "first_attempts": _scalars, "match": _scalars,
                            "hang_s": _scalars}), max_size=2),
              "content_filter": _json, "llama": _json})


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(doc=st.one_of(
    st.fixed_dictionaries({"deployments": st.dictionaries(st.text(max_size=10), _server_dep,
                                                          max_size=2)},
                          optional={"region": _scalars, "max_body_bytes": _scalars}),
    _json))
def test_fuzz_server_deployments(doc: Any) -> None:
    _must_load_or_config_error(parse_config, doc)


@settings(max_examples=FUZZ_EXAMPLES // 3, deadline=None)
@given(doc=st.fixed_dictionaries({"deployments": st.dictionaries(
    st.sampled_from(["a", "b"]), _server_dep, max_size=2)}),
    damage=st.one_of(st.just(""), st.text(max_size=12)))
@example(doc={"deployments": {}}, damage="\x1f")
def test_fuzz_server_deployments_file(doc: Any, damage: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "deployments.yaml"
        path.write_text(_yaml_text(doc, damage), encoding="utf-8")
        _must_load_or_config_error(load_config, path)


_LOADERS = {
    "prompts.jsonl": load_prompts,
    "prompts.csv": load_prompts,
    "prompts.json": load_prompts,
    "deployments.yaml": load_deployments,
    "server-deployments.yaml": load_config,
}


@pytest.mark.parametrize("name", list(_LOADERS))
@settings(max_examples=FUZZ_EXAMPLES // 3, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(
    st.binary(max_size=200),
    # A valid-looking start, then bytes that are not UTF-8 (a file saved as Latin-1, say).
    st.builds(lambda tail: b'deployments:\n  - name: caf' + tail, st.binary(min_size=1,
                                                                         max_size=8)),
    st.builds(lambda tail: b'{"prompt": "caf' + tail + b'"}\n', st.binary(min_size=1,
                                                                        max_size=8)),
))
@example(content=b"deployments:\n  - name: caf\xe9\n")
def test_fuzz_loader_file_bytes(name: str, content: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / name
        path.write_bytes(content)
        _must_load_or_config_error(_LOADERS[name], path)


BAD_FILES = {
    "control-character": b"deployments:\n  - name: a\x1f\n",
    "latin-1": b"deployments:\n  - name: caf\xe9\n    endpoint: http://127.0.0.1:9\n",
    "tab-indent": b"deployments:\n\t- name: a\n",
    "deep": b"[" * 5000 + b"]" * 5000,
}


@pytest.mark.parametrize("command", ["run", "serve"])
@pytest.mark.parametrize("name", list(BAD_FILES))
def test_cli_names_a_bad_deployments_file_in_one_line(tmp_path, command: str,
                                                      name: str) -> None:
    path = tmp_path / "deployments.yaml"
    path.write_bytes(BAD_FILES[name])
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "hi"}\n')
    args = (["run", "-p", str(prompts), "-d", str(path)] if command == "run"
            else ["serve", "--deployments", str(path), "--port", "0"])
    proc = subprocess.run([sys.executable, "-m", "compare.cli", *args], capture_output=True,
                          text=True, timeout=60, env=python_env(COMPARE_SERVER_KEY="k" * 24))
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-1500:])
    assert "Traceback" not in proc.stderr, proc.stderr[-1500:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0], proc.stderr


def _post_raw(ep: Any, body: bytes, **headers: str) -> tuple[int, bytes]:
    host, port = ep.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("POST", INFERENCE, body, {"api-key": ep.api_key,
                                               "Content-Type": "application/json", **headers})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_compressed_bodies(make_endpoint_server) -> None:
    import gzip
    import zlib

    ep = make_endpoint_server({"max_body_bytes": MAX_BODY, "deployments": {"plain": sim_dep()}})
    body = json.dumps(_msg()).encode()
    assert _post_raw(ep, gzip.compress(body), **{"Content-Encoding": "gzip"})[0] == 200
    assert _post_raw(ep, zlib.compress(body), **{"Content-Encoding": "deflate"})[0] == 200
    # A small gzip that inflates far past the cap: the cap counts inflated bytes.
    bomb = gzip.compress(json.dumps(_msg("a" * 20_000_000)).encode())
    assert len(bomb) < 100_000
    status, data = _post_raw(ep, bomb, **{"Content-Encoding": "gzip"})
    assert_azure_error(status, data, 413)
    # A body that says gzip but is not: the client's mistake, a 400 in Azure format.
    status, data = _post_raw(ep, body, **{"Content-Encoding": "gzip"})
    assert_azure_error(status, data, 400)
    log = ep.log_path.read_text()
    assert "Traceback" not in log, log[log.find("Traceback"):][:1500]


@pytest.mark.parametrize("encoding", ["br", "zstd"])
def test_unsupported_content_encoding_is_a_quiet_client_error(make_endpoint_server,
                                                              encoding: str) -> None:
    ep = make_endpoint_server({"deployments": {"plain": sim_dep()}})
    status, data = _post_raw(ep, json.dumps(_msg()).encode(), **{"Content-Encoding": encoding})
    assert 400 <= status < 500, (status, data)
    time.sleep(0.2)
    log = ep.log_path.read_text()
    assert "Traceback" not in log, log[log.find("Traceback"):][:1500]


# Short templates only: a width like {x:99999999} would really allocate that many characters.
@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(template=st.text(alphabet="{}!:xyrsad>.0123 ", min_size=1, max_size=10))
@example(template="hi {x:d}")  # a str formatted as an integer
@example(template="hi {x!z}")  # an unknown conversion
def test_fuzz_prompt_templates(template: str) -> None:
    _must_load_or_config_error(load_prompts, [{"prompt": template, "vars": {"x": "ab", "y": 3}}])
    _must_load_or_config_error(load_prompts, [{"prompt": template, "vars.x": "ab"}])


def test_cli_names_a_bad_prompt_template_in_one_line(tmp_path) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"prompt": "hi {x:d}", "vars": {"x": "a"}}) + "\n")
    proc = subprocess.run([sys.executable, "-m", "compare.cli", "run", "-p", str(prompts),
                           "--endpoint", "http://127.0.0.1:9", "--deployment", "d"],
                          capture_output=True, text=True, timeout=60,
                          env=python_env(AZURE_AI_CHAT_KEY="k"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-1500:]
    assert f"{prompts}:1" in proc.stderr


BAD_PROMPT_FILES = {
    "deep.jsonl": '{"prompt": "x", "vars": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
    "deep.json": "[" * 100_000 + "]" * 100_000,
    "huge-int.jsonl": '{"prompt": "x", "id": ' + "9" * 5000 + "}\n",
    "huge-int.json": '[{"prompt": "x", "id": ' + "9" * 5000 + "}]",
}


@pytest.mark.parametrize("name", list(BAD_PROMPT_FILES))
def test_hostile_prompt_files_are_config_errors(tmp_path, name: str) -> None:
    path = tmp_path / name
    path.write_text(BAD_PROMPT_FILES[name], encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_prompts(path)
    assert str(path) in str(info.value)


# YAML scalars whose construction fails in PyYAML itself (ValueError, not a YAMLError).
HOSTILE_SCALARS = {"huge-int": "9" * 5000, "bad-date": "2020-13-45",
                   "bad-datetime": "2020-13-45 10:00:00"}


@pytest.mark.parametrize("scalar", list(HOSTILE_SCALARS))
def test_hostile_yaml_scalars_are_config_errors(tmp_path, scalar: str) -> None:
    value = HOSTILE_SCALARS[scalar]
    client = tmp_path / "client.yaml"
    client.write_text(f"deployments:\n  - name: a\n    endpoint: http://127.0.0.1:9\n"
                      f"    extra: {{v: {value}}}\n")
    server = tmp_path / "server.yaml"
    server.write_text(f"deployments:\n  a:\n    backend: simulated\n    version: {value}\n")
    for load, path in ((load_deployments, client), (load_config, server)):
        with pytest.raises(ConfigError) as info:
            load(path)
        assert str(path) in str(info.value)
