"""A run as one self-contained HTML file (`compare report RUN`, or `write_report` from Python):
summary table, charts embedded as base64 PNG, the mean of each score, statistics (leaderboards,
the paired comparison against a baseline with its forest plot, quality against cost and
latency), outputs side by side, failures, and the manifest with anything secret-looking removed.
No scripts, no external files: it can be mailed or attached to a pull request.
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
    """Per deployment, the mean of each score and how many rows it covers, and what each score
    is (kind, judge, direction, from the manifest); '' when the run has no `score_*` column."""
    from compare.cli.tables import describe_score

    columns = score_columns(results)
    if not columns:
        return ""
    frame = results.frame
    scores = frame[columns].apply(lambda c: c.astype("float64"))
    grouped = scores.groupby(frame["deployment"].astype(str), sort=False)
    table = grouped.mean().add_suffix(" mean").join(grouped.count().add_suffix(" n"))
    table = table.reindex([d for d in results.deployments if d in table.index])
    table = table[[f"{c} {s}" for c in columns for s in ("mean", "n")]]
    legend = "".join(f"<li>{html.escape(c)}: {html.escape(describe_score(results, c))}</li>"
                     for c in columns)
    return _table(table, {c: ("{:.3f}".format if c.endswith("mean") else "{:.0f}".format)
                          for c in table.columns}) + f'<ul class="cmp-note">{legend}</ul>'


def _notes(lines: list[str]) -> str:
    items = "".join(f"<li>{html.escape(line.strip())}</li>" for line in lines
                    if line.strip() and not line.endswith(":"))
    return f'<ul class="cmp-note">{items}</ul>' if items else ""


def _figure(title: str, fig: Any) -> str:
    return (f'<figure><figcaption>{html.escape(title)}</figcaption>'
            f'<img alt="{html.escape(title)}" src="{png_data_uri(fig)}"></figure>')


def leaderboards_html(results: Any, columns: list[str]) -> str:
    """One compare.stats leaderboard per score: mean per deployment with its interval, prompts
    as clusters (repeats averaged within a prompt), rank 1 the best."""
    from compare.cli.stats_text import leaderboard_heading, leaderboard_view

    parts = []
    for column in columns:
        board = results.leaderboard(column)
        parts.append(f"<h3>{html.escape(column)}</h3>"
                     f'<p class="cmp-note">{html.escape(leaderboard_heading(board))}</p>'
                     + _table(leaderboard_view(board)))
    return "".join(parts)


def comparison_html(results: Any, baseline: str) -> str:
    """The paired comparison of every deployment against `baseline` (compare.stats.compare on
    the default metrics), its legend and notes, and its forest plot."""
    import warnings

    from compare.cli.stats_text import (
        comparison_legend,
        comparison_view,
        note_lines,
        omnibus_lines,
    )
    from compare.stats.plots import forest_plot

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the notes are shown instead
        table = results.compare(baseline=baseline)
    view = comparison_view(table)
    return (f"<h3>Paired comparison vs {html.escape(baseline)}</h3>"
            '<p class="cmp-note">b − a per prompt (repeats averaged within a prompt); '
            "significant after Holm over the whole table</p>"
            + view.to_html(classes="cmp-table", border=0, index=False, escape=True)
            + _notes([*comparison_legend(table), *omnibus_lines(table), *note_lines(table)])
            + _figure(f"Forest plot: every deployment vs {baseline}", forest_plot(table)))


def quality_charts_html(results: Any, columns: list[str]) -> str:
    """Each score against cost (when priced) and latency, with intervals both ways."""
    from compare.stats.plots import quality_vs_cost, quality_vs_latency

    ok = results.frame[results.frame["status"] == "ok"]
    parts = []
    for column in columns:
        if "cost" in ok.columns and ok["cost"].notna().any():
            parts.append(_figure(f"{column} vs cost", quality_vs_cost(results, column)))
        if ok["latency_s"].notna().any():
            parts.append(_figure(f"{column} vs latency", quality_vs_latency(results, column)))
    return "".join(parts)


def statistics_section(results: Any, baseline: str | None = None) -> str:
    """Which deployment is better, by how much, and how sure: leaderboards of the scores, the
    paired comparison against `baseline` (default: the first deployment) with its forest plot,
    and quality against cost and latency. '' when there is neither a score nor a second
    deployment to compare with."""
    from compare.errors import CompareError

    columns = score_columns(results)
    several = len(results.deployments) >= 2
    if not columns and not several:
        return ""
    parts = [leaderboards_html(results, columns)]
    if several:
        try:
            parts.append(comparison_html(results, baseline or results.deployments[0]))
        except CompareError as e:  # e.g. no metric with data in ok rows
            parts.append(f'<p class="cmp-note">no paired comparison: {html.escape(str(e))}</p>')
    parts.append(quality_charts_html(results, columns))
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


def report_html(results: Any, title: str | None = None, baseline: str | None = None) -> str:
    """The whole report as one HTML document; `baseline` is the deployment the others are
    compared with (default: the first)."""
    sections = [
        ("summary", "Summary", summary_section(results)),
        ("charts", "Charts", charts_section(results)),
        ("scores", "Scores", scores_section(results)),
        ("statistics", "Statistics", statistics_section(results, baseline)),
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


def write_report(results: Any, path: str | os.PathLike[str], title: str | None = None,
                 baseline: str | None = None) -> Path:
    """Write `report_html(results, title, baseline)` to `path` (UTF-8); the path written."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(report_html(results, title, baseline), encoding="utf-8")
    return target
