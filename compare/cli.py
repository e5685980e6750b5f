"""`compare` command line: run, summary, deployments, serve, demo, app.

Exit codes (scripts can rely on them):
  0    done; every row ok (or content_filtered: the service answered with a filter verdict)
  1    done, but some rows failed (error, timeout, rate_limited, incomplete); results written
  2    usage or configuration error (bad argument, unreadable or invalid file, missing key)
  130  interrupted (Ctrl-C); finished records are kept in OUT/records.jsonl — run the same
       command again to resume
Errors are printed as one line naming the file or argument, without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

EXIT_OK: Final = 0
EXIT_ROWS_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130
FAILED_STATUSES: Final = frozenset({"error", "timeout", "rate_limited", "incomplete"})
KINDS: Final = ("azure-inference", "azure-openai", "openai")
EXIT_CODES_HELP: Final = """exit codes:
  0    every row ok (or content_filtered)
  1    finished, but some rows failed (error, timeout, rate_limited, incomplete)
  2    usage or configuration error (argument, file, missing key)
  130  interrupted; finished records kept in OUT/records.jsonl (rerun to resume)"""
SUMMARY_SHOWN: Final = (
    "n",
    "ok",
    "error_rate",
    "ttft_s_p50",
    "ttft_s_p90",
    "latency_s_p50",
    "latency_s_p90",
    "latency_s_p99",
    "decode_tps_mean",
    "completion_tokens",
    "cost",
)


class UsageError(Exception):
    """A bad command line; printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, exit 2, like every other usage error
        raise UsageError(f"{self.prog}: {message}")


# -- deployments from the command line ---------------------------------------------------------


class _Target(argparse.Action):
    """--endpoint/--kind/--api-version set the target for the --deployment flags after them."""

    def __call__(self, parser: Any, ns: Any, values: Any, option: str | None = None) -> None:
        groups = getattr(ns, "targets", None) or []
        current = dict(getattr(ns, "_current", None) or {})
        if self.dest == "deployment":
            groups.append({**current, "deployment": values})
        else:
            current[self.dest] = values
            # Flags given after the deployments still apply to those that had none.
            for g in groups:
                g.setdefault(self.dest, values)
        ns.targets = groups
        ns._current = current


def _add_source(p: argparse.ArgumentParser, *, required_prompts: bool = False) -> None:
    src = p.add_argument_group("deployments (one of)")
    src.add_argument("--deployments", "-d", metavar="FILE", help="deployments YAML file")
    src.add_argument("--endpoint", action=_Target, metavar="URL",
                     help="endpoint base URL for the --deployment flags after it "
                          "(default: the kind's endpoint variable)")
    src.add_argument("--kind", action=_Target, choices=KINDS,
                     help="endpoint style for the --deployment flags after it "
                          "(default azure-inference)")
    src.add_argument("--api-version", action=_Target, metavar="V", dest="api_version")
    src.add_argument("--deployment", action=_Target, metavar="NAME", dest="deployment",
                     help="deployment name (repeat for several); the key comes from the kind's "
                          "variable: AZURE_AI_CHAT_KEY, AZURE_OPENAI_API_KEY or OPENAI_API_KEY")
    src.add_argument("--local", action="store_true",
                     help="start the local endpoint and use its deployments")
    src.add_argument("--only", metavar="NAMES",
                     help="with --local or --deployments: comma-separated deployment names")


def read_file(path: str | Path, loader: Any, what: str) -> Any:
    """Run a file loader; whatever it trips over becomes one ConfigError naming the file."""
    import yaml

    from compare.errors import CompareError, ConfigError

    try:
        return loader(path)
    except CompareError:
        raise
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{what} is not UTF-8 text (byte {e.start}: {e.object[e.start:e.start + 1]!r})",
            source=str(path),
        ) from None
    except RecursionError:
        raise ConfigError(f"{what} is nested too deeply to read", source=str(path)) from None
    except (yaml.YAMLError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"cannot read {what}: {first}", source=str(path)) from None


