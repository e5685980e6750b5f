"""Azure OpenAI batch emulation: the openai SDK's own flow on both surfaces, every lifecycle
path, the validation codes, partial failures, quota, cancel, expiry, disconnect. Every files and
batches body is validated against the official spec (tests/specs/)."""

from __future__ import annotations

import asyncio
import io
import json
import time
from typing import Any

import aiohttp
import openai
import pytest

from compare.server.local import local_endpoint

from . import _schemas as schemas
from ._http import AOAI_QS, call, chat

QUICK = {"output_tokens": 4, "ttft_ms": 1, "itl_ms": 0}
CONFIG = {"deployments": {
    "chat": {"backend": "simulated", "simulated": QUICK},
    "bsim": {"backend": "simulated", "deployment_type": "global-batch", "simulated": QUICK,
             "content_filter": [{"category": "violence", "terms": ["attack"],
                                 "apply_to": "prompt"}],
             "batch": {"concurrency": 8}},
    "bslow": {"backend": "simulated", "deployment_type": "global-batch",
              "simulated": {"output_tokens": 3, "ttft_ms": 200, "itl_ms": 50},
              "batch": {"concurrency": 2}},
    "bquota": {"backend": "simulated", "deployment_type": "global-batch",
               "simulated": {"output_tokens": 2, "ttft_ms": 150, "itl_ms": 0},
               "batch": {"concurrency": 1, "enqueued_tokens": 100}},
}}
FINAL = ("completed", "failed", "expired", "cancelled")


@pytest.fixture(scope="module")
def ep():
    with local_endpoint(config=CONFIG) as endpoint:
        yield endpoint


def line(custom_id: str, model: str = "bsim", text: str = "hello", **body: Any) -> dict:
    return {"custom_id": custom_id, "method": "POST", "url": "/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": text}], **body}}


def jsonl(items: list[Any]) -> bytes:
    return "".join((i if isinstance(i, str) else json.dumps(i)) + "\n" for i in items).encode()


def azure(ep) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(azure_endpoint=ep.url, api_key=ep.api_key,
                              api_version="2024-10-21", max_retries=0)


def v1(ep) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{ep.url}/openai/v1", api_key=ep.api_key, max_retries=0)


def submit(client: Any, data: bytes, **kw: Any) -> Any:
    uploaded = client.files.create(file=("input.jsonl", io.BytesIO(data)), purpose="batch")
    return client.batches.create(input_file_id=uploaded.id, endpoint="/chat/completions",
                                 completion_window="24h", **kw)


def wait(client: Any, batch_id: str, timeout: float = 30, seen: list | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if seen is not None:
            seen.append(batch.status)
        if batch.status in FINAL or time.monotonic() > deadline:
            return batch
        time.sleep(0.05)


def raw_batch(ep, batch_id: str, prefix: str = "/openai") -> dict:
    qs = AOAI_QS if prefix == "/openai" else ""
    reply = asyncio.run(call(ep, "GET", f"{prefix}/batches/{batch_id}{qs}"))
    schemas.check_batch_api(reply.json, "Batch")
    return reply.json


def lines_of(client: Any, file_id: str) -> list[dict]:
    return [json.loads(x) for x in client.files.content(file_id).text.splitlines()]


# ---------------------------------------------------------------- the SDK's own flow


@pytest.mark.parametrize("make", [azure, v1], ids=["AzureOpenAI", "OpenAI-v1"])
def test_sdk_flow_files_batches_content(ep, make) -> None:
    client = make(ep)
    data = jsonl([line(f"task-{i}", text=f"question {i}") for i in range(6)])
    uploaded = client.files.create(file=("input.jsonl", io.BytesIO(data)), purpose="batch")
    assert (uploaded.purpose, uploaded.bytes, uploaded.status) == ("batch", len(data),
                                                                    "processed")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/chat/completions",
                                  completion_window="24h", metadata={"run": "sdk"})
    assert batch.status == "validating" and batch.request_counts is None
    seen: list[str] = []
    batch = wait(client, batch.id, seen=seen)
    assert batch.status == "completed", batch.errors
    assert batch.request_counts.total == batch.request_counts.completed == 6
    assert batch.metadata == {"run": "sdk"}
    assert batch.created_at <= batch.in_progress_at <= batch.finalizing_at <= batch.completed_at
    assert batch.expires_at >= batch.created_at
    outputs = lines_of(client, batch.output_file_id)
    assert sorted(o["custom_id"] for o in outputs) == [f"task-{i}" for i in range(6)]
    for out in outputs:
        assert out["error"] is None and out["response"]["status_code"] == 200
        assert out["response"]["request_id"] and out["id"].startswith("batch_req_")
        schemas.check(out["response"]["body"], schemas.OPENAI, "completion")
        assert "simulated" in out["response"]["body"]["model"]
    assert client.files.content(batch.error_file_id).content == b""  # empty, but there
    assert client.batches.list().data[0].id == batch.id
    assert {f.id for f in client.files.list().data} >= {uploaded.id, batch.output_file_id}
    raw_batch(ep, batch.id, "/openai" if make is azure else "/openai/v1")


