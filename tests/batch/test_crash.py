"""Crash safety of batch deployments: a run killed (SIGKILL) or interrupted (SIGINT) while its
batch runs is resumed from the same `out` without a second upload or a second batch — the
server's own lists of files and batches are the counters — and ends with one record per key."""

from __future__ import annotations

import io
import json
import signal
import time

import pytest

from compare.checkpoint import read_checkpoint
from compare.runner import run
from compare.server.local import local_endpoint

from ._support import (
    CONFIG,
    batch_dep,
    batches_of,
    ledger,
    one_record_per_key,
    sdk,
    start_child,
    uploads_of,
    wait_for,
)

N = 20  # slow-batch runs 2 at a time, ~0.25 s each: ~2.5 s per batch


@pytest.fixture(scope="module")
def ep():
    with local_endpoint(config=CONFIG) as endpoint:
        yield endpoint


def child_prompts() -> list[dict[str, str]]:
    """The child script's prompts (same ids and texts)."""
    return [{"id": f"k{i:02d}", "prompt": f"child prompt {i}"} for i in range(N)]


def _resume_dep(ep):
    """The child's deployment (same name and target), in this process."""
    return batch_dep(ep, "slow-batch").replace(name="b")


def _created(out) -> bool:
    return any(e["event"] == "created" for e in ledger(out))


def _run_id(out) -> str:
    return json.loads((out / "manifest.json").read_text())["run_id"]


def test_sigkill_while_polling_then_resume_polls_the_same_batch(ep, tmp_path) -> None:
    child = start_child(ep, "slow-batch", tmp_path, N)
    wait_for(lambda: _created(tmp_path) or child.poll() is not None)
    time.sleep(0.2)  # polling now
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    assert child.returncode == -signal.SIGKILL
    run_id = _run_id(tmp_path)
    (batch,) = batches_of(ep, run_id)
    assert batch.status in ("validating", "in_progress")  # the kill left it running
    res = run(child_prompts(), [_resume_dep(ep)], out=tmp_path, progress=False)
    one_record_per_key(res.frame, N)
    assert (res.frame["status"] == "ok").all()
    assert set(res.frame["batch_id"]) == {batch.id}
    # The server's counters: one upload and one batch for this run, in all.
    assert len(uploads_of(ep, run_id)) == 1 and len(batches_of(ep, run_id)) == 1
    (part,) = res.manifest["batches"]["b"]["parts"]
    assert part["adopted"] and part["batch_id"] == batch.id
    assert [e["event"] for e in ledger(tmp_path)] == ["uploaded", "created", "ended"]
    assert len(read_checkpoint(tmp_path)) == N  # nothing recorded twice


def test_a_lost_create_answer_is_found_not_created_again(ep, tmp_path) -> None:
    # What a kill between sending the create and reading its answer leaves: the ledger knows
    # the file, not the batch, which exists on the service.
    first = run(child_prompts()[:3], [_resume_dep(ep)], out=tmp_path, progress=False)
    run_id = first.run_id
    events = ledger(tmp_path)
    uploaded = next(e for e in events if e["event"] == "uploaded")
    (tmp_path / "batches.jsonl").write_text(json.dumps(uploaded) + "\n")
    (tmp_path / "records.jsonl").write_text("")
    client = sdk(ep)
    again = client.batches.create(input_file_id=uploaded["file_id"],
                                  endpoint="/chat/completions", completion_window="24h",
                                  metadata={"compare_run": run_id})
    res = run(child_prompts()[:3], [_resume_dep(ep)], out=tmp_path, progress=False)
    assert (res.frame["status"] == "ok").all()
    assert set(res.frame["batch_id"]) == {again.id}
    assert len(batches_of(ep, run_id)) == 2  # the first run's, and the one found; no third
    assert len(uploads_of(ep, run_id)) == 1


