"""Before/after: one benchmark script against an older revision's `compare/` and the current tree.

    .venv/bin/python bench/before_after.py --rev 949f5fa --script accuracy --rounds 2 \\
        -- --levels 16,64

The older revision is checked out in a temporary `git worktree add --detach` (removed at the
end); the script — always the current tree's `bench/` script, so both sides run the same
harness against the same bench-owned server — runs once per round per side, with that side's
root first on PYTHONPATH so its `compare` is the one imported. The sides alternate (before,
after, then after, before, ...) so drifting load on the shared machine falls on both. Each run
writes its rows as JSON (`--json`, its own RESULTS.md section suppressed); this script writes one
section, `before-after-<script>`, with the median of each value per side and after ÷ before.

CPU time per request is the robust measure on a shared machine (wall times and timing errors
move with the other processes' load, which each run notes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import BENCH_DIR, header, median, results_path, table, write_section

ROOT = BENCH_DIR.parent
SCRIPTS = {"overhead": "bench_overhead.py", "accuracy": "bench_accuracy.py"}
# The script's JSON rows: the fields that identify a row, the values compared, the goal value.
SHAPES: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "overhead": (("kind", "stream", "inflight", "way"), ("cpu_ms_per_request", "rps"),
                 "cpu_ms_per_request"),
    "accuracy": (("harness", "inflight"),
                 ("ttft_99", "latency_99", "cpu_ms_per_request"),
                 "cpu_ms_per_request"),
}
# Rows whose numbers depend on compare (the others — bare SDKs, raw aiohttp — are the same code
# on both sides: their after ÷ before is the load drift between the runs).
OURS = {"overhead": ("way", ("runner", "adapter")), "accuracy": ("harness", ("runner",))}
# No regression: the median after ÷ before of the goal value (CPU per request) of compare's rows,
# divided by the same ratio of the reference rows (load drift), at most this.
GOAL_RATIO = 1.05


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def describe_current() -> str:
    head = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--porcelain", "--", "compare")
    return f"{head}{' + uncommitted changes in compare/' if dirty else ''}"


def run_side(script: str, side_root: Path, extra: list[str], out: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(side_root)}
    cmd = [sys.executable, str(BENCH_DIR / SCRIPTS[script]), "--no-results", "--json", str(out),
           *extra]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{script} against {side_root} failed:\n{proc.stderr[-3000:]}")
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


def compare_rows(script: str, runs: dict[str, list[dict[str, Any]]]
                 ) -> tuple[list[list[Any]], list[str], list[float], list[float]]:
    """The table rows, and after ÷ before of the goal value for compare's rows and for the
    reference rows."""
    keys, values, goal_value = SHAPES[script]
    field, ours = OURS[script]
    grouped: dict[tuple[Any, ...], dict[str, dict[str, list[float]]]] = {}
    for side, payloads in runs.items():
        for payload in payloads:
            for row in payload["rows"]:
                slot = grouped.setdefault(tuple(row[k] for k in keys), {})
                for v in values:
                    slot.setdefault(f"{side}:{v}", []).append(row[v])
    lines, ratios, reference = [], [], []
    for key, slot in grouped.items():
        mine = any(str(key[keys.index(field)]).startswith(w) for w in ours)
        line: list[Any] = list(key)
        for v in values:
            before = median(slot.get(f"before:{v}", []))
            after = median(slot.get(f"after:{v}", []))
            ratio = after / before if before else float("nan")
            line.append(f"{_num(before)} → {_num(after)} ({ratio:.2f})")
            if v == goal_value:
                (ratios if mine else reference).append(ratio)
        lines.append(line)
    headers = [*keys] + [f"{v}: before → after (after ÷ before)" for v in values]
    return lines, headers, ratios, reference


def run_sides(args: argparse.Namespace, extra: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The script's JSON payloads per side, from `args.rounds` alternating runs in temporary
    worktrees (removed at the end)."""
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory(prefix="bench-before-after-") as tmp:
        worktree, after_tree = Path(tmp) / "rev", Path(tmp) / "after"
        git("worktree", "add", "--detach", str(worktree), args.rev)
        if args.after:
            git("worktree", "add", "--detach", str(after_tree), args.after)
        try:
            for r in range(args.rounds):
                order = ("before", "after") if r % 2 == 0 else ("after", "before")
                for side in order:
                    root = worktree if side == "before" else after_tree if args.after else ROOT
                    out = Path(tmp) / f"{side}-{r}.json"
                    runs[side].append(run_side(args.script, root, extra, out))
                    print(f"round {r + 1}/{args.rounds}: {side} done", file=sys.stderr,
                          flush=True)
        finally:
            git("worktree", "remove", "--force", str(worktree))
            if args.after:
                git("worktree", "remove", "--force", str(after_tree))
    return runs


