"""Rate-limit efficiency: wall time ÷ the limit-bound ideal, and 429s as % of requests.

    .venv/bin/python bench/bench_ratelimit.py [--requests 600] [--smoke]

Three simulated deployments on the local endpoint, each behind its own requests/min and/or
tokens/min limit (the server's sliding 10 s window, like Azure's short windows), 600 requests
each, all in one run:

- rl-requests: bound by requests/min
- rl-tokens:   bound by tokens/min
- rl-both:     both limits close to binding

Every prompt is 4 words / 40 characters and every answer exactly 16 tokens with max_tokens 16, so
the server's admission estimate (characters/4 + max_tokens) equals the usage the runner is told:
26 tokens a request. Ideal = max(requests ÷ rpm, tokens ÷ tpm) for each deployment; the run's
ideal is the slowest deployment's. A fourth deployment (not in the goal) shows a common case that
is harder: max_tokens 64 while answers are 16 tokens, so the service charges 74 tokens at
admission and the usage says 26.

compare's runner gets each deployment's limits as `requests_per_minute` / `tokens_per_minute` and
paces itself. Beside it, the same work through the azure-ai-inference SDK's own default retries
(retry_total=10, honours Retry-After) with asyncio.gather and a semaphore per deployment.
Goal: runner wall ≤ 1.05 × ideal and 429s ≤ 2 % of requests.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from _common import (
    common_args,
    endpoint_config,
    header,
    pin_self,
    pinned_endpoint,
    results_path,
    sim_deployment,
    table,
    write_section,
)

from compare import arun
from compare.deployments import Deployment

TOKENS_OUT = 16
PROMPT_TOKENS = 10  # 40 characters / 4 (server estimate) = 4 words + 6 framing (usage)
GOAL_RATIO = 1.05
GOAL_429 = 2.0
PER_DEPLOYMENT_CONCURRENCY = 16


def _limits(n: int, target_s: float) -> dict[str, dict[str, Any]]:
    """rpm / tpm so each deployment's ideal is about `target_s` seconds for n requests."""
    per_req = PROMPT_TOKENS + TOKENS_OUT
    rpm = round(n * 60 / target_s)
    tpm = round(n * per_req * 60 / target_s)
    big = 10_000_000
    return {
        "rl-requests": {"capacity": {"rpm": rpm, "tpm": big}, "max_tokens": TOKENS_OUT},
        "rl-tokens": {"capacity": {"rpm": big // 100, "tpm": tpm}, "max_tokens": TOKENS_OUT},
        "rl-both": {"capacity": {"rpm": round(rpm * 0.9), "tpm": round(tpm * 0.95)},
                    "max_tokens": TOKENS_OUT},
        "rl-tokens-maxtok64": {"capacity": {"rpm": big // 100,
                                            "tpm": round(n * (PROMPT_TOKENS + 64) * 60
                                                         / target_s)},
                               "max_tokens": 64},
    }


GOAL_DEPLOYMENTS = ("rl-requests", "rl-tokens", "rl-both")


def _prompt(i: int) -> str:
    text = f"ratelimitprobe{i:06d} alphabet beta gamma"
    assert len(text) == 40 and len(text.split()) == 4
    return text


def _ideal_s(spec: dict[str, Any], n: int) -> float:
    cap = spec["capacity"]
    tokens = n * (PROMPT_TOKENS + spec["max_tokens"])
    return max(n / cap["rpm"], tokens / cap["tpm"]) * 60


def _config(limits: dict[str, dict[str, Any]]) -> dict[str, Any]:
    entries = []
    for name, spec in limits.items():
        e = sim_deployment(name, ttft_ms=20, itl_ms=2, tokens=TOKENS_OUT)
        e[name]["capacity"] = dict(spec["capacity"], window_s=10)
        e[name]["defaults"] = {"max_tokens": spec["max_tokens"]}
        entries.append(e)
    return endpoint_config(*entries)


def _count_429(stats: dict[str, Any], name: str) -> int:
    return int(stats[name]["by_status"].get("429", 0))


async def runner_phase(url: str, key: str, limits: dict[str, dict[str, Any]],
                       n: int) -> dict[str, dict[str, float]]:
    deps = [Deployment(name=name, endpoint=url, api_key=key, max_tokens=spec["max_tokens"],
                       requests_per_minute=spec["capacity"]["rpm"],
                       tokens_per_minute=spec["capacity"]["tpm"],
                       concurrency=PER_DEPLOYMENT_CONCURRENCY)
            for name, spec in limits.items()]
    t0 = time.perf_counter()
    epoch0 = time.time()
    res = await arun([_prompt(i) for i in range(n)], deps, progress=False,
                     concurrency=PER_DEPLOYMENT_CONCURRENCY * len(deps), max_attempts=10)
    wall = time.perf_counter() - t0
    f = res.frame
    out = {}
    for name in limits:
        d = f[f["deployment"] == name]
        started = d["started_at"].map(lambda t: t.timestamp())
        done = float((started + d["latency_s"]).max() - epoch0)
        out[name] = {"wall": done, "ok": int((d["status"] == "ok").sum()),
                     "retries": int((d["attempts"] - 1).clip(lower=0).sum())}
    out["_run"] = {"wall": wall}
    return out


async def sdk_phase(url: str, key: str, limits: dict[str, dict[str, Any]],
                    n: int) -> dict[str, dict[str, float]]:
    from azure.ai.inference.aio import ChatCompletionsClient
    from azure.core.credentials import AzureKeyCredential
    from azure.core.exceptions import HttpResponseError

    t0 = time.perf_counter()
    out: dict[str, dict[str, float]] = {}
    async with ChatCompletionsClient(url, AzureKeyCredential(key)) as client:  # SDK defaults
        async def deployment(name: str, max_tokens: int) -> None:
            sem = asyncio.Semaphore(PER_DEPLOYMENT_CONCURRENCY)
            ok = 0
            finished = 0.0

            async def one(i: int) -> None:
                nonlocal ok, finished
                async with sem:
                    try:
                        response = await client.complete(
                            messages=[{"role": "user", "content": _prompt(i)}], model=name,
                            max_tokens=max_tokens, stream=True)
                        async for _ in response:
                            pass
                        ok += 1
                    except HttpResponseError:
                        pass
                    finished = max(finished, time.perf_counter() - t0)

            await asyncio.gather(*(one(i) for i in range(n)))
            out[name] = {"wall": finished, "ok": ok}

        await asyncio.gather(*(deployment(name, spec["max_tokens"])
                               for name, spec in limits.items()))
    out["_run"] = {"wall": time.perf_counter() - t0}
    return out


def run_phase(phase: str, limits: dict[str, dict[str, Any]], n: int) -> dict[str, Any]:
    with pinned_endpoint(_config(limits)) as ep:
        fn = runner_phase if phase == "runner" else sdk_phase
        out = asyncio.run(fn(ep.url, ep.api_key, limits, n))
        stats = ep.stats()
    for name in limits:
        out[name]["429"] = _count_429(stats, name)
        out[name]["sent"] = int(stats[name]["received"])
    return out


def report(results: dict[str, dict[str, Any]], limits: dict[str, dict[str, Any]],
           n: int) -> tuple[str, bool]:
    rows = []
    ok = True
    for phase, data in results.items():
        for name, spec in limits.items():
            d = data[name]
            ideal = _ideal_s(spec, n)
            ratio = d["wall"] / ideal
            rate429 = 100 * d["429"] / n
            if phase == "runner" and name in GOAL_DEPLOYMENTS:
                ok &= ratio <= GOAL_RATIO and rate429 <= GOAL_429
            cap = spec["capacity"]
            rows.append([phase, name, cap["rpm"], cap["tpm"], spec["max_tokens"], ideal,
                         d["wall"], ratio, d["429"], rate429, d["sent"], f"{d['ok']}/{n}"])
        rows.append([phase, "whole run (3 goal deployments + 1)", "", "", "",
                     max(_ideal_s(s, n) for s in limits.values()), data["_run"]["wall"],
                     data["_run"]["wall"] / max(_ideal_s(s, n) for s in limits.values()),
                     "", "", "", ""])
    headers = ["client", "deployment", "rpm", "tpm", "max_tokens", "ideal s", "wall s",
               "wall ÷ ideal", "429s", "429 % of requests", "requests sent", "ok"]
    return table(headers, rows), ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--target-s", type=float, default=40.0,
                        help="limit-bound ideal per deployment (sets rpm/tpm)")
    parser.add_argument("--no-sdk", action="store_true", help="skip the SDK-retries baseline")
    common_args(parser)
    args = parser.parse_args(argv)
    n, target = (20, 1.5) if args.smoke else (args.requests, args.target_s)
    head = header("3. Rate limits", args.smoke)
    pinned = pin_self()
    limits = _limits(n, target)
    results = {"compare runner": run_phase("runner", limits, n)}
    print("runner phase done", file=sys.stderr, flush=True)
    if not args.no_sdk:
        results["SDK retries + gather"] = run_phase("sdk", limits, n)
    text, ok = report(results, limits, n)
    notes = (
        f"{n} requests per deployment, streamed, {PER_DEPLOYMENT_CONCURRENCY} in flight per "
        f"deployment; server limits over a sliding 10 s window. wall = run start → that "
        f"deployment's last answer. 429s counted by the server. "
        f"{'Client pinned to core 1, server to core 0.' if pinned else 'Not pinned.'} "
        f"Goal (runner, first three deployments): wall ÷ ideal ≤ {GOAL_RATIO} and 429s ≤ "
        f"{GOAL_429:.0f} % → **{'met' if ok else 'NOT met'}**.\n"
    )
    body = f"{head}\n{notes}\n{text}\n"
    print(body)
    runner = results["compare runner"]
    shown = ", ".join(f"{name} {runner[name]['wall'] / _ideal_s(limits[name], n):.2f} × / "
                      f"{100 * runner[name]['429'] / n:.1f} %" for name in GOAL_DEPLOYMENTS)
    goals = [{"goal": f"runner wall ≤ {GOAL_RATIO} × the limit-bound ideal, 429s ≤ "
                      f"{GOAL_429:.0f} %", "result": f"wall ÷ ideal / 429s: {shown}", "met": ok}]
    write_section("ratelimit", body, results_path(args), goals=goals)
    return 0


if __name__ == "__main__":
    sys.exit(main())
