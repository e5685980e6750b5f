"""The statistics tables as people read them (`compare stats`, `compare diff`, the HTML report):
intervals as "est [low, high]", p-values to 4 places, and the legend that says what the columns
mean, which test each row used and what the omnibus test found.

Machine formats (csv, json) take the full tables from compare.stats instead.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import pandas as pd

# Test labels compare.stats writes in the `test` column, and what each does. Matched by prefix
# ("paired t (no log: values ≤ 0)" is a paired t).
TESTS: Final = {
    "McNemar exact": "binary score, one repeat per prompt: exact binomial test on the prompts "
                     "only one of the two passed (interval: Newcombe's hybrid score interval "
                     "for the paired difference)",
    "Wilcoxon signed-rank": "ordinal score (e.g. judge grades): Wilcoxon signed-rank test on "
                            "per-prompt differences (interval: paired t)",
    "log-ratio t": "latency, time or cost: paired t-test on log(b) − log(a) of per-prompt "
                   "medians; ratio b/a with its interval; diff in the metric's own units",
    "paired t": "paired t-test on per-prompt values (repeats averaged within a prompt)",
    "bootstrap BCa": "seeded BCa bootstrap of the mean per-prompt difference (of the log for "
                     "latency-like metrics), 4999 resamples",
    "permutation": "paired sign-flip permutation test of the mean difference, 4999 resamples "
                   "(interval: paired t)",
}
OLD, NEW = "old", "new"


def number(value: Any) -> str:
    """4 significant digits; '' for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{float(value):.4g}"


