"""The batch path's pure logic: reading Batch objects in both spellings, custom ids, writing and
splitting input files, the ledger, joining lines to keys, the summary's turnaround."""

from __future__ import annotations

import asyncio
import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai._models import construct_type
from openai.types import Batch

from compare.deployments import Deployment
from compare.endpoints.batch_state import normal_status, parse_batch, parse_time
from compare.prompts import load_prompts
from compare.records import Record
from compare.runner.attempt import Backoff, DeploymentRun
from compare.runner.batch import interrupt_message
from compare.runner.batch_input import custom_id, parse_custom_id, write_parts
from compare.runner.batch_ledger import Ledger
from compare.runner.batch_part import Part, collect
from compare.runner.batch_records import BatchRecords
from compare.runner.measure import RecordMaker
from compare.runner.plan import Requests, plan_jobs
from compare.summary import summarize, timing_rows

REST_SAMPLE = {  # the capitalised, ISO-dated spelling of some Azure REST samples
    "id": "batch_1", "object": "batch", "endpoint": "/chat/completions",
    "input_file_id": "file-in", "completion_window": "24h", "status": "Completed",
    "output_file_id": "file-out", "error_file_id": "", "created_at": "2024-07-19T21:14:30Z",
    "in_progress_at": "2024-07-19T21:14:41.5+00:00", "completed_at": "2024-07-19T21:20:30Z",
    "request_counts": {"total": 3, "completed": 3, "failed": 0},
}


def test_both_spellings_of_a_batch_are_read() -> None:
    for obj in (REST_SAMPLE, construct_type(value=REST_SAMPLE, type_=Batch)):
        state = parse_batch(obj)
        assert state.status == "completed" and state.terminal
        assert state.created_at == pd.Timestamp("2024-07-19T21:14:30Z").timestamp()
        assert state.turnaround_s == 360.0 and state.error_file_id is None
        assert (state.total, state.completed, state.failed) == (3, 3, 0)
    spec = {**REST_SAMPLE, "status": "in_progress", "created_at": 1721423670,
            "completed_at": None, "request_counts": None}
    state = parse_batch(spec)
    assert not state.terminal and math.isnan(state.turnaround_s) and state.total is None
    assert state.counts() == "counts unknown"
    failed = parse_batch({**spec, "status": "Failed", "errors": {"object": "list", "data": [
        {"code": "token_limit_exceeded", "message": "full", "line": None}]}})
    assert failed.issues[0].code == "token_limit_exceeded" and math.isnan(failed.turnaround_s)


@pytest.mark.parametrize(("raw", "status"), [("InProgress", "in_progress"), ("Cancelling",
                         "cancelling"), ("in_progress", "in_progress"), (" Expired ", "expired")])
def test_status_spellings(raw: str, status: str) -> None:
    assert normal_status(raw) == status


def test_times() -> None:
    assert parse_time(1700000000) == 1700000000.0
    assert parse_time("1700000000") == 1700000000.0
    assert parse_time("2023-11-14T22:13:20Z") == 1700000000.0
    assert parse_time("2023-11-14T22:13:20") == 1700000000.0  # naive: UTC
    assert parse_time(None) is parse_time("soon") is parse_time(True) is None


@given(st.text(min_size=1), st.integers(0, 10_000))
def test_custom_ids_round_trip(prompt_id: str, repeat: int) -> None:
    assert parse_custom_id(custom_id(prompt_id, repeat)) == (prompt_id, repeat)


def test_not_our_custom_ids() -> None:
    assert parse_custom_id("no-repeat") is None and parse_custom_id("x#y") is None
    assert parse_custom_id(None) is None


def _requests(n: int, **overrides: Any) -> tuple[Requests, list[str]]:
    prompts = load_prompts([{"id": f"p{i}", "prompt": f"prompt {i} é"} for i in range(n)])
    dep = Deployment(name="b", kind="azure-openai-batch", endpoint="http://127.0.0.1:1",
                     api_key="k" * 12, temperature=0)
    return Requests(prompts, dep, overrides, False), prompts.ids


def test_parts_split_at_the_line_and_size_limits(tmp_path: Path) -> None:
    requests, ids = _requests(10)
    jobs = [(p, r) for r in range(2) for p in range(10)]
    parts, refused = write_parts(jobs, requests, ids, tmp_path, "s", max_lines=7)
    assert [len(p.lines) for p in parts] == [7, 7, 6] and not refused
    lines = [json.loads(x) for p in parts for x in p.path.read_text("utf-8").splitlines()]
    assert [x["custom_id"] for x in lines] == [custom_id(ids[p], r) for p, r in jobs]
    assert all(p.size == p.path.stat().st_size for p in parts)
    raw = parts[0].path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf") and "é".encode() in raw  # UTF-8, no BOM
    one = len(raw.splitlines()[0]) + 1
    parts, _ = write_parts(jobs[:5], requests, ids, tmp_path, "t", max_bytes=2 * one + 1)
    assert [len(p.lines) for p in parts] == [2, 2, 1]
    assert all(p.size <= 2 * one + 1 for p in parts)


def test_unsendable_requests_are_refused_not_written(tmp_path: Path) -> None:
    requests, ids = _requests(2, extra={"bad": float("nan")})
    parts, refused = write_parts([(0, 0), (1, 0)], requests, ids, tmp_path, "u")
    assert parts == [] and [r.error.code for r in refused] == ["not_json"] * 2
    requests, ids = _requests(3)
    parts, refused = write_parts([(0, 0)], requests, ids, tmp_path, "v", max_bytes=20)
    assert parts == [] and refused[0].error.code == "line_too_large"
    assert "at most 20 bytes" in refused[0].error.message