def _num(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", required=True, help="the older revision (any git rev)")
    parser.add_argument("--after", default=None,
                        help="a revision for the after side too (default: the current tree)")
    parser.add_argument("--script", choices=sorted(SCRIPTS), required=True)
    parser.add_argument("--rounds", type=int, default=2, help="runs per side, interleaved")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--results", type=Path, default=None)
    parser.add_argument("extra", nargs="*", help="arguments for the script (after --)")
    args = parser.parse_args(argv)
    extra = list(args.extra) + (["--smoke"] if args.smoke else [])
    rev_name = git("rev-parse", "--short", args.rev)
    current = git("rev-parse", "--short", args.after) if args.after else describe_current()
    runs = run_sides(args, extra)
    lines, headers, ratios, reference = compare_rows(args.script, runs)
    drift = median(reference) if reference else 1.0
    goal_ratio = median(ratios) / drift
    met = goal_ratio <= GOAL_RATIO
    loads = {side: ", ".join(p["load_average"].split(" / ")[0] for p in payloads)
             for side, payloads in runs.items()}
    head = header(f"Before/after: {SCRIPTS[args.script]}, {rev_name} vs {current}", args.smoke)
    notes = (
        f"`bench/before_after.py --rev {args.rev}"
        f"{' --after ' + args.after if args.after else ''} --script {args.script} "
        f"--rounds {args.rounds}"
        f"{' -- ' + ' '.join(args.extra) if args.extra else ''}`: the current `bench/` script "
        f"with `{rev_name}`'s `compare/` (before) and `{current}`'s (after), {args.rounds} "
        "run(s) per side, alternating; medians per side. Load average (1 min) at each run's "
        f"end: before {loads['before']}; after {loads['after']}. The rows that do not run "
        f"compare's code (bare SDKs, raw aiohttp) moved by a median {drift:.2f} between the "
        "sides: load drift. Goal: no regression, median after ÷ before of compare's CPU "
        f"ms/request ({median(ratios):.2f}) ÷ that drift ≤ {GOAL_RATIO} → {goal_ratio:.2f} "
        f"**{'met' if met else 'NOT met'}**.\n"
    )
    body = f"{head}\n{notes}\n{table(headers, lines)}\n"
    print(body)
    goals = [{"goal": f"{rev_name} → {current}: no CPU regression in {SCRIPTS[args.script]} "
                      f"(median after ÷ before ≤ {GOAL_RATIO})",
              "result": f"{goal_ratio:.2f} load-corrected (raw {median(ratios):.2f}, rows "
                        f"{min(ratios):.2f}–{max(ratios):.2f}; reference rows {drift:.2f})",
              "met": met}] if ratios else []
    path = args.results if args.results is not None else (None if args.smoke else
                                                         results_path(args))
    after_name = git("rev-parse", "--short", args.after) if args.after else "tree"
    write_section(f"before-after-{args.script}-{rev_name}-{after_name}", body, path,
                  goals=goals)
    return 0


if __name__ == "__main__":
    sys.exit(main())
