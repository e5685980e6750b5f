"""`compare show RUN`: a saved run's outputs side by side in the terminal — one block per prompt,
one wrapped column per deployment, status and latency under each answer. Plain ASCII, so it
reads the same in any terminal, pager or log file.
"""

from __future__ import annotations

import argparse
import math
import shutil
import textwrap
from collections.abc import Sequence
from itertools import zip_longest
from typing import Any, Final

from compare._checks import hint
from compare.cli.args import UsageError, positive_int
from compare.cli.outcome import EXIT_CODES_HELP, EXIT_OK
from compare.records import FAILED_STATUSES

MIN_COLUMN: Final = 24
GAP: Final = " | "


def add_parser(sub: Any) -> None:
    """Register `compare show`."""
    p = sub.add_parser("show", help="outputs of a run side by side in the terminal",
                       epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Print a run's outputs side by side: one block per prompt, "
                                   "one column per deployment, status and latency under each.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--prompt", action="append", metavar="ID", dest="prompt_ids",
                   help="only this prompt id (repeat for several)")
    p.add_argument("--deployment", action="append", metavar="NAME", dest="names",
                   help="only this deployment (repeat for several; in this order)")
    p.add_argument("--repeat", type=int, default=0, metavar="N",
                   help="which repeat to show (default 0, the first)")
    p.add_argument("--width", type=positive_int, metavar="COLUMNS",
                   help="line width (default: the terminal's)")
    p.add_argument("--max-lines", type=positive_int, default=12, metavar="N",
                   help="lines per answer before it is cut (default 12)")
    p.add_argument("--full", action="store_true", help="never cut an answer")
    p.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    """Print the side-by-side view of RUN_DIR."""
    from compare.results import Results

    results = Results.load(args.run_dir)
    width = args.width or shutil.get_terminal_size((100, 24)).columns
    names = _pick(args.names, results.deployments, "--deployment", "deployment", args.run_dir)
    ids = list(dict.fromkeys(results.frame["prompt_id"].astype(str)))
    chosen = _pick(args.prompt_ids, ids, "--prompt", "prompt", args.run_dir)
    print(side_by_side_text(results, prompt_ids=chosen, deployments=names, repeat=args.repeat,
                            width=width, max_lines=None if args.full else args.max_lines))
    return EXIT_OK


def _pick(given: list[str] | None, have: list[str], flag: str, what: str, run: str) -> list[str]:
    if not given:
        return have
    for name in given:
        if name not in have:
            listed = ", ".join(have[:10]) + (" ..." if len(have) > 10 else "")
            raise UsageError(f"{flag}: {run} has no {what} {name!r}{hint(name, have)}; it has: "
                             f"{listed}")
    return list(dict.fromkeys(given))


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        lines.extend(textwrap.wrap(paragraph, width, replace_whitespace=False,
                                   drop_whitespace=True, break_on_hyphens=False) or [""])
    return lines


def _status_line(row: Any, repeats: int) -> str:
    parts = [str(row["status"])]
    latency = row["latency_s"]
    if isinstance(latency, float) and math.isfinite(latency):
        parts.append(f"{latency:.2f} s")
    if repeats > 1:
        parts.append(f"repeat={int(row['repeat'])} of {repeats} repeats")
    if bool(row["cached"]):
        parts.append("cached")
    return ", ".join(parts)


def _answer(rows: Any, repeat: int) -> tuple[str, str]:
    """(text, status line) of one prompt × deployment, the given repeat (else the first)."""
    if rows is None or rows.empty:
        return "", "not run"
    chosen = rows[rows["repeat"] == repeat]
    row = (chosen if len(chosen) else rows.sort_values("repeat")).iloc[0]
    status = str(row["status"])
    text = row["output"] if isinstance(row["output"], str) else ""
    if status == "content_filtered" and not text:
        text = "(the content filter answered instead of the model)"
    elif status in FAILED_STATUSES and not text:
        text = f"{row['error_type'] or status}: {row['error_message'] or ''}".strip(": ")
    return text, _status_line(row, len(rows))


def _text_lines(text: str, width: int, max_lines: int | None) -> list[str]:
    lines = _wrap(text, width)
    if max_lines is not None and len(lines) > max_lines:
        cut = len(lines) - max_lines + 1
        lines = [*lines[: max_lines - 1], f"... +{cut} lines (--full)"[:width]]
    return lines


Cell = tuple[str, list[str], list[str]]  # header, answer lines, status lines


def _band(cells: Sequence[Cell], width: int) -> list[str]:
    """Cells next to each other, each padded to `width`; the status lines of all cells start on
    the same line, under one rule."""

    def rows(parts: Sequence[list[str]]) -> list[str]:
        return [GAP.join(c.ljust(width) for c in row).rstrip()
                for row in zip_longest(*parts, fillvalue="")]

    return [
        GAP.join(header[:width].ljust(width) for header, _, _ in cells).rstrip(),
        GAP.join("=" * width for _ in cells),
        *rows([text for _, text, _ in cells]),
        GAP.join("-" * width for _ in cells),
        *rows([status for _, _, status in cells]),
    ]


def side_by_side_text(results: Any, *, prompt_ids: Sequence[str], deployments: Sequence[str],
                      repeat: int = 0, width: int = 100, max_lines: int | None = 12) -> str:
    """The terminal view: per prompt, its text, then the deployments' answers in columns
    (as many per band as fit in `width`, at least MIN_COLUMN characters each)."""
    frame = results.frame
    texts: dict[str, str] = {}
    if results.prompt_table is not None and "prompt" in results.prompt_table:
        texts = dict(zip(results.prompt_table["id"].astype(str), results.prompt_table["prompt"],
                         strict=False))
    per_band = max(1, min(len(deployments), (width + len(GAP)) // (MIN_COLUMN + len(GAP))))
    column = max(MIN_COLUMN, (width - len(GAP) * (per_band - 1)) // per_band)
    groups = dict(iter(frame.groupby([frame["prompt_id"].astype(str),
                                      frame["deployment"].astype(str)], sort=False)))
    blocks = []
    for pid in prompt_ids:
        block = [f"== {pid} ".ljust(width, "=")]
        if pid in texts:
            block.extend(_wrap(str(texts[pid]), width))
        for start in range(0, len(deployments), per_band):
            cells = []
            for name in deployments[start:start + per_band]:
                text, status = _answer(groups.get((pid, name)), repeat)
                cells.append((name, _text_lines(text, column, max_lines), _wrap(status, column)))
            block.append("")
            block.extend(_band(cells, column))
        blocks.append("\n".join(block))
    return "\n\n".join(blocks)