def test_the_ledger_survives_a_torn_line(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    part = ledger.uploaded("p1", "b", "file-1", [("q#0", "h0"), ("r#0", None)], 99)
    ledger.created(part, "batch-1")
    other = ledger.uploaded("p2", "b", "file-2", [("s#0", "h1")], 10)
    ledger.ended(part, "completed")
    with open(tmp_path / "batches.jsonl", "ab") as f:
        f.write(b'{"event": "created", "part": "p2", "bat')  # killed mid-write
    again = Ledger(tmp_path)
    parts = again.load()
    assert parts["p1"].ended == "completed" and parts["p1"].lines == [("q#0", "h0"),
                                                                      ("r#0", None)]
    assert [p.part for p in again.pending("b")] == ["p2"] and parts["p2"].batch_id is None
    again.created(other, "batch-2")
    assert Ledger(tmp_path).load()["p2"].batch_id == "batch-2"  # appended on a fresh line


class _Files:
    """Our BatchClient's download, serving fixed file contents (pure-logic test of the join)."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files

    async def download(self, file_id: str, path: Path) -> int:
        path.write_text(self.files[file_id])
        return len(self.files[file_id])


def _line(cid: str, text: str = "hi", status: int = 200) -> str:
    body = ({"model": "m", "choices": [{"index": 0, "message": {"content": text},
                                        "finish_reason": "stop"}],
             "usage": {"prompt_tokens": 3, "completion_tokens": 1}} if status == 200
            else {"error": {"code": "server_error", "message": "boom"}})
    return json.dumps({"custom_id": cid, "response": {"status_code": status,
                                                      "request_id": f"r-{cid}",
                                                      "body": body}, "error": None}) + "\n"


def test_each_key_gets_exactly_one_record(tmp_path: Path) -> None:
    requests, ids = _requests(4)
    (plan,) = plan_jobs([requests], repeats=1, concurrency=1, done={})
    run = DeploymentRun(plan, [], RecordMaker(), max_attempts=1,
                        backoff=Backoff(), rng=random.Random(0))
    records = BatchRecords(run, run.records)
    part = Part({custom_id(ids[i], 0): (i, 0, f"h{i}") for i in range(4)}, attempts=1)
    state = parse_batch({**REST_SAMPLE, "error_file_id": "file-err"})
    files = _Files({"file-out": _line("p0#0", "first") + _line("p0#0", "again")
                    + _line("ghost#0") + "not json\n" + _line("p1#0"),
                    "file-err": _line("p2#0", status=500)})
    out: list[Record] = []
    left = asyncio.run(collect(part, state, files, records, out.append,  # type: ignore[arg-type]
                               tmp_path, resubmit=False))
    assert left == [] and sorted(r.prompt_id for r in out) == ["p0", "p1", "p2", "p3"]
    by_id = {r.prompt_id: r for r in out}
    assert by_id["p0"].output == "first" and by_id["p0"].request_id == "r-p0#0"
    assert (by_id["p2"].status, by_id["p2"].error_type, by_id["p2"].http_status) == (
        "error", "ServerError", 500)
    assert by_id["p3"].error_type == "EndpointError" and "without a line" in str(
        by_id["p3"].error_message)
    assert part.stray_lines == 3  # the repeat, the unknown id, the broken line
    assert all(r.batch_id == "batch_1" and r.batch_turnaround_s == 360.0 for r in out)
    assert all(math.isnan(r.latency_s) and math.isnan(r.wall_s) for r in out)
    assert by_id["p1"].extra["request_hash"] == "h1"


def test_summary_turnaround_is_per_batch() -> None:
    rows = []
    for batch, turnaround, n in (("b1", 10.0, 90), ("b2", 30.0, 10)):
        rows += [{"deployment": "bat", "status": "ok", "cached": False, "batch_id": batch,
                  "batch_turnaround_s": turnaround, "latency_s": math.nan, "ttft_s": math.nan,
                  "decode_tps": math.nan, "prompt_tokens": 1.0, "completion_tokens": 1.0,
                  "cost": math.nan}] * n
    rows += [{"deployment": "std", "status": "ok", "cached": False, "batch_id": None,
              "batch_turnaround_s": math.nan, "latency_s": 0.5, "ttft_s": 0.1,
              "decode_tps": 9.0, "prompt_tokens": 1.0, "completion_tokens": 1.0,
              "cost": math.nan}]
    frame = pd.DataFrame(rows)
    assert list(timing_rows(frame)["deployment"].unique()) == ["std"]
    s = summarize(frame, ["std", "bat"])
    # Over batches, not rows: 90 rows of one batch weigh as much as 10 of the other.
    assert s.loc["bat", "batch_turnaround_s_p50"] == np.median([10.0, 30.0])
    assert s.loc["bat", "batch_turnaround_s_max"] == 30.0 and s.loc["bat", "n_batches"] == 2
    assert s.loc["bat", "n_timing"] == 0 and s.loc["std", "n_timing"] == 1


def test_interrupt_messages_say_what_to_do() -> None:
    part = Part({}, attempts=1)
    part.ledger = Ledger(None).uploaded("p", "b", "f", [], 0)
    part.ledger.batch_id = "batch_9"
    kept = interrupt_message("b", [part], [], Path("runs/x"))
    assert "1 batch still running" in kept and "batch_9" in kept
    assert "out='runs/x'" in kept and "--out runs/x" in kept and "--cancel-batches" in kept
    gone = interrupt_message("b", [part], [part], Path("runs/x"))
    assert "cancelled 1 batch" in gone and "send the rest in a new batch" in gone
    nowhere = interrupt_message("b", [part, part], [], None)
    assert "2 batches" in nowhere and "no out directory" in nowhere