def test_bodies_match_the_spec_on_both_surfaces(ep) -> None:
    data = jsonl([line("a"), line("b")])
    for prefix, qs in (("/openai", AOAI_QS), ("/openai/v1", "")):
        form = aiohttp.FormData()
        form.add_field("purpose", "batch")
        form.add_field("file", data, filename="in.jsonl", content_type="application/jsonl")
        created = asyncio.run(_post_form(ep, f"{prefix}/files{qs}", form))
        assert created[0] == 201
        schemas.check_batch_api(created[1], "File")
        file_id = created[1]["id"]
        listing = asyncio.run(call(ep, "GET", f"{prefix}/files{qs}"))
        schemas.check_batch_api(listing.json, "FileList")
        batch = asyncio.run(call(ep, "POST", f"{prefix}/batches{qs}", {
            "input_file_id": file_id, "endpoint": "/chat/completions",
            "completion_window": "24h"}))
        assert batch.status == 200
        schemas.check_batch_api(batch.json, "Batch")
        schemas.validate({"input_file_id": file_id, "endpoint": "/chat/completions",
                          "completion_window": "24h"}, schemas.BATCH_SPEC, "BatchCreateRequest")
        batches = asyncio.run(call(ep, "GET", f"{prefix}/batches{qs}"))
        schemas.check_batch_api(batches.json, "BatchesList")
        deleted = asyncio.run(call(ep, "DELETE", f"{prefix}/files/{file_id}{qs}"))
        schemas.check_batch_api(deleted.json, "FileDelete")
        assert deleted.json == {"object": "file", "deleted": True, "id": file_id}
        gone = asyncio.run(call(ep, "GET", f"{prefix}/files/{file_id}{qs}"))
        assert gone.status == 404
        schemas.check_batch_api(gone.json, "ErrorResponse")


async def _post_form(ep, path: str, form: aiohttp.FormData) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.post(
            ep.url + path, data=form, headers={"api-key": ep.api_key}) as resp:
        return resp.status, await resp.json()


def test_api_version_is_required_only_outside_v1(ep) -> None:
    assert asyncio.run(call(ep, "GET", "/openai/batches")).status == 400
    assert asyncio.run(call(ep, "GET", "/openai/v1/batches")).status == 200


# ---------------------------------------------------------------- deployment types


@pytest.mark.parametrize("kind", ["inference", "azure-openai", "openai-v1"])
async def test_online_calls_to_a_batch_deployment_are_refused(ep, kind: str) -> None:
    reply = await chat(ep, "bsim", kind)
    assert reply.status == 400
    error = reply.json["error"]
    assert error["code"] == "OperationNotSupported"
    assert "chatCompletion operation does not work" in error["message"]
    assert "/openai/batches" in error["message"]


async def test_info_and_models_say_the_deployment_type(ep) -> None:
    info = await call(ep, "GET", "/openai/deployments/bsim/info" + AOAI_QS)
    assert info.json["deployment_type"] == "global-batch"
    schemas.check(info.json, schemas.INFERENCE, "info")
    standard = await call(ep, "GET", "/openai/deployments/chat/info" + AOAI_QS)
    assert standard.json["deployment_type"] == "standard"
    models = await call(ep, "GET", "/openai/v1/models")
    types = {m["id"]: m["deployment_type"] for m in models.json["data"]}
    assert types == {"chat": "standard", "bsim": "global-batch", "bslow": "global-batch",
                     "bquota": "global-batch"}
    assert ep.deployment_names == ["chat"]
    assert ep.batch_deployment_names == ["bsim", "bslow", "bquota"]


def test_a_batch_for_a_standard_deployment_fails_validation(ep) -> None:
    client = v1(ep)
    batch = wait(client, submit(client, jsonl([line("a", model="chat")])).id)
    assert batch.status == "failed" and batch.failed_at
    (error,) = batch.errors.data
    assert error.code == "invalid_request" and "globalbatch" in error.message
    raw_batch(ep, batch.id)


# ---------------------------------------------------------------- validation failures


