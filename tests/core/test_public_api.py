"""The small public API: names in __all__ resolve, and `import compare` stays light."""

from __future__ import annotations

import subprocess
import sys

import compare


def test_all_names_resolve() -> None:
    assert sorted(compare.__all__) == sorted([
        "run", "arun", "Results", "Deployment", "load_deployments", "PromptSet", "load_prompts",
        "local_endpoint", "errors", "local_deployments", "demo_prompts", "score", "scorer",
        "scorers", "stats", "diff", "Backoff", "Record"])
    from compare.deployments import Deployment
    from compare.deployments_file import load_deployments, local_deployments
    from compare.prompts import PromptSet, demo_prompts, load_prompts
    from compare.results import Results
    from compare.runner import arun, run
    from compare.server.local import local_endpoint

    assert compare.run is run and compare.arun is arun and compare.Results is Results
    assert compare.Deployment is Deployment and compare.load_deployments is load_deployments
    assert compare.PromptSet is PromptSet and compare.load_prompts is load_prompts
    assert compare.local_endpoint is local_endpoint
    assert compare.local_deployments is local_deployments
    assert compare.demo_prompts is demo_prompts
    from compare import scorers, stats
    from compare.scoring import score

    assert compare.scorer is scorers.scorer and compare.score is score
    assert compare.diff is stats.diff and compare.scorers is scorers and compare.stats is stats
    assert issubclass(compare.errors.AuthenticationError, compare.errors.EndpointError)
    assert set(compare.__all__) <= set(dir(compare))


def test_import_is_light() -> None:
    code = ("import sys, compare; heavy = [m for m in ('pandas', 'numpy', 'aiohttp', 'openai', "
            "'azure', 'matplotlib', 'compare.server') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_attribute() -> None:
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        compare.nope  # noqa: B018
