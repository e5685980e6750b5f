"""The explorer: an ipywidgets front end over runner, results and charts.

Thin by design: `widget` (the `Explorer` class: what the buttons do), `layout` (its widgets and
their arrangement), `saved` (export, open a saved run), `compare_tab` (leaderboard, paired
comparisons and forest plot for a picked metric, ranking by human votes), `rate_tab` (blind A/B
votes into the run directory's ratings.jsonl), `kernel` (one background task on the kernel's
loop, startable from any thread), `html` (side-by-side table, counters and records frame as HTML
strings, importable without ipywidgets). A run is an asyncio task in the kernel's own event
loop, so the notebook stays responsive while it runs, and Stop cancels that task (finished
records are kept).

Notebooks and tests drive it without a browser::

    explorer = Explorer(endpoint=ep)
    explorer.select(["sim-fast", "smollm2-precise"])
    explorer.run_clicked()
    results = await explorer.wait()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["Explorer", "side_by_side_html"]

# Loaded on first use: `compare.explorer.html` must import without ipywidgets (compare report).
_LAZY = {"Explorer": "compare.explorer.widget", "side_by_side_html": "compare.explorer.html"}

if TYPE_CHECKING:
    from compare.explorer.html import side_by_side_html
    from compare.explorer.widget import Explorer


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'compare.explorer' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
