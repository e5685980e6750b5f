"""`compare demo`: start the local endpoint with its default deployments (real small models and
simulated ones), run the bundled prompts, print the summary and write charts.png. Costs use
illustrative per-1k-token prices, labelled as such, since the local models are free.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from compare.cli.args import add_progress, name_list, positive_int, progress_enabled
from compare.cli.outcome import (
    CHARTS_FILE,
    EXIT_CODES_HELP,
    EXIT_OK,
    EXIT_ROWS_FAILED,
    interrupted,
    print_where,
    write_charts,
)
from compare.cli.tables import format_summary


def add_parser(sub: Any) -> None:
    """Register `compare demo`."""
    p = sub.add_parser("demo", help="local endpoint + bundled prompts → runs/demo",
                       epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Start the local endpoint with its default deployments (real "
                                   "small models and simulated ones), run the bundled demo "
                                   "prompts, print the summary and write results.parquet, "
                                   "manifest.json and charts.png to OUT. Costs use illustrative "
                                   "per-1k-token prices (the local models are free).")
    p.add_argument("--out", "-o", default="runs/demo", metavar="DIR")
    p.add_argument("--only", metavar="NAMES", type=name_list,
                   help="comma-separated deployment names")
    p.add_argument("--repeats", "-n", type=positive_int, default=1, metavar="N")
    p.add_argument("--max-tokens", type=positive_int, default=48, dest="max_tokens")
    p.add_argument("--concurrency", type=positive_int, default=8, metavar="N",
                   help="total requests in flight (default 8); deployments on a real local "
                        "model always get 1 at a time (one generation per model on the server)")
    p.add_argument("--resume", action="store_true",
                   help="keep finished records of a previous demo run in OUT")
    add_progress(p)
    p.set_defaults(func=command)


# Illustrative prices (per 1k tokens, input/output) so the demo's cost column and chart show
# something: the local models cost nothing, and these are NOT the price of any real service.
# Real runs take prices from the deployments file (price_input_per_1k, price_output_per_1k).
DEMO_PRICES_PER_1K: Final[dict[str, tuple[float, float]]] = {
    "smollm2": (0.0001, 0.0004),
    "smollm2-precise": (0.0001, 0.0004),
    "gemma3-base": (0.0002, 0.0008),
    "sim-fast": (0.0005, 0.0015),
    "sim-slow": (0.0025, 0.0100),
}
DEMO_PRICE_LABEL: Final = "illustrative (demo only, not a real price)"


def demo_deployments(endpoint: Any, names: Sequence[str] | None = None) -> list[Any]:
    """The demo's Deployments on a local endpoint: one request at a time to real models, prices.

    The local llama.cpp backend generates one answer at a time per loaded model; with more than
    one request in flight the others wait on the server, and their TTFT measures that queue, not
    the model. So real-model deployments get concurrency 1 (simulated ones keep the runner's
    share). Prices are DEMO_PRICES_PER_1K, labelled illustrative in labels["prices"].
    """
    from dataclasses import replace

    from compare.deployments_file import local_deployments
    from compare.server.config import load_config

    backend = {d.name: d.backend for d in
               load_config(getattr(endpoint, "deployments_file", None)).deployments}
    out = []
    for dep in local_deployments(endpoint, names=names):
        changes: dict[str, Any] = {}
        if backend.get(dep.name) == "llama":
            changes["concurrency"] = 1
        if dep.name in DEMO_PRICES_PER_1K:
            pin, pout = DEMO_PRICES_PER_1K[dep.name]
            changes.update(price_input_per_1k=pin, price_output_per_1k=pout,
                           labels={**dep.labels, "prices": DEMO_PRICE_LABEL})
        out.append(replace(dep, **changes))
    return out


def demo_shared_limits(endpoint: Any, deps: Sequence[Any]) -> list[tuple[list[str], int]]:
    """Demo deployments served by one loaded model (same weights): one request at a time across
    them, since the server runs that model's generations one by one anyway."""
    from compare.server.config import load_config

    names = {d.name for d in deps}
    by_weights: dict[str, list[str]] = {}
    for spec in load_config(getattr(endpoint, "deployments_file", None)).deployments:
        if spec.backend == "llama" and spec.llama is not None and spec.name in names:
            by_weights.setdefault(spec.llama.weights.key, []).append(spec.name)
    return [(group, 1) for group in by_weights.values() if len(group) > 1]


def demo_notes(deps: Sequence[Any], shared: Sequence[tuple[Sequence[str], int]] = ()) -> str:
    """What the demo's table needs to be read right: concurrency and illustrative prices."""
    lines = ["notes:"]
    serial = [d.name for d in deps if d.concurrency == 1]
    if serial:
        lines.append(f"  {', '.join(serial)}: 1 request at a time each. The local llama.cpp "
                     "server generates one answer at a time per model, so more in flight would "
                     "only queue there and TTFT would measure the queue.")
        if "smollm2-precise" in serial:
            lines.append("  smollm2-precise is greedy and reproducible: it evaluates the prompt "
                         "token by token with a fresh cache, so its TTFT is longer by design.")
        for group, _ in shared:
            lines.append(f"  {' and '.join(group)} share one loaded model: 1 request at a time "
                         "across them (the wait for the other's answer happens before the "
                         "send, so it is not in their TTFT).")
    priced = [d for d in deps if d.labels.get("prices") == DEMO_PRICE_LABEL]
    if priced:
        prices = ", ".join(f"{d.name} {d.price_input_per_1k:g}/{d.price_output_per_1k:g}"
                           for d in priced)
        lines.append(f"  cost uses ILLUSTRATIVE prices per 1k tokens (input/output), not real "
                     f"ones: {prices}")
    return "\n".join(lines) if len(lines) > 1 else ""


def command(args: argparse.Namespace) -> int:
    """Local endpoint + bundled prompts; exit 1 when a deployment never answered."""
    from compare.prompts import demo_prompts
    from compare.results import MANIFEST_FILE, PROMPTS_FILE, RESULTS_FILE
    from compare.runner import run
    from compare.server.local import local_endpoint

    out = Path(args.out)
    if not args.resume:
        for name in ("records.jsonl", RESULTS_FILE, MANIFEST_FILE, PROMPTS_FILE, CHARTS_FILE):
            (out / name).unlink(missing_ok=True)
    print("starting the local endpoint (loads the models; first start takes a while) ...",
          file=sys.stderr)
    with local_endpoint(only=args.only) as ep:
        deps = demo_deployments(ep, names=args.only)
        shared = demo_shared_limits(ep, deps)
        print(f"deployments: {', '.join(d.name for d in deps)}", file=sys.stderr)
        try:
            results = run(demo_prompts(), deps, repeats=args.repeats, out=out,
                          progress=progress_enabled(args), max_tokens=args.max_tokens,
                          concurrency=args.concurrency, shared_limits=shared)
        except KeyboardInterrupt:
            return interrupted(out)
    print(format_summary(results))
    notes = demo_notes(deps, shared)
    if notes:
        print(notes)
    print_where(out, write_charts(results, out / CHARTS_FILE))
    ok = results.frame["status"] == "ok"
    # The demo succeeds when every deployment answered; individual throttled rows are part of it.
    answered = set(results.frame.loc[ok, "deployment"])
    missing = [d.name for d in deps if d.name not in answered]
    if missing:
        print(f"no answer from: {', '.join(missing)}", file=sys.stderr)
        return EXIT_ROWS_FAILED
    return EXIT_OK