def test_killed_after_upload_creates_from_the_same_file(ep, tmp_path) -> None:
    first = run(child_prompts()[:3], [_resume_dep(ep)], out=tmp_path, progress=False)
    run_id = first.run_id
    # What a kill right after an upload leaves: a file on the service that no batch reads, and
    # the ledger's "uploaded" line for it.
    client = sdk(ep)
    uploaded = next(e for e in ledger(tmp_path) if e["event"] == "uploaded")
    content = client.files.content(uploaded["file_id"]).content
    orphan = client.files.create(file=(f"{run_id}-b-9.jsonl", io.BytesIO(content)),
                                 purpose="batch")
    uploaded.update(file_id=orphan.id, part="orphan", at=time.time())
    (tmp_path / "batches.jsonl").write_text(json.dumps(uploaded) + "\n")
    (tmp_path / "records.jsonl").write_text("")
    res = run(child_prompts()[:3], [_resume_dep(ep)], out=tmp_path, progress=False)
    assert (res.frame["status"] == "ok").all()
    made = {b.input_file_id for b in batches_of(ep, run_id)}
    assert made == {uploaded["file_id"] for uploaded in ledger(tmp_path)[:1]} | {
        first.manifest["batches"]["b"]["parts"][0]["input_file_id"]}
    assert orphan.id in made
    assert len(uploads_of(ep, run_id)) == 2  # the first run's and the orphan: none more


def test_ctrl_c_keeps_the_batch_running_and_says_how_to_resume(ep, tmp_path) -> None:
    child = start_child(ep, "slow-batch", tmp_path, N)
    wait_for(lambda: _created(tmp_path) or child.poll() is not None)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130 and "Traceback" not in err, err
    assert "still running on the service" in err and f"out='{tmp_path}'" in err
    assert "--cancel-batches-on-interrupt" in err
    run_id = _run_id(tmp_path)
    (batch,) = batches_of(ep, run_id)
    assert batch.cancelling_at is None  # left running (it may have finished since)
    assert json.loads((tmp_path / "manifest.json").read_text())["status"] == "interrupted"
    res = run(child_prompts(), [_resume_dep(ep)], out=tmp_path, progress=False)
    assert (res.frame["status"] == "ok").all() and set(res.frame["batch_id"]) == {batch.id}
    assert len(uploads_of(ep, run_id)) == 1 and len(batches_of(ep, run_id)) == 1


def test_ctrl_c_with_cancel_keeps_finished_lines_and_resends_the_rest(ep, tmp_path) -> None:
    child = start_child(ep, "slow-batch", tmp_path, N, cancel=True)
    wait_for(lambda: _created(tmp_path) or child.poll() is not None)
    client = sdk(ep)
    batch_id = next(e["batch_id"] for e in ledger(tmp_path) if e["event"] == "created")
    wait_for(lambda: (client.batches.retrieve(batch_id).request_counts or
                      type("c", (), {"completed": 0})).completed >= 2)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130 and "cancelled 1 batch" in err, err
    wait_for(lambda: client.batches.retrieve(batch_id).status == "cancelled")
    finished = client.batches.retrieve(batch_id).request_counts.completed
    assert 2 <= finished < N
    res = run(child_prompts(), [_resume_dep(ep)], out=tmp_path, progress=False)
    f = res.frame
    one_record_per_key(f, N)
    assert (f["status"] == "ok").all()
    assert (f["batch_id"] == batch_id).sum() == finished  # kept from the cancelled batch
    report = res.manifest["batches"]["b"]
    assert report["resubmitted_lines"] == N - finished
    assert sorted(p["lines"] for p in report["parts"]) == [N - finished, N]
    assert len(batches_of(ep, _run_id(tmp_path))) == 2
    assert len(uploads_of(ep, _run_id(tmp_path))) == 2  # the rest is a new (smaller) file


def test_fresh_warns_about_pending_batches(ep, tmp_path) -> None:
    child = start_child(ep, "slow-batch", tmp_path, N)
    wait_for(lambda: _created(tmp_path) or child.poll() is not None)
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    batch_id = next(e["batch_id"] for e in ledger(tmp_path) if e["event"] == "created")
    with pytest.warns(RuntimeWarning, match=batch_id):
        res = run(child_prompts()[:2], [_resume_dep(ep)], out=tmp_path, progress=False,
                  fresh=True)
    assert batch_id not in set(res.frame["batch_id"])
    assert not (tmp_path / "batches.jsonl").read_text().count(batch_id)
    sdk(ep).batches.cancel(batch_id)
