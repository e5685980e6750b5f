"""Statistics for comparing deployments: which is better, by how much, and how sure.

    from compare import stats
    stats.leaderboard(results.frame, "score_exact")
    stats.compare(results.frame, baseline="gpt-4o")
    stats.diff(old_results, new_results)

Every statistic treats a prompt as a cluster (repeats averaged within it) and compares
deployments on paired per-prompt values (Miller, "Adding Error Bars to Evals", 2024,
arXiv 2411.00640). The same functions are `Results` methods. Names load on first use, so
importing `compare.results` does not pull in scipy and statsmodels.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "MetricInfo",
    "PowerResult",
    "bradley_terry",
    "compare",
    "diff",
    "format_table",
    "leaderboard",
    "metric_info",
    "position_bias",
    "power",
    "significantly_worse",
    "worse_rows",
]

_LAZY: dict[str, str] = {
    "MetricInfo": "compare.stats.metrics",
    "metric_info": "compare.stats.metrics",
    "compare": "compare.stats.comparison",
    "leaderboard": "compare.stats.ranking",
    "power": "compare.stats.sample_size",
    "PowerResult": "compare.stats.sample_size",
    "bradley_terry": "compare.stats.preferences",
    "position_bias": "compare.stats.preferences",
    "diff": "compare.stats.rundiff",
    "significantly_worse": "compare.stats.rundiff",
    "worse_rows": "compare.stats.rundiff",
    "format_table": "compare.stats.formatting",
}

if TYPE_CHECKING:
    from compare.stats.comparison import compare
    from compare.stats.formatting import format_table
    from compare.stats.metrics import MetricInfo, metric_info
    from compare.stats.preferences import bradley_terry, position_bias
    from compare.stats.ranking import leaderboard
    from compare.stats.rundiff import diff, significantly_worse, worse_rows
    from compare.stats.sample_size import PowerResult, power


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'compare.stats' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
