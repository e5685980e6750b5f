"""Local endpoint benchmark: llama decode speed through HTTP vs in-process, TTFT, server peak RSS.

    .venv/bin/python bench/bench_endpoint.py [--max-tokens 128] [--rounds 3]

1. Starts the endpoint with the shipped deployments (all models loaded). For `smollm2` and
   `gemma3-base`, each prompt is streamed through the endpoint (greedy, fixed seed, raw aiohttp
   client) and then run by llama-cpp-python in this process on the same weights, prompt tokens
   and settings (n_threads=1, n_ctx, n_batch). Back-to-back pairs keep background load on this
   shared machine from favouring one side. Decode tokens/s = (tokens - 1) / (last - first token).
2. TTFT of a short prompt through the endpoint, and the server's peak RSS (VmHWM).
Goals: endpoint/in-process >= 0.9, peak RSS <= 1.5 GB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import aiohttp

from compare.server.backends.llama import LlamaModel, resolve_weights
from compare.server.config import load_config
from compare.server.local import local_endpoint

PROMPTS = [
    "Explain how a bicycle works.",
    "Write a short story about a lighthouse keeper.",
    "List some tips for learning a new language.",
    "Describe the water cycle.",
]
MODELS = ["smollm2", "gemma3-base"]


async def _stream(url: str, key: str, name: str, prompt: str, max_tokens: int) -> dict:
    payload = {"model": name, "messages": [{"role": "user", "content": prompt}],
               "max_tokens": max_tokens, "temperature": 0, "seed": 1, "stream": True}
    times: list[float] = []
    usage = None
    async with aiohttp.ClientSession() as session:
        sent = time.perf_counter()
        async with session.post(f"{url}/chat/completions?api-version=2024-05-01-preview",
                                json=payload, headers={"api-key": key}) as resp:
            resp.raise_for_status()
            async for line in resp.content:
                if not line.startswith(b"data: {"):
                    continue
                chunk = json.loads(line[6:])
                if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                    times.append(time.perf_counter())
                usage = chunk.get("usage") or usage
    n = usage["completion_tokens"] if usage else len(times)
    return {"ttft": times[0] - sent if times else float("nan"), "tokens": n,
            "tps": (n - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")}


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class InProcess:
    """llama-cpp-python in this process: same weights, settings and prompt tokens."""

    def __init__(self, name: str) -> None:
        spec = next(d for d in load_config(only=[name]).deployments)
        assert spec.llama is not None
        self.template = spec.llama.chat_template
        self.model = LlamaModel(resolve_weights(spec.llama.weights), n_ctx=spec.llama.n_ctx,
                                n_threads=spec.llama.n_threads, n_batch=spec.llama.n_batch)

    def run(self, prompt: str, max_tokens: int) -> float:
        import llama_cpp

        llm = self.model.llm
        vocab = llm._model.vocab
        tokens = self.model.prompt_tokens([{"role": "user", "content": prompt}], self.template)
        llm.set_seed(1)
        times: list[float] = []
        for tok in llm.generate(tokens, temp=0.0, top_p=1.0, top_k=40, min_p=0.05):
            if llama_cpp.llama_vocab_is_eog(vocab, tok):
                break
            llm.detokenize([tok])
            times.append(time.perf_counter())
            if len(times) >= max_tokens:
                break
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 8 else float("nan")


def _paired_runs(url: str, key: str, rounds: int, max_tokens: int) -> dict:
    """Endpoint and in-process back to back on each prompt, so background load hits both."""
    out: dict[str, dict[str, list[float]]] = {}
    for name in MODELS:
        local = InProcess(name)
        asyncio.run(_stream(url, key, name, "Hello", 8))  # warm-up
        via, direct = [], []
        for _ in range(rounds):
            for prompt in PROMPTS:
                r = asyncio.run(_stream(url, key, name, prompt, max_tokens))
                d = local.run(prompt, max_tokens)
                if r["tokens"] > 8 and d == d:
                    via.append(r["tps"])
                    direct.append(d)
        local.model.close()
        out[name] = {"via": via, "direct": direct,
                     "ratio": [a / b for a, b in zip(via, direct, strict=True)]}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    with local_endpoint(startup_timeout=300) as ep:
        load_s = time.perf_counter() - started
        assert ep._proc is not None
        pid = ep._proc.pid
        rss_loaded = _peak_rss_mb(pid)
        result = _paired_runs(ep.url, ep.api_key, args.rounds, args.max_tokens)
        ttft = [asyncio.run(_stream(ep.url, ep.api_key, "smollm2", "Hi!", 4))["ttft"]
                for _ in range(7)]
        rss_peak = _peak_rss_mb(pid)

    print(f"local endpoint: {len(load_config().deployments)} deployments loaded in {load_s:.1f} s")
    print(f"{'model':<14}{'endpoint tok/s':>16}{'in-process tok/s':>18}{'ratio':>8}"
          "   (medians; ratio = median of back-to-back pairs)")
    ok = True
    for name in MODELS:
        r = result[name]
        ratio = statistics.median(r["ratio"])
        ok &= ratio >= 0.9
        print(f"{name:<14}{statistics.median(r['via']):>16.1f}"
              f"{statistics.median(r['direct']):>18.1f}{ratio:>8.2f}")
    print(f"TTFT smollm2, short prompt: median {statistics.median(ttft) * 1000:.1f} ms "
          f"(min {min(ttft) * 1000:.1f}, max {max(ttft) * 1000:.1f})")
    print(f"server RSS after load: {rss_loaded:.0f} MB; peak during the run: {rss_peak:.0f} MB "
          f"(goal <= 1536 MB)")
    ok &= rss_peak <= 1536
    with open("/proc/loadavg") as f:
        print(f"load average during the run: {f.read().split()[0]} (2 cores; others' work "
              "skews both columns alike)")
    print("goals met" if ok else "GOALS NOT MET")
    return 0


if __name__ == "__main__":
    sys.exit(main())
