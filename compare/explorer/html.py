"""HTML the explorer shows, as plain strings (no ipywidgets): outputs side by side, the live
counters, the records frame. `compare report` embeds the same side-by-side table.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

from compare.charts import STATUS_COLORS
from compare.records import FAILED_STATUSES, METRICS, Record

FOLD_AT: Final = 280  # characters: longer outputs are folded into <details>
FRAME_COLUMNS: Final = (
    "prompt_id", "deployment", "repeat", "status", "latency_s", "ttft_s", "decode_tps",
    "prompt_tokens", "completion_tokens", "cost", "attempts", "finish_reason", "error_type",
    "output",
)
ERROR_COLOR: Final = "#b00"

STYLE: Final = """<style>
table.cmp-side-by-side {border-collapse: collapse; font-size: 12px; width: 100%;}
table.cmp-side-by-side th, table.cmp-side-by-side td {border: 1px solid #ddd; padding: 4px 6px;
  vertical-align: top; text-align: left;}
table.cmp-side-by-side th {background: #f3f3f3; position: sticky; top: 0;}
.cmp-text {white-space: pre-wrap; word-break: break-word; font-family: monospace;}
.cmp-error {color: #b00;}
.cmp-filtered {color: #9467bd;}
.cmp-meta {color: #555; font-size: 11px; margin-top: 3px;}
.cmp-prompt {max-width: 22em;}
</style>"""


def status_color(status: str) -> str:
    """The colour of a status, the same as in the charts."""
    return STATUS_COLORS.get(status, STATUS_COLORS["other"])


def message_html(text: str, *, error: bool = False) -> str:
    """A status line: escaped text, red when it reports an error."""
    color = ERROR_COLOR if error else "#333"
    return f'<span style="color:{color}">{html.escape(text)}</span>'


def _fold(text: str) -> str:
    body = html.escape(text)
    if len(text) <= FOLD_AT:
        return f'<div class="cmp-text">{body}</div>'
    head = html.escape(text[:FOLD_AT].rstrip())
    return (f'<details class="cmp-fold"><summary class="cmp-text">{head} … '
            f'<i>({len(text)} characters, click to unfold)</i></summary>'
            f'<div class="cmp-text">{body}</div></details>')


def _cell(rows: pd.DataFrame) -> str:
    """One prompt × deployment: the first repeat's output (or error), then status and latency."""
    if rows.empty:
        return '<td class="cmp-cell"><span class="cmp-meta">not run</span></td>'
    first = rows.sort_values("repeat").iloc[0]
    status = str(first["status"])
    if status == "ok" or (isinstance(first["output"], str) and first["output"]):
        content = _fold(str(first["output"] or ""))
    elif status == "content_filtered":  # the service's verdict, not an error
        message = f"content filter: {first['error_message'] or 'blocked'}"
        content = f'<div class="cmp-text cmp-filtered">{html.escape(message)}</div>'
    else:
        message = f"{first['error_type'] or status}: {first['error_message'] or ''}".strip(": ")
        content = f'<div class="cmp-text cmp-error">{html.escape(message)}</div>'
    latency = first["latency_s"]
    meta = [f'<b style="color:{status_color(status)}">{html.escape(status)}</b>']
    if isinstance(latency, float) and math.isfinite(latency):
        meta.append(f"latency {latency:.2f} s")
    if len(rows) > 1:
        ok = rows[rows["status"] == "ok"]["latency_s"].dropna()
        p50 = f", p50 {np.median(ok):.2f} s" if len(ok) else ""
        meta.append(f"{len(rows)} repeats{p50}")
    if bool(first.get("cached", False)):
        meta.append("cached")
    return (f'<td class="cmp-cell">{content}'
            f'<div class="cmp-meta">{" · ".join(meta)}</div></td>')


def prompt_texts(results: Any, prompts: Any = None) -> dict[str, str]:
    """Prompt id → text: from `prompts` (a PromptSet) when given, else saved with the run."""
    if prompts is not None:
        return {p.id: p.text for p in prompts}
    saved = results.prompt_table
    if saved is not None and "prompt" in saved:
        return dict(zip(saved["id"], saved["prompt"], strict=False))
    return {}


def side_by_side_html(results: Any, prompts: Any = None) -> str:
    """HTML table: one row per prompt, one column per deployment, status + latency under outputs.

    `results` is a `compare.Results`; `prompts` (a PromptSet) supplies the prompt texts, else
    the texts saved with the run are used.
    """
    frame = results.frame
    if frame.empty:
        return "<p><i>No records yet.</i></p>"
    texts = prompt_texts(results, prompts)
    names = results.deployments
    prompt_ids = list(dict.fromkeys([*(p.id for p in prompts or ()), *frame["prompt_id"]]))
    groups = {key: rows for key, rows in frame.groupby(["prompt_id", "deployment"], sort=False)}
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = []
    for pid in prompt_ids:
        if not any((pid, n) in groups for n in names):
            continue
        prompt_cell = f"<b>{html.escape(pid)}</b>"
        if pid in texts:
            prompt_cell += f"<br>{_fold(texts[pid])}"
        cells = "".join(_cell(groups.get((pid, n), frame.iloc[0:0])) for n in names)
        body.append(f'<tr><td class="cmp-prompt">{prompt_cell}</td>{cells}</tr>')
    return (f'{STYLE}<table class="cmp-side-by-side"><thead><tr><th>prompt</th>{head}</tr>'
            f'</thead><tbody>{"".join(body)}</tbody></table>')


def counters_html(records: Sequence[Record], names: Sequence[str], total: int) -> str:
    """Live per-deployment table: done / total, failed (error, timeout, rate_limited,
    incomplete: red), content filtered (its own colour: a result, not an error), p50 latency of
    timed records."""
    rows = []
    filtered_color = status_color("content_filtered")
    for name in names:
        mine = [r for r in records if r.deployment == name]
        failed = sum(r.status in FAILED_STATUSES for r in mine)
        filtered = sum(r.status == "content_filtered" for r in mine)
        lat = [r.latency_s for r in mine
               if r.status == "ok" and not r.cached and math.isfinite(r.latency_s)]
        p50 = f"{np.median(lat):.2f}" if lat else "–"
        color = ERROR_COLOR if failed else "inherit"
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{len(mine)} / {total}</td>"
                    f'<td style="color:{color}">{failed}</td>'
                    f'<td style="color:{filtered_color if filtered else "inherit"}">{filtered}</td>'
                    f"<td>{p50}</td></tr>")
    return ('<table class="cmp-counters" style="font-size:12px;border-collapse:collapse">'
            '<thead><tr><th style="text-align:left">deployment</th><th>done</th><th>failed</th>'
            '<th>content filtered</th><th>p50 latency (s)</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>'
            '<style>table.cmp-counters td, table.cmp-counters th {padding: 2px 10px;}</style>')


def frame_html(results: Any) -> str:
    """The records frame (the main columns, outputs cut to 120 characters) and the metric
    definitions of the columns shown."""
    cols = [c for c in FRAME_COLUMNS if c in results.frame.columns]
    view = results.frame[cols].copy()
    if "output" in view:
        view["output"] = view["output"].fillna("").str.slice(0, 120)
    table = view.to_html(index=False, max_rows=500, na_rep="",
                         float_format=lambda v: f"{v:.3f}")
    legend = "".join(f"<li><b>{k}</b>: {html.escape(v)}</li>" for k, v in METRICS.items()
                     if k in cols)
    return (f'<div style="max-height:420px;overflow:auto">{table}</div>'
            f'<ul style="font-size:11px;color:#555">{legend}</ul>')
