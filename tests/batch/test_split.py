"""Azure's limit of 100,000 requests per batch file: 100,001 keys go as two files and two
batches (100,000 + 1), through the local endpoint, with exactly one record per key."""

from __future__ import annotations

import pytest

from compare.batch_settings import MAX_LINES
from compare.runner import run
from compare.server.local import local_endpoint

from ._support import batch_dep, batches_of, one_record_per_key, uploads_of

CONFIG = {"deployments": {"wide-batch": {
    "backend": "simulated", "deployment_type": "global-batch",
    "simulated": {"seed": 1, "output_tokens": 1, "ttft_ms": 0, "itl_ms": 0},
    "batch": {"concurrency": 512, "enqueued_tokens": 100_000_000}}}}


@pytest.fixture(scope="module")
def ep():
    with local_endpoint(config=CONFIG) as endpoint:
        yield endpoint


def test_100001_keys_are_two_batches(ep, tmp_path) -> None:
    prompts = [{"id": f"k{i}", "prompt": f"item {i}"} for i in range(MAX_LINES + 1)]
    res = run(prompts, [batch_dep(ep, "wide-batch", batch_poll_s=0.5)], out=tmp_path,
              progress=False)
    f = res.frame
    one_record_per_key(f, MAX_LINES + 1)
    assert (f["status"] == "ok").all()
    parts = res.manifest["batches"]["wide-batch"]["parts"]
    assert [p["lines"] for p in parts] == [MAX_LINES, 1]
    assert [p["status"] for p in parts] == ["completed", "completed"]
    batches = batches_of(ep, res.run_id)
    assert sorted(b.request_counts.total for b in batches) == [1, MAX_LINES]
    assert len(uploads_of(ep, res.run_id)) == 2
    assert f.groupby("batch_id").size().sort_values().tolist() == [1, MAX_LINES]
    # The last key is the one that did not fit.
    assert f.loc[f["prompt_id"] == f"k{MAX_LINES}", "batch_id"].iloc[0] == parts[1]["batch_id"]
