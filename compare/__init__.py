"""compare: fan one prompt set out to several LLM deployments and compare the answers.

    import compare
    with compare.local_endpoint() as ep:
        results = compare.run(["Say hi"], ep, repeats=3)
    results.summary()

Everything is imported on first use, so `import compare` stays light (no pandas, SDKs or server).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from compare import errors

__version__ = "0.1.0"

__all__ = [
    "Deployment",
    "PromptSet",
    "Results",
    "arun",
    "demo_prompts",
    "errors",
    "load_deployments",
    "load_prompts",
    "local_deployments",
    "local_endpoint",
    "run",
]

_LAZY: dict[str, str] = {
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
}

if TYPE_CHECKING:
    from compare.deployments import Deployment
    from compare.deployments_file import load_deployments, local_deployments
    from compare.prompts import PromptSet, demo_prompts, load_prompts
    from compare.results import Results
    from compare.runner import arun, run
    from compare.server.local import local_endpoint


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'compare' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