def p_text(value: Any) -> str:
    """A p-value to 4 places ('<0.0001' below that); '' when there is none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return "<0.0001" if value < 0.0001 else f"{float(value):.4f}"


def with_interval(estimate: Any, low: Any, high: Any, unit: str = "") -> str:
    """'est [low, high]' ('est' alone when there is no interval; '' when no estimate)."""
    if not number(estimate):
        return ""
    if not number(low) or not number(high):
        return f"{number(estimate)}{unit}"
    return f"{number(estimate)}{unit} [{number(low)}{unit}, {number(high)}{unit}]"


def n_rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def level_of(table: pd.DataFrame) -> float:
    return 1 - float(table.attrs.get("alpha", 0.05))


def is_run_diff(table: pd.DataFrame) -> bool:
    """True for `compare.diff` tables (a = old run, b = new run, per deployment)."""
    return "deployment" in table.columns and set(table["a"]) == {OLD}


def _group_column(table: pd.DataFrame) -> str | None:
    by = table.attrs.get("by")
    if not by or by == "_run_deployment":
        return None
    column = "tag" if by == "tag" else str(by)
    return column if column in table.columns else None


def comparison_view(table: pd.DataFrame) -> pd.DataFrame:
    """The comparison table with the columns a reader needs, intervals folded in."""
    import pandas as pd

    level = f"{level_of(table):.0%}"
    group = _group_column(table)
    if is_run_diff(table):
        lead = {"deployment": table["deployment"], "metric": table["metric"]}
        names = (OLD, NEW)
    else:
        lead = {"a": table["a"], "b": table["b"], "metric": table["metric"]}
        names = ("mean_a", "mean_b")
    view = pd.DataFrame(lead)
    if group is not None:
        view[group] = table[group]
    view["test"] = table["test"]
    view["n"] = table["n_pairs"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    view[names[0]] = table["mean_a"].map(number)
    view[names[1]] = table["mean_b"].map(number)
    view[f"diff [{level} CI]"] = [with_interval(d, lo, hi) for d, lo, hi in
                                  zip(table["diff"], table["ci_low"], table["ci_high"],
                                      strict=True)]
    if "ratio" in table.columns and table["ratio"].notna().any():
        view[f"ratio [{level} CI]"] = [
            with_interval(r, lo, hi, "×") for r, lo, hi in
            zip(table["ratio"], table["ratio_ci_low"], table["ratio_ci_high"], strict=True)]
    view["p_adj"] = table["p_adj"].map(p_text)
    view["significant"] = table["significant"].map(lambda v: "yes" if bool(v) else "no")
    if "verdict" in table.columns:
        view["verdict"] = table["verdict"].fillna("")
    view["W/L/T"] = [f"{w}/{lo}/{t}" for w, lo, t in
                     zip(table["wins"], table["losses"], table["ties"], strict=True)]
    return view


def test_name(label: str) -> str:
    """The TESTS key a `test` label belongs to ('' when it is none of them)."""
    return next((name for name in TESTS if str(label).startswith(name)), "")


def comparison_legend(table: pd.DataFrame) -> list[str]:
    """What the columns mean, and which test each row used."""
    level = f"{level_of(table):.0%}"
    alpha = float(table.attrs.get("alpha", 0.05))
    if is_run_diff(table):
        a, b = "the old run", "the new run"
        lines = [f"  old, new: mean over prompts in each run (rows paired by prompt and "
                 f"deployment name); diff: new − old with its {level} interval (unadjusted)"]
    else:
        a, b = "a", "b"
        lines = [f"  a, b: the deployments compared; diff: mean over prompts of b − a with its "
                 f"{level} interval (unadjusted)"]
    if "ratio" in table.columns and table["ratio"].notna().any():
        lines.append(f"  ratio: {b} / {a} for latency-like metrics (geometric mean of "
                     "per-prompt ratios), with its interval")
    lines.append(f"  n: prompts both answered ok (repeats averaged within a prompt); p_adj: "
                 f"p-value after Holm's adjustment over the {n_rows(len(table))}; significant: "
                 f"p_adj < {alpha:g}")
    if "verdict" in table.columns:
        margin = table.attrs.get("margin")
        inside = (f"equivalent: the interval lies inside ±{margin:g}" if margin is not None
                  else "equivalent needs a margin")
        lines.append(f"  verdict: better / worse when significant ({b} against {a}, by each "
                     f"metric's direction); {inside}; too_few: fewer prompts than the test "
                     "needs to ever be significant; else inconclusive")
    lines.append(f"  W/L/T: prompts where {b} is better / worse / equal, by each metric's "
                 "direction (scores and decode_tps: higher is better; times and cost: lower)")
    used: dict[str, dict[str, None]] = {}
    for label, metric in zip(table["test"], table["metric"], strict=True):
        used.setdefault(test_name(label) or str(label), {})[str(metric)] = None
    lines.append("tests:")
    for name, metrics in used.items():
        lines.append(f"  {name} ({', '.join(metrics)}): {TESTS.get(name, 'see compare.stats')}")
    return lines


def omnibus_lines(table: pd.DataFrame) -> list[str]:
    """The omnibus tests (three or more deployments), one line each."""
    tests = table.attrs.get("omnibus") or []
    if not tests:
        return []
    alpha = float(table.attrs.get("alpha", 0.05))
    names = tests[0]["deployments"]
    lines = [f"omnibus test over the {len(names)} deployments ({', '.join(names)}), before the "
             "pairs, on the prompts all of them answered:"]
    for t in tests:
        group = f" [{t['group']}]" if t.get("group") is not None else ""
        head = f"  {t['metric']}{group}: {t['test']}"
        if t.get("note"):
            n = t["n_prompts"]
            lines.append(f"{head}: not tested ({t['note']}; {n} prompt{'s' if n != 1 else ''})")
            continue
        verdict = ("at least one deployment differs" if t["p_value"] < alpha else
                   "no evidence that any deployment differs: read the pairs with care")
        lines.append(f"{head} = {number(t['statistic'])}, p = {p_text(t['p_value'])} on "
                     f"{t['n_prompts']} prompts: {verdict}")
    return lines


def note_lines(table: pd.DataFrame) -> list[str]:
    """Why rows have no p-value or left prompts out (the note and dropped columns), one line
    per distinct reason with the rows it applies to."""
    reasons: dict[str, dict[str, list[str]]] = {}
    group = _group_column(table)
    for row in table.to_dict(orient="records"):
        who = str(row["deployment"]) if is_run_diff(table) else f"{row['a']} vs {row['b']}"
        metric = str(row["metric"]) + (f" [{row[group]}]" if group is not None else "")
        texts = [str(row["note"])] if isinstance(row.get("note"), str) and row["note"] else []
        if isinstance(row.get("dropped"), str) and row["dropped"]:
            texts.append(f"left out: {row['dropped']}")
        for text in texts:
            reasons.setdefault(text, {}).setdefault(who, []).append(metric)
    lines = [f"  {text}: " + "; ".join(f"{who} on {', '.join(metrics)}"
                                       for who, metrics in rows.items())
             for text, rows in reasons.items()]
    return ["notes:", *lines] if lines else []


def leaderboard_view(board: pd.DataFrame) -> pd.DataFrame:
    """A leaderboard with its interval folded in and the notes kept when there are any."""
    import pandas as pd

    level = f"{float(board.attrs.get('level', 0.95)):.0%}"
    view = pd.DataFrame(index=board.index)
    view["n_prompts"] = board["n_prompts"].astype(int)
    view[f"mean [{level} CI]"] = [with_interval(m, lo, hi) for m, lo, hi in
                                  zip(board["mean"], board["ci_low"], board["ci_high"],
                                      strict=True)]
    view["rank"] = board["rank"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    if board["note"].fillna("").astype(str).str.len().gt(0).any():
        view["note"] = board["note"].fillna("")
    return view


def leaderboard_heading(board: pd.DataFrame) -> str:
    """'leaderboard: score_exact (binary; higher is better; ...)'."""
    kind = board.attrs.get("kind", "")
    direction = "higher" if board.attrs.get("higher_is_better", True) else "lower"
    intervals = sorted({str(i) for i in board["interval"] if isinstance(i, str) and i})
    how = ("mean over prompts of per-prompt medians of timed rows" if kind == "latency"
           else "mean over prompts, repeats averaged within a prompt")
    interval = f"; {' or '.join(intervals)} interval" if intervals else ""
    return (f"leaderboard: {board.attrs.get('metric', '')} ({kind}; {direction} is better; "
            f"{how}{interval}; rank 1 is best)")


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows (NaN → null, numpy scalars → Python)."""
    import json

    return list(json.loads(frame.to_json(orient="records", double_precision=10)))


def render(view: pd.DataFrame, fmt: str, *, index: bool = False) -> str:
    """A readable view as an aligned text table or a markdown table."""
    import pandas as pd

    from compare.stats import format_table

    if fmt == "markdown":
        return format_table(view.reset_index() if index else view, "markdown").rstrip("\n")
    with pd.option_context("display.width", 250, "display.max_columns", 40,
                           "display.max_colwidth", 200):
        return view.to_string(index=index)