LONG = "x" * 50
VALIDATION = {
    "duplicate_custom_id": ([line("a"), line("b"), line("a")], 3),
    "model_mismatch": ([line("a"), line("b", model="bslow")], 2),
    "url_mismatch": ([line("a"), {**line("b"), "url": "/embeddings"}], 2),
    "invalid_json_line": ([line("a"), '{"custom_id": "b", '], 2),
    "invalid_request": ([line("a"), {**line("b"), "method": "GET"}], 2),
    "model_not_found": ([line("a", model="ghost")], 1),
    "empty_file": (["", "  "], None),
}


@pytest.mark.parametrize("code", list(VALIDATION))
def test_validation_errors_fail_the_batch_with_azure_codes(ep, code: str) -> None:
    items, bad_line = VALIDATION[code]
    client = azure(ep)
    batch = wait(client, submit(client, jsonl(items)).id)
    assert batch.status == "failed" and batch.failed_at and batch.output_file_id is None
    assert batch.errors.data[0].code == code
    assert batch.errors.data[0].line == bad_line
    raw_batch(ep, batch.id)


def test_several_bad_lines_are_all_reported(ep) -> None:
    items = [line("a"), line("a"), {**line("b"), "url": "/x"}, "not json", line("c")]
    batch = wait(v1(ep), submit(v1(ep), jsonl(items)).id)
    assert [(e.code, e.line) for e in batch.errors.data] == [
        ("duplicate_custom_id", 2), ("url_mismatch", 3), ("invalid_json_line", 4)]


def test_more_than_100000_requests_is_too_many_tasks(ep) -> None:
    one = json.dumps(line("x")).replace('"x"', '"{}"')
    data = "".join(one.replace("{}", str(i), 1) + "\n" for i in range(100_001)).encode()
    batch = wait(v1(ep), submit(v1(ep), data).id, timeout=60)
    assert batch.status == "failed"
    assert [(e.code, e.line) for e in batch.errors.data] == [("too_many_tasks", 100_001)]


# ---------------------------------------------------------------- partial failures


def test_failed_requests_go_to_the_error_file(ep) -> None:
    client = azure(ep)
    items = [line("ok-1"), line("hot", temperature=5), line("ok-2"),
             line("filtered", text="plan an attack"), line("streamed", stream=True)]
    batch = wait(client, submit(client, jsonl(items)).id)
    assert batch.status == "completed"
    counts = batch.request_counts
    assert (counts.total, counts.completed, counts.failed) == (5, 2, 3)
    assert sorted(o["custom_id"] for o in lines_of(client, batch.output_file_id)) == [
        "ok-1", "ok-2"]
    errors = {e["custom_id"]: e for e in lines_of(client, batch.error_file_id)}
    assert set(errors) == {"hot", "filtered", "streamed"}
    for entry in errors.values():
        assert entry["response"]["status_code"] == 400
        schemas.check(entry["response"]["body"], schemas.OPENAI, "error")
    assert errors["hot"]["response"]["body"]["error"]["param"] == "temperature"
    assert errors["filtered"]["response"]["body"]["error"]["code"] == "content_filter"


# ---------------------------------------------------------------- quota, cancel, expiry


def test_enqueued_token_quota_fails_a_batch_until_others_finish(ep) -> None:
    client = v1(ep)
    words = "word " * 60  # about 75 tokens of the 100 the deployment may have enqueued
    first = submit(client, jsonl([line(f"f{i}", model="bquota", text=words[:100])
                                  for i in range(3)]))
    deadline = time.monotonic() + 10
    while client.batches.retrieve(first.id).status == "validating" and \
            time.monotonic() < deadline:
        time.sleep(0.02)
    second = wait(client, submit(client, jsonl([line("s", model="bquota", text=words)])).id)
    assert second.status == "failed"
    assert second.errors.data[0].code == "token_limit_exceeded"
    assert "retry" in second.errors.data[0].message.lower()
    assert wait(client, first.id).status == "completed"
    retried = wait(client, submit(client, jsonl([line("s", model="bquota", text=words)])).id)
    assert retried.status == "completed"


def test_cancel_keeps_partial_output(ep) -> None:
    client = azure(ep)
    batch = submit(client, jsonl([line(f"c{i}", model="bslow") for i in range(40)]))
    while client.batches.retrieve(batch.id).request_counts is None:
        time.sleep(0.02)
    time.sleep(0.8)  # a few requests (2 at a time, ~0.3 s each) finish
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at
    batch = wait(client, batch.id)
    assert batch.status == "cancelled" and batch.cancelled_at
    done = lines_of(client, batch.output_file_id)
    assert 0 < len(done) < 40 and len(done) == batch.request_counts.completed
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(batch.id)
    raw_batch(ep, batch.id)


