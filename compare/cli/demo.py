"""`compare demo`: start the local endpoint with its default deployments (real small models and
simulated ones), run the bundled prompts, score the answers of those with a reference, print the
summary (a mean score per deployment included) and write charts.png. Costs use illustrative
per-1k-token prices, labelled as such, since the local models are free.
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
                                   "prompts, score the answers of those with a reference, print "
                                   "the summary and write results.parquet, manifest.json and "
                                   "charts.png to OUT. Costs use illustrative per-1k-token "
                                   "prices (the local models are free).")
    p.add_argument("--out", "-o", default="runs/demo", metavar="DIR")
    p.add_argument("--only", metavar="NAMES", type=name_list,
                   help="comma-separated deployment names")
    p.add_argument("--repeats", "-n", type=positive_int, default=1, metavar="N")
    p.add_argument("--max-tokens", type=positive_int, default=48, dest="max_tokens")
    p.add_argument("--concurrency", type=positive_int, default=8, metavar="N",
                   help="total requests in flight (default 8); a real local model gets 1 at a "
                        "time, as the endpoint declares (one generation per loaded model)")
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
    """The demo's Deployments on a local endpoint, with illustrative prices.

    Their capacity comes from the endpoint (`local_deployments`): a real llama.cpp model
    generates one answer at a time, so its deployments declare max_concurrent_requests=1, and
    deployments on one loaded model share a capacity_group. The runner sends no more than that
    by itself. Prices are DEMO_PRICES_PER_1K, labelled illustrative in labels["prices"].
    """
    from compare.deployments_file import local_deployments

    out = []
    for dep in local_deployments(endpoint, names=names):
        if dep.name in DEMO_PRICES_PER_1K:
            pin, pout = DEMO_PRICES_PER_1K[dep.name]
            dep = dep.replace(price_input_per_1k=pin, price_output_per_1k=pout,
                              labels={**dep.labels, "prices": DEMO_PRICE_LABEL})
        out.append(dep)
    return out


def _requests(n: int) -> str:
    return f"{n} request" + ("s" if n != 1 else "")


def _capacity_notes(deps: Sequence[Any]) -> list[str]:
    """What the endpoint declares it serves at once, and that the runner keeps to it."""
    groups: dict[str, list[Any]] = {}
    for d in deps:
        if d.max_concurrent_requests is not None:
            groups.setdefault(d.capacity_group or d.name, []).append(d)
    lines = []
    by_limit: dict[int, list[str]] = {}
    for group in groups.values():
        if len(group) == 1:
            by_limit.setdefault(group[0].max_concurrent_requests, []).append(group[0].name)
    for limit, names in by_limit.items():
        lines.append(f"  {', '.join(names)}: the local endpoint declares {_requests(limit)} at "
                     "a time each (a loaded llama.cpp model generates one answer at a time) and "
                     "the runner sends no more, so TTFT measures the model, not a queue on the "
                     "server.")
    for members in (g for g in groups.values() if len(g) > 1):
        size = min(d.max_concurrent_requests for d in members)
        lines.append(f"  {' and '.join(d.name for d in members)} share one loaded model: "
                     f"{_requests(size)} at a time across them (the "
                     "runner waits before the send, so the wait is not in their TTFT).")
    if any(d.name == "smollm2-precise" for d in deps if d.max_concurrent_requests):
        lines.append("  smollm2-precise is greedy and reproducible: it evaluates the prompt "
                     "token by token with a fresh cache, so its TTFT is longer by design.")
    return lines


def demo_notes(deps: Sequence[Any], scorers: Sequence[Any] = (), scored: int = 0) -> str:
    """What the demo's table needs to be read right: capacity, scores, illustrative prices."""
    lines = ["notes:", *_capacity_notes(deps)]
    if scorers:
        names = " and ".join(s.name for s in scorers)
        lines.append(f"  scores: {names} on the {scored} bundled prompts with a reference "
                     "(chosen from their tags by compare.scorers.default_scorers_for); the "
                     "others have no score and are left out of the means.")
        simulated = [d.name for d in deps if "simulated" in str(d.labels.get("model", ""))]
        if simulated:
            lines.append(f"  {', '.join(simulated)}: simulated, answering placeholder text, "
                         "so their scores are 0 by design.")
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
    from compare.run_dir import RUN_FILES
    from compare.runner import run
    from compare.scorers import default_scorers_for
    from compare.server.local import local_endpoint

    out = Path(args.out)
    if not args.resume:
        for name in (*RUN_FILES, CHARTS_FILE):
            (out / name).unlink(missing_ok=True)
    prompts = demo_prompts()
    scorers = default_scorers_for(prompts)
    print("starting the local endpoint (loads the models; first start takes a while) ...",
          file=sys.stderr)
    with local_endpoint(only=args.only) as ep:
        deps = demo_deployments(ep, names=args.only)
        print(f"deployments: {', '.join(d.name for d in deps)}", file=sys.stderr)
        try:
            results = run(prompts, deps, repeats=args.repeats, out=out,
                          progress=progress_enabled(args), max_tokens=args.max_tokens,
                          concurrency=args.concurrency, scorers=scorers)
        except KeyboardInterrupt:
            return interrupted(out)
    print(format_summary(results))
    notes = demo_notes(deps, scorers, sum(p.reference is not None for p in prompts))
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
