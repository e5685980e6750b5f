"""Load: the runner and the local endpoint hold 256 requests in flight for about 60 s against
simulated deployments with 5% injected faults; every request is accounted for and memory stays
flat. Prints the numbers (in-flight samples, throughput, RSS of client and server).

Sized by arithmetic, not by a timer: each request takes ~3.8 s (2 s TTFT + 9 × 200 ms), so 256
in flight finish ~67 requests/s; with retries, the 429s' deployment-wide pauses, ramp-up and
tail, 2 × 1700 requests take about 65 s here. Long requests keep the CPU cost per second low:
the box is shared, and a starved event loop would measure itself.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from typing import Any

import psutil
import pytest

from compare.checkpoint import read_checkpoint
from compare.deployments_file import local_deployments
from compare.runner import Backoff, arun
from compare.server.local import local_endpoint

from ._support import server_process

IN_FLIGHT = 256
PER_DEPLOYMENT = int(os.environ.get("RELIABILITY_LOAD_PROMPTS", "1700"))
MB = 1 << 20
TTFT_MS, ITL_MS, TOKENS = 2000, 200, 10
# 5% of requests get a fault (rates of successive rules add up for small rates).
FAULTS = [
    {"fault": "500", "rate": 0.015},
    {"fault": "429", "rate": 0.01, "retry_after_s": 0.2},
    {"fault": "reset_mid_stream", "rate": 0.01, "after_tokens": 3},
    {"fault": "error_event_mid_stream", "rate": 0.0075, "after_tokens": 5},
    {"fault": "no_finish_reason", "rate": 0.0075},
]


def _dep(seed: int) -> dict[str, Any]:
    return {"backend": "simulated",
            "simulated": {"seed": seed, "output_tokens": TOKENS, "ttft_ms": TTFT_MS,
                          "itl_ms": ITL_MS},
            "faults": FAULTS}


CONFIG = {"deployments": {"load-a": _dep(1), "load-b": _dep(2)}}


class Sampler(threading.Thread):
    """Polls the server's in-flight count and both RSS values while the run goes."""

    def __init__(self, ep: Any, server: psutil.Process) -> None:
        super().__init__(daemon=True)
        self.ep = ep
        self.server = server
        self.client = psutil.Process()
        self.stop = threading.Event()
        self.samples: list[tuple[float, int, int, int]] = []  # t, in flight, client, server rss

    def run(self) -> None:
        t0 = time.monotonic()
        while not self.stop.wait(0.5):
            stats = self.ep.stats()
            in_flight = sum(int(s["in_flight"]) for s in stats.values())
            self.samples.append((time.monotonic() - t0, in_flight,
                                 self.client.memory_info().rss,
                                 self.server.memory_info().rss))


@pytest.mark.timeout(300)
async def test_256_in_flight_for_a_minute(tmp_path) -> None:
    with local_endpoint(config=CONFIG) as ep:
        server = server_process(ep)
        deps = [
            local_deployments(ep, kind="azure-inference", names=["load-a"], concurrency=128,
                              read_timeout_s=20)[0],
            local_deployments(ep, kind="azure-openai", names=["load-b"], concurrency=128,
                              read_timeout_s=20)[0],
        ]
        prompts = [f"load prompt {i}" for i in range(PER_DEPLOYMENT)]
        client = psutil.Process()
        start_rss = (client.memory_info().rss, server.memory_info().rss)
        sampler = Sampler(ep, server)
        sampler.start()
        t0 = time.monotonic()
        try:
            res = await arun(prompts, deps, out=tmp_path / "load", concurrency=IN_FLIGHT,
                             max_attempts=4, backoff=Backoff(base_s=0.05, cap_s=0.5),
                             progress=False, max_tokens=32)
        finally:
            sampler.stop.set()
            sampler.join()
        elapsed = time.monotonic() - t0
        stats = ep.stats()
        end_rss = (client.memory_info().rss, server.memory_info().rss)

    frame = res.frame
    assert_every_attempt_accounted(frame, stats, tmp_path / "load")
    in_flight_median = report_load(frame, stats, sampler, elapsed, start_rss, end_rss)
    # Between a request's end and the next one's arrival the slot is not counted by the server
    # (record, checkpoint, new request): a little under 256 is the best it can see.
    assert in_flight_median >= 0.8 * IN_FLIGHT
    assert elapsed >= 45  # ~51 s of pure in-flight time even on an idle machine
    for start, end in zip(start_rss, end_rss, strict=True):
        assert end < 2 * start + 50 * MB, (start / MB, end / MB)