def _deployments_from_args(args: argparse.Namespace, endpoint: Any = None) -> list[Any]:
    from compare.deployments import Deployment
    from compare.deployments_file import load_deployments, local_deployments

    only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    targets = getattr(args, "targets", None) or []
    given = [bool(args.deployments), bool(targets), bool(args.local)]
    if sum(given) > 1:
        raise UsageError("give one of --deployments FILE, --deployment NAME or --local")
    if endpoint is not None:
        kind = (getattr(args, "_current", None) or {}).get("kind") or "azure-inference"
        return local_deployments(endpoint, kind=kind, names=only)
    if args.deployments:
        deps = read_file(args.deployments, load_deployments, "deployments file")
        if only:
            names = {d.name for d in deps}
            missing = [n for n in only if n not in names]
            if missing:
                raise UsageError(
                    f"--only: {args.deployments} has no deployment {missing[0]!r} "
                    f"(it has: {', '.join(sorted(names))})"
                )
            deps = [d for d in deps if d.name in only]
        return deps
    if targets:
        out = []
        for t in targets:
            kind = t.get("kind") or "azure-inference"
            out.append(Deployment(name=t["deployment"], endpoint=t.get("endpoint"), kind=kind,
                                  api_version=t.get("api_version")))
        return out
    if Path("deployments.yaml").exists():
        return read_file("deployments.yaml", load_deployments, "deployments file")
    raise UsageError(
        "no deployments: give --deployments FILE, --deployment NAME (with --endpoint/--kind) "
        "or --local (there is no deployments.yaml here)"
    )


def _check_keys(deps: Sequence[Any]) -> None:
    """Fail before sending anything when a key is missing (the message names the variable)."""
    for d in deps:
        if d.auth == "key":
            d.resolve_api_key()


@contextlib.contextmanager
def _maybe_local(args: argparse.Namespace) -> Iterator[Any]:
    if not args.local:
        yield None
        return
    from compare.server.local import local_endpoint

    only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    print("starting the local endpoint ...", file=sys.stderr)
    with local_endpoint(only=only) as ep:
        yield ep


# -- printing ----------------------------------------------------------------------------------


# How each printed summary column is formatted: counts as integers, seconds to the ms, rates to
# 0.1, cost to a hundredth of a cent (the demo's costs are fractions of a cent).
_SUMMARY_FORMATS: Final = {
    "error_rate": "{:.1%}".format,
    "decode_tps_mean": "{:.1f}".format,
    "completion_tokens": "{:.0f}".format,
    "cost": "{:.4f}".format,
}
_COUNT_COLUMNS: Final = frozenset({"n", "ok", "error", "timeout", "rate_limited", "incomplete",
                                   "content_filtered"})


def _summary_cell(column: str) -> Any:
    fmt = _SUMMARY_FORMATS.get(column)
    if fmt is None:
        fmt = "{:.0f}".format if column in _COUNT_COLUMNS else "{:.3f}".format

    def cell(value: Any) -> str:
        return "-" if value is None or value != value else fmt(value)  # NaN → "-"
    return cell


def format_summary(results: Any) -> str:
    """The summary table plus the definitions of the metrics it shows."""
    import pandas as pd

    from compare.records import METRICS

    table = results.summary()
    shown = [c for c in SUMMARY_SHOWN if c in table.columns]
    failed = [s for s in ("error", "timeout", "rate_limited", "incomplete", "content_filtered")
              if s in table.columns and table[s].sum() > 0]
    table = table[shown[:3] + failed + shown[3:]]
    if table["cost"].isna().all():
        table = table.drop(columns="cost")
    with pd.option_context("display.width", 200, "display.max_columns", 40):
        text = table.to_string(formatters={c: _summary_cell(c) for c in table.columns})
    legend = [
        "  n: rows (prompts × repeats); ok: rows with status ok; error_rate: share of rows not ok"
        + ("; " + ", ".join(failed) + ": rows with that status" if failed else ""),
    ]
    for metric in ("ttft_s", "latency_s", "decode_tps"):
        legend.append(f"  {metric}: {METRICS[metric]}")
    legend.append("  _p50/_p90/_p99: percentiles over rows with status ok, not replayed from a "
                  "checkpoint; decode_tps_mean: mean over the same rows")
    legend.append("  completion_tokens: total over all rows (from usage)")
    if "cost" in table.columns:
        legend.append("  cost: total over all rows, from the deployments' per-1k-token prices")
    return text + "\n" + "\n".join(legend)


def _report_rows(results: Any) -> int:
    frame = results.frame
    failed = frame["status"].isin(list(FAILED_STATUSES))
    n_failed = int(failed.sum())
    if n_failed:
        kinds = frame.loc[failed, "status"].value_counts().to_dict()
        detail = ", ".join(f"{k} {v}" for k, v in kinds.items())
        print(f"{n_failed} of {len(frame)} rows failed ({detail})", file=sys.stderr)
        first = frame.loc[failed].iloc[0]
        print(f"first failure: {first['deployment']}: {first['error_type']}: "
              f"{first['error_message']}", file=sys.stderr)
        return EXIT_ROWS_FAILED
    return EXIT_OK


def _progress(args: argparse.Namespace) -> bool:
    if args.progress is not None:
        return bool(args.progress)
    return sys.stderr.isatty()


