"""A run as one self-contained HTML file (`compare report RUN`, or `write_report` from Python):
summary table, charts embedded as base64 PNG, outputs side by side, failures, scores and
statistics when the run has `score_*` columns, and the manifest with anything secret-looking
removed. No scripts, no external files: it can be mailed or attached to a pull request.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from compare import charts
from compare.explorer.html import side_by_side_html

SCORE_PREFIX: Final = "score_"
SECRET_WORDS: Final = ("key", "token", "secret", "password", "credential", "authorization")
MAX_FAILURES: Final = 50
STYLE: Final = """<style>
body {font-family: system-ui, sans-serif; margin: 24px auto; padding: 0 24px; max-width: 1400px;
  color: #222;}
h1 {font-size: 22px;} h2 {font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd;}
nav a {margin-right: 14px;}
table.cmp-table {border-collapse: collapse; font-size: 13px;}
table.cmp-table th, table.cmp-table td {border: 1px solid #ddd; padding: 3px 8px;
  text-align: left; vertical-align: top;}
table.cmp-numbers td {text-align: right;}
figure {margin: 16px 0;} figure img {max-width: 100%; height: auto;}
figcaption {font-weight: bold; margin-bottom: 4px;}
pre {background: #f6f6f6; padding: 8px; overflow: auto; font-size: 12px;}
.cmp-note {color: #555; font-size: 12px;}
</style>"""


def _table(frame: Any, formatters: Mapping[str, Callable[[Any], str]] | None = None) -> str:
    # Numbers right-aligned: these tables are summaries per deployment (the row labels).
    return str(frame.to_html(classes="cmp-table cmp-numbers", border=0, na_rep="-",
                             formatters=dict(formatters or {}), escape=True))


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{html.escape(title)}</h2>{body}</section>'


def summary_section(results: Any) -> str:
    """The per-deployment summary, formatted as the CLI prints it, with the definitions."""
    from compare.cli.tables import STATUS_COUNTS, summary_legend, summary_view

    table, formatters = summary_view(results)
    legend = summary_legend(table.columns, [s for s in STATUS_COUNTS if s in table.columns])
    items = "".join(f"<li>{html.escape(line.strip())}</li>" for line in legend.splitlines())
    return _table(table, formatters) + f'<ul class="cmp-note">{items}</ul>'


def png_data_uri(fig: Any, dpi: int = 90) -> str:
    """A matplotlib figure as a `data:image/png;base64,...` URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def charts_section(results: Any) -> str:
    """Every chart of `compare.charts.CHARTS`, embedded."""
    return "".join(
        f'<figure><figcaption>{html.escape(title)}</figcaption>'
        f'<img alt="{html.escape(title)} chart" src="{png_data_uri(draw(results))}"></figure>'
        for title, draw in charts.CHARTS)


def failures_section(results: Any) -> str:
    """Rows that did not come back ok (content_filtered included, in its own colour); '' if
    none."""
    frame = results.frame
    bad = frame[frame["status"] != "ok"]
    if bad.empty:
        return ""
    shown = bad[["deployment", "prompt_id", "repeat", "status", "error_type",
                 "error_message"]].head(MAX_FAILURES)
    table = _colour_statuses(shown.to_html(classes="cmp-table", border=0, index=False,
                                           na_rep=""))
    more = (f'<p class="cmp-note">first {MAX_FAILURES} of {len(bad)} rows</p>'
            if len(bad) > MAX_FAILURES else "")
    return table + more


def _colour_statuses(table: str) -> str:
    for name, color in charts.STATUS_COLORS.items():
        table = table.replace(f"<td>{name}</td>",
                              f'<td><b style="color:{color}">{name}</b></td>')
    return table


def score_columns(results: Any) -> list[str]:
    """The run's `score_*` columns (from compare.scorers), in frame order."""
    return [c for c in results.frame.columns if str(c).startswith(SCORE_PREFIX)]


def scores_section(results: Any) -> str:
    """HOOK (scorers): per deployment, how many rows each score covers and its mean.

    '' when the run has no `score_*` column. Richer score views (per-prompt tables, judge
    rationales) belong here."""
    columns = score_columns(results)
    if not columns:
        return ""
    frame = results.frame
    scores = frame[columns].apply(lambda c: c.astype("float64"))
    grouped = scores.groupby(frame["deployment"].astype(str), sort=False)
    table = grouped.mean().add_suffix(" mean").join(grouped.count().add_suffix(" n"))
    table = table.reindex([d for d in results.deployments if d in table.index])
    table = table[[f"{c} {s}" for c in columns for s in ("mean", "n")]]
    return _table(table, {c: ("{:.3f}".format if c.endswith("mean") else "{:.0f}".format)
                          for c in table.columns})


def statistics_section(results: Any) -> str:
    """HOOK (stats): which deployment is better on each score, and how sure.

    '' when the run has no `score_*` column. One `compare.stats.leaderboard` per score: mean per
    deployment with its interval, prompts as clusters (repeats averaged within a prompt), rank 1
    the best. Pairwise comparisons (`compare.stats.compare`) belong here too."""
    columns = score_columns(results)
    if not columns:
        return ""
    from compare import stats

    parts = []
    for column in columns:
        board = stats.leaderboard(results.frame, column, order=results.deployments)
        level = board.attrs.get("level", 0.95)
        shown = {c: "{:.4g}".format for c in board.columns
                 if c not in ("interval", "note") and board[c].dtype.kind == "f"}
        parts.append(f"<h3>{html.escape(column)}</h3>"
                     f'<p class="cmp-note">mean per deployment with its {level:.0%} interval '
                     "(ci_low to ci_high) over prompts, repeats averaged within a prompt; rank "
                     "1 is the best</p>" + _table(board, shown))
    return "".join(parts)


def without_secrets(value: Any) -> Any:
    """`value` with every mapping entry whose key names a secret (api_key, token, ...) removed."""
    if isinstance(value, Mapping):
        return {k: without_secrets(v) for k, v in value.items()
                if not any(word in str(k).lower() for word in SECRET_WORDS)
                or str(k) == "api_key_env"}  # the variable's name, not its value
    if isinstance(value, list | tuple):
        return [without_secrets(v) for v in value]
    return value


def manifest_section(results: Any) -> str:
    """The run's manifest (config, deployments, package versions), secrets removed."""
    if not results.manifest:
        return '<p class="cmp-note">no manifest.json in this run</p>'
    text = json.dumps(without_secrets(results.manifest), indent=2, default=str, ensure_ascii=False)
    return f"<details><summary>manifest.json</summary><pre>{html.escape(text)}</pre></details>"


def _heading(results: Any, title: str | None) -> str:
    run = results.run_id or (results.path.name if results.path else "run")
    counts = results.frame["status"].value_counts()
    status = ", ".join(f"{s} {int(n)}" for s, n in counts.items())
    saved = results.manifest.get("saved_at") or results.manifest.get("finished_at") or ""
    return (f"<h1>{html.escape(title or f'compare report: {run}')}</h1>"
            f'<p class="cmp-note">{len(results)} rows ({html.escape(status)}); '
            f"deployments: {html.escape(', '.join(results.deployments))}"
            f"{'; saved ' + html.escape(str(saved)) if saved else ''}</p>")


def report_html(results: Any, title: str | None = None) -> str:
    """The whole report as one HTML document."""
    sections = [
        ("summary", "Summary", summary_section(results)),
        ("charts", "Charts", charts_section(results)),
        ("scores", "Scores", scores_section(results)),
        ("statistics", "Statistics", statistics_section(results)),
        ("outputs", "Outputs side by side", side_by_side_html(results)),
        ("failures", "Rows not ok", failures_section(results)),
        ("manifest", "Manifest", manifest_section(results)),
    ]
    present = [(a, t, b) for a, t, b in sections if b]
    nav = "".join(f'<a href="#{a}">{html.escape(t)}</a>' for a, t, _ in present)
    body = "".join(_section(a, t, b) for a, t, b in present)
    name = html.escape(title or f"compare report: {results.run_id or 'run'}")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{name}</title>'
            f"{STYLE}</head><body>{_heading(results, title)}<nav>{nav}</nav>{body}</body></html>")


def write_report(results: Any, path: str | os.PathLike[str], title: str | None = None) -> Path:
    """Write `report_html(results)` to `path` (UTF-8); the path written."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(report_html(results, title), encoding="utf-8")
    return target
