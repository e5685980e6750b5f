"""compare: fan one prompt set out to several LLM deployments and compare the answers.

    import compare
    with compare.local_endpoint() as ep:
        results = compare.run(compare.scorers.eval_set(), ep, scorers=["exact", "numeric"])
    results.summary()                          # speed, tokens, cost, mean score per deployment
    results.compare(metrics=["score_exact"])   # which is better, by how much, how sure

Everything is imported on first use, so `import compare` stays light (no pandas, SDKs or server).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from compare import errors

__version__ = "0.1.0"

__all__ = [
    "Backoff",
    "Deployment",
    "PromptSet",
    "Record",
    "Results",
    "arun",
    "demo_prompts",
    "diff",
    "errors",
    "load_deployments",
    "load_prompts",
    "local_deployments",
    "local_endpoint",
    "run",
    "score",
    "scorer",
    "scorers",
    "stats",
]

_LAZY: dict[str, str] = {
    "Backoff": "compare.runner",
    "Record": "compare.records",
    "run": "compare.runner",
    "arun": "compare.runner",
    "Results": "compare.results",
    "Deployment": "compare.deployments",
    "load_deployments": "compare.deployments_file",
    "PromptSet": "compare.prompts",
    "load_prompts": "compare.prompts",
    "demo_prompts": "compare.prompts",
    "local_deployments": "compare.deployments_file",
    "local_endpoint": "compare.server.local",
    "score": "compare.scoring",
    "scorer": "compare.scorers",
    "diff": "compare.stats",
    # Submodules: `compare.scorers.exact()`, `compare.stats.leaderboard(...)` without an import.
    "scorers": "compare.scorers",
    "stats": "compare.stats",
}
_MODULES = frozenset({"scorers", "stats"})

if TYPE_CHECKING:
    from compare.deployments import Deployment
    from compare.deployments_file import load_deployments, local_deployments
    from compare.prompts import PromptSet, demo_prompts, load_prompts
    from compare.records import Record
    from compare.results import Results
    from compare.runner import Backoff, arun, run
    from compare.scorers import scorer
    from compare.scoring import score
    from compare.server.local import local_endpoint
    from compare.stats import diff


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'compare' has no attribute {name!r}")
    imported = importlib.import_module(module)
    value = imported if name in _MODULES else getattr(imported, name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