# -- commands ----------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from compare.prompts import load_prompts
    from compare.runner import new_run_id, run

    prompts = read_file(args.prompts, load_prompts, "prompt set")
    out = Path(args.out) if args.out else Path("runs") / new_run_id()
    overrides = {
        k: getattr(args, k)
        for k in ("temperature", "max_tokens", "top_p", "seed")
        if getattr(args, k) is not None
    }
    with _maybe_local(args) as ep:
        deps = _deployments_from_args(args, ep)
        _check_keys(deps)
        try:
            results = run(prompts, deps, repeats=args.repeats, out=out, stream=not args.no_stream,
                          concurrency=args.concurrency, max_attempts=args.max_attempts,
                          progress=_progress(args), run_id=args.run_id, **overrides)
        except KeyboardInterrupt:
            _interrupted(out)
            return EXIT_INTERRUPTED
    print(format_summary(results))
    print(f"\nresults: {out}/ (results.parquet, manifest.json, records.jsonl)")
    return _report_rows(results)


def _interrupted(out: Path) -> None:
    from compare.checkpoint import read_checkpoint

    n = len(read_checkpoint(out))
    print(f"\ninterrupted: {n} finished records kept in {out / 'records.jsonl'}; run the same "
          "command again to resume", file=sys.stderr)


def cmd_summary(args: argparse.Namespace) -> int:
    from compare.results import Results

    results = Results.load(args.run_dir)
    if args.format == "csv":
        results.summary().to_csv(sys.stdout)
    elif args.format == "json":
        print(results.summary().to_json(orient="index", indent=2))
    else:
        print(format_summary(results))
    return EXIT_OK


def cmd_deployments(args: argparse.Namespace) -> int:
    import asyncio

    with _maybe_local(args) as ep:
        deps = _deployments_from_args(args, ep)
        infos = asyncio.run(_model_infos(deps)) if not args.no_info else [None] * len(deps)
    for dep, info in zip(deps, infos, strict=True):
        print(f"{dep.name}")
        print(f"  kind: {dep.kind}  endpoint: {dep.endpoint}  deployment: {dep.deployment}")
        if dep.labels:
            labels = ", ".join(f"{k}={v}" for k, v in dep.labels.items())
            print(f"  labels: {labels}")
        if args.no_info:
            continue
        if isinstance(info, dict):
            print("  info: " + ", ".join(f"{k}={v}" for k, v in info.items()))
        else:
            print(f"  info: {info}")
    return EXIT_OK


async def _model_infos(deps: Sequence[Any]) -> list[Any]:
    from compare.endpoints import EndpointPool
    from compare.errors import CompareError

    pool = EndpointPool()
    out: list[Any] = []
    try:
        for dep in deps:
            try:
                info = await pool.get(dep).model_info(dep.deployment)
                out.append(info if info is not None else "not available on this endpoint")
            except CompareError as e:
                out.append(f"unavailable ({e})")
    finally:
        await pool.aclose()
    return out


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


def cmd_demo(args: argparse.Namespace) -> int:
    from compare.prompts import demo_prompts
    from compare.results import MANIFEST_FILE, PROMPTS_FILE, RESULTS_FILE
    from compare.runner import run
    from compare.server.local import local_endpoint

    out = Path(args.out)
    if not args.resume:
        for name in ("records.jsonl", RESULTS_FILE, MANIFEST_FILE, PROMPTS_FILE, "charts.png"):
            (out / name).unlink(missing_ok=True)
    only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    print("starting the local endpoint (loads the models; first start takes a while) ...",
          file=sys.stderr)
    with local_endpoint(only=only) as ep:
        deps = demo_deployments(ep, names=only)
        shared = demo_shared_limits(ep, deps)
        print(f"deployments: {', '.join(d.name for d in deps)}", file=sys.stderr)
        try:
            results = run(demo_prompts(), deps, repeats=args.repeats, out=out,
                          progress=_progress(args), max_tokens=args.max_tokens,
                          concurrency=args.concurrency, shared_limits=shared)
        except KeyboardInterrupt:
            _interrupted(out)
            return EXIT_INTERRUPTED
    print(format_summary(results))
    notes = demo_notes(deps, shared)
    if notes:
        print(notes)
    chart = write_charts(results, out / "charts.png")
    print(f"\nresults: {out}/ (results.parquet, manifest.json, records.jsonl, {chart.name})")
    ok = results.frame["status"] == "ok"
    # The demo succeeds when every deployment answered; individual throttled rows are part of it.
    answered = set(results.frame.loc[ok, "deployment"])
    missing = [d.name for d in deps if d.name not in answered]
    if missing:
        print(f"no answer from: {', '.join(missing)}", file=sys.stderr)
        return EXIT_ROWS_FAILED
    return EXIT_OK