def assert_every_attempt_accounted(frame, stats, out) -> None:
    n = 2 * PER_DEPLOYMENT
    # Every request accounted for: one record per prompt × deployment, checkpointed too ...
    assert len(frame) == n and not frame.duplicated(["prompt_id", "deployment"]).any()
    assert len(read_checkpoint(out)) == n
    # ... and every attempt a record counts is one request the server saw, no more, no fewer.
    for name in ("load-a", "load-b"):
        rows = frame[frame["deployment"] == name]
        s = stats[name]
        assert s["in_flight"] == 0
        assert s["received"] == int(rows["attempts"].sum()), (name, s["received"])
        n_ok = int((rows["status"] == "ok").sum())
        # Each attempt is either an injected fault or the row's one success.
        assert sum(s["faults"].values()) == int(rows["attempts"].sum()) - n_ok
    failed = frame[frame["status"] != "ok"]
    assert len(failed) <= 0.01 * n, failed["status"].value_counts()
    assert (frame.loc[frame["status"] == "ok", "finish_reason"] == "stop").all()


def report_load(frame, stats, sampler, elapsed, start_rss, end_rss) -> float:
    """Print what the run held; the median in-flight count of its steady middle."""
    n = 2 * PER_DEPLOYMENT
    failed = frame[frame["status"] != "ok"]
    # The middle of the run (past ramp-up, before the tail) held ~256 in flight.
    steady = [s[1] for s in sampler.samples if 8 < s[0] < elapsed - 10]
    assert steady, "the run was too short to sample"
    in_flight_median = statistics.median(steady)
    mb = MB
    total_faults = sum(sum(s["faults"].values()) for s in stats.values())
    warm = next(s for s in sampler.samples if s[0] >= 8)
    late = [s for s in sampler.samples if s[0] < elapsed - 10][-1]
    print(f"\nload: {n} records in {elapsed:.1f} s ({n / elapsed:.0f} records/s), "
          f"{int(frame['attempts'].sum())} requests, {total_faults} injected faults "
          f"({total_faults / frame['attempts'].sum():.1%}), {len(failed)} rows not ok; "
          f"in flight median {in_flight_median:.0f} (min {min(steady)}, max {max(steady)}); "
          f"ttft_s p50 {frame['ttft_s'].median():.3f} (configured {TTFT_MS / 1000:.3f}), "
          f"latency_s p50 {frame['latency_s'].median():.3f} / p90 "
          f"{frame['latency_s'].quantile(0.9):.3f} (configured "
          f"{(TTFT_MS + (TOKENS - 1) * ITL_MS) / 1000:.3f}); "
          f"RSS client {start_rss[0] / mb:.0f} → {end_rss[0] / mb:.0f} MB, "
          f"server {start_rss[1] / mb:.0f} → {end_rss[1] / mb:.0f} MB "
          f"(peak {max(s[2] for s in sampler.samples) / mb:.0f} / "
          f"{max(s[3] for s in sampler.samples) / mb:.0f} MB; steady phase client "
          f"{warm[2] / mb:.0f} → {late[2] / mb:.0f} MB, server {warm[3] / mb:.0f} → "
          f"{late[3] / mb:.0f} MB)")
    return in_flight_median
