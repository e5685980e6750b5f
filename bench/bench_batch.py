"""The local endpoint's batch emulation at Azure's limit: one 100,000-line job on a simulated
global-batch deployment, through the openai SDK (upload, create, poll, download).

    .venv/bin/python bench/bench_batch.py [--lines 100000] [--smoke]

Prints the time of each phase and the server's resident memory before and at its peak (sampled
while the job runs): the job streams its input and outputs through files, so memory should not
grow with the number of lines.
"""

from __future__ import annotations

import argparse
import io
import json
import threading
import time

import openai
import psutil

from compare.server.local import local_endpoint

CONFIG = {"deployments": {"bench-batch": {
    "backend": "simulated", "deployment_type": "global-batch",
    "simulated": {"seed": 1, "output_tokens": {"dist": "uniform", "min": 4, "max": 12},
                  "ttft_ms": 0, "itl_ms": 0},
    "batch": {"concurrency": 512, "enqueued_tokens": 100_000_000}}}}


def input_file(lines: int) -> bytes:
    """`lines` chat requests for the bench deployment, as JSONL."""
    return "".join(json.dumps({"custom_id": f"task-{i}", "method": "POST",
                               "url": "/chat/completions",
                               "body": {"model": "bench-batch", "max_tokens": 16, "messages": [
                                   {"role": "user", "content": f"Summarise item {i} briefly."}]}})
                   + "\n" for i in range(lines)).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--smoke", action="store_true", help="1,000 lines: checks the script")
    args = parser.parse_args()
    lines = 1000 if args.smoke else args.lines
    data = input_file(lines)
    with local_endpoint(config=CONFIG) as ep:
        server = psutil.Process(ep.pid)
        rss_start = server.memory_info().rss
        peak = [rss_start]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.05):
                peak[0] = max(peak[0], server.memory_info().rss)

        threading.Thread(target=sample, daemon=True).start()
        client = openai.OpenAI(base_url=f"{ep.url}/openai/v1", api_key=ep.api_key,
                               max_retries=0)
        t0 = time.perf_counter()
        uploaded = client.files.create(file=("bench.jsonl", io.BytesIO(data)), purpose="batch")
        t_upload = time.perf_counter()
        batch = client.batches.create(input_file_id=uploaded.id, endpoint="/chat/completions",
                                      completion_window="24h")
        while batch.status not in ("completed", "failed", "expired", "cancelled"):
            time.sleep(0.2)
            batch = client.batches.retrieve(batch.id)
        t_done = time.perf_counter()
        output = client.files.content(batch.output_file_id).content
        t_download = time.perf_counter()
        done.set()
    counts = batch.request_counts
    done_n, failed_n = (counts.completed, counts.failed) if counts else ("-", "-")
    print(f"batch of {lines} lines ({len(data) / 1e6:.1f} MB): status {batch.status}, "
          f"completed {done_n}, failed {failed_n}")
    print(f"  upload {t_upload - t0:.2f} s · validate + run {t_done - t_upload:.2f} s · "
          f"download {t_download - t_done:.2f} s ({len(output) / 1e6:.1f} MB)")
    print(f"  server RSS {rss_start / 2**20:.0f} MiB at start, {peak[0] / 2**20:.0f} MiB peak")


if __name__ == "__main__":
    main()