def write_charts(results: Any, path: Path) -> Path:
    """The charts dashboard as a PNG (headless backend)."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    from compare import charts

    fig = charts.dashboard(results)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


def _delegate(command: str, argv: list[str]) -> int:
    if command == "serve":
        from compare.server.__main__ import main as serve_main

        code = serve_main(argv)
    else:
        from compare.app import main as app_main

        code = app_main(argv)
    return int(code or 0)


# -- parser ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="compare",
        description="Fan one prompt set out to several LLM deployments and compare outputs, "
                    "latencies, tokens and cost.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser("run", help="run a prompt set against deployments", epilog=EXIT_CODES_HELP,
                       formatter_class=fmt,
                       description="Send every prompt to every deployment REPEATS times; "
                                   "write OUT/results.parquet, manifest.json and the "
                                   "records.jsonl checkpoint (rerun with the same --out to "
                                   "resume), then print the summary.")
    p.add_argument("--prompts", "-p", required=True, metavar="FILE",
                   help="prompt set: .jsonl, .csv or .json")
    _add_source(p)
    p.add_argument("--repeats", "-n", type=int, default=1, metavar="N")
    p.add_argument("--out", "-o", metavar="DIR", help="run directory (default runs/<run id>)")
    p.add_argument("--run-id", metavar="ID")
    p.add_argument("--concurrency", type=int, default=32, metavar="N",
                   help="global in-flight limit (default 32)")
    p.add_argument("--max-attempts", type=int, default=5, metavar="N",
                   help="attempts per request incl. retries (default 5)")
    p.add_argument("--no-stream", action="store_true", help="non-streaming requests (no TTFT)")
    p.add_argument("--temperature", type=float)
    p.add_argument("--max-tokens", type=int, dest="max_tokens")
    p.add_argument("--top-p", type=float, dest="top_p")
    p.add_argument("--seed", type=int)
    _add_progress(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("summary", help="print the summary of a run directory",
                       epilog=EXIT_CODES_HELP, formatter_class=fmt,
                       description="Per-deployment summary of runs/NAME (results.parquet, or "
                                   "records.jsonl of an interrupted run).")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("deployments", help="list deployments and what /info reports",
                       epilog=EXIT_CODES_HELP, formatter_class=fmt,
                       description="List the configured deployments and the model information "
                                   "their endpoint reports (GET /info where it has it).")
    _add_source(p)
    p.add_argument("--no-info", action="store_true", help="do not contact the endpoints")
    p.set_defaults(func=cmd_deployments)

    sub.add_parser("serve", help="start the local endpoint (see `compare serve --help`)",
                   add_help=False)

    p = sub.add_parser("demo", help="local endpoint + bundled prompts → runs/demo",
                       epilog=EXIT_CODES_HELP, formatter_class=fmt,
                       description="Start the local endpoint with its default deployments (real "
                                   "small models and simulated ones), run the bundled demo "
                                   "prompts, print the summary and write results.parquet, "
                                   "manifest.json and charts.png to OUT. Costs use illustrative "
                                   "per-1k-token prices (the local models are free).")
    p.add_argument("--out", "-o", default="runs/demo", metavar="DIR")
    p.add_argument("--only", metavar="NAMES", help="comma-separated deployment names")
    p.add_argument("--repeats", "-n", type=int, default=1, metavar="N")
    p.add_argument("--max-tokens", type=int, default=48, dest="max_tokens")
    p.add_argument("--concurrency", type=int, default=8, metavar="N",
                   help="total requests in flight (default 8); deployments on a real local "
                        "model always get 1 at a time (one generation per model on the server)")
    p.add_argument("--resume", action="store_true",
                   help="keep finished records of a previous demo run in OUT")
    _add_progress(p)
    p.set_defaults(func=cmd_demo)

    sub.add_parser("app", help="start the explorer app (see `compare app --help`)",
                   add_help=False)
    return parser


def _add_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="show a progress bar (default: when stderr is a terminal)")
    p.add_argument("--no-progress", dest="progress", action="store_false")


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in ("serve", "app"):
        return _guard(lambda: _delegate(args_list[0], args_list[1:]))
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    for name in ("repeats", "concurrency", "max_attempts", "max_tokens"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            print(f"error: compare {args.command}: --{name.replace('_', '-')} must be at least 1",
                  file=sys.stderr)
            return EXIT_USAGE
    return _guard(lambda: args.func(args))


def _guard(fn: Any) -> int:
    from compare.errors import CompareError

    try:
        return int(fn())
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (UsageError, CompareError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (FileNotFoundError, PermissionError, IsADirectoryError) as e:
        where = f"{e.filename}: " if e.filename else ""
        print(f"error: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