def test_cancel_while_validating(ep) -> None:
    client = v1(ep)
    batch = submit(client, jsonl([line(f"v{i}") for i in range(50_000)]))
    client.batches.cancel(batch.id)
    assert wait(client, batch.id).status == "cancelled"


def test_unfinished_requests_expire_with_the_window(make_endpoint_server) -> None:
    config = {"batch_completion_window_s": 1.0, "deployments": {"slow": {
        "backend": "simulated", "deployment_type": "global-batch",
        "simulated": {"output_tokens": 2, "ttft_ms": 300, "itl_ms": 0},
        "batch": {"concurrency": 1}}}}
    ep = make_endpoint_server(config)
    client = v1(ep)
    batch = wait(client, submit(client, jsonl([line(f"e{i}", model="slow")
                                               for i in range(10)])).id)
    assert batch.status == "expired" and batch.expired_at
    counts = batch.request_counts
    assert counts.total == 10 and counts.completed + counts.failed == 10
    assert 1 <= counts.completed <= 4
    expired = lines_of(client, batch.error_file_id)
    assert len(expired) == counts.failed
    assert all(e["response"] is None and e["error"]["code"] == "batch_expired" for e in expired)
    assert len(lines_of(client, batch.output_file_id)) == counts.completed
    raw_batch(ep, batch.id, "/openai/v1")


# ---------------------------------------------------------------- uploads, disconnect, paging


@pytest.mark.parametrize(("content", "needle"), [
    (b"\xef\xbb\xbf" + jsonl([line("a")]), "byte-order mark"),
    (b'{"custom_id": "caf\xe9"}\n', "not UTF-8"),
    (b"", "empty"),
])
def test_bad_uploads_are_refused(ep, content: bytes, needle: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        v1(ep).files.create(file=("in.jsonl", io.BytesIO(content)), purpose="batch")
    assert needle in info.value.message
    with pytest.raises(openai.BadRequestError, match="purpose"):
        v1(ep).files.create(file=("in.jsonl", io.BytesIO(jsonl([line("a")]))),
                            purpose="fine-tune")


def test_upload_past_the_size_limit_is_413(make_endpoint_server) -> None:
    ep = make_endpoint_server({"max_file_bytes": 2048, "deployments": {
        "b": {"backend": "simulated", "deployment_type": "global-batch"}}})
    with pytest.raises(openai.APIStatusError) as info:
        v1(ep).files.create(file=("in.jsonl", io.BytesIO(b"x" * 5000)), purpose="batch")
    assert info.value.status_code == 413 and "2048 bytes" in info.value.message


def test_batch_create_errors(ep) -> None:
    client = v1(ep)
    uploaded = client.files.create(file=("in.jsonl", io.BytesIO(jsonl([line("a")]))),
                                   purpose="batch")
    with pytest.raises(openai.BadRequestError, match="completion_window"):
        client.batches.create(input_file_id=uploaded.id, endpoint="/chat/completions",
                              completion_window="48h")  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError, match="endpoint"):
        client.batches.create(input_file_id=uploaded.id, endpoint="/v1/embeddings",
                              completion_window="24h")
    with pytest.raises(openai.NotFoundError):
        client.batches.create(input_file_id="file-nope", endpoint="/chat/completions",
                              completion_window="24h")
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_nope")


def test_the_job_runs_after_the_client_hangs_up(ep) -> None:
    client = v1(ep)
    uploaded = client.files.create(file=("in.jsonl", io.BytesIO(jsonl(
        [line(f"d{i}", model="bslow") for i in range(4)]))), purpose="batch")

    async def create_and_hang_up() -> str:
        async with aiohttp.ClientSession() as session, session.post(
                f"{ep.url}/openai/v1/batches", headers={"api-key": ep.api_key},
                json={"input_file_id": uploaded.id, "endpoint": "/chat/completions",
                      "completion_window": "24h"}) as resp:
            return (await resp.json())["id"]

    batch_id = asyncio.run(create_and_hang_up())  # the session, and its connection, are gone
    batch = wait(v1(ep), batch_id)
    assert batch.status == "completed" and batch.request_counts.completed == 4


def test_batches_list_pages_newest_first(ep) -> None:
    client = v1(ep)
    ids = [submit(client, jsonl([line("p")])).id for _ in range(3)]
    first = client.batches.list(limit=2)
    assert [b.id for b in first.data] == ids[::-1][:2] and first.has_more
    second = client.batches.list(limit=2, after=first.data[-1].id)
    assert second.data[0].id == ids[0]
    everything = [b.id for b in client.batches.list(limit=2)]  # the SDK follows the pages
    assert everything[:3] == ids[::-1]
    for batch_id in ids:
        wait(client, batch_id)
