"""environment.yml lists the same dependencies as pyproject.toml (incl. extras), each at the same
minimum, and the installed versions satisfy them. No conda can run here, so this is the check."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[2]


def _name(raw: str) -> str:
    return re.sub(r"[-_.]+", "-", raw).lower()


def _pyproject() -> dict[str, SpecifierSet]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = data["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    out: dict[str, SpecifierSet] = {}
    for raw in reqs:
        r = Requirement(raw)
        out[_name(r.name)] = r.specifier
    return out


def _environment() -> tuple[dict, dict[str, SpecifierSet], list[str]]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda: list[str] = []
    pip: list[str] = []
    for item in env["dependencies"]:
        if isinstance(item, dict):
            assert set(item) == {"pip"}, f"unexpected mapping in dependencies: {item}"
            pip += item["pip"]
        else:
            conda.append(item)
    specs: dict[str, SpecifierSet] = {}
    for raw in conda + [p for p in pip if not p.startswith("-e")]:
        r = Requirement(raw)
        name = _name(r.name)
        assert name not in specs, f"{name} listed twice in environment.yml"
        specs[name] = r.specifier
    return env, specs, pip


def test_channel_python_and_project_install() -> None:
    env, specs, pip = _environment()
    assert env["channels"] == ["conda-forge"]
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert specs.pop("python") == SpecifierSet(requires)
    assert "pip" in specs
    assert "-e ." in pip  # the project itself, with its console script


def test_same_packages_and_minimums_as_pyproject() -> None:
    _, specs, _ = _environment()
    specs.pop("python")
    specs.pop("pip")
    wanted = _pyproject()
    assert sorted(specs) == sorted(wanted), (
        f"only in environment.yml: {sorted(set(specs) - set(wanted))}; "
        f"only in pyproject: {sorted(set(wanted) - set(specs))}"
    )
    for name, spec in wanted.items():
        assert specs[name] == spec, f"{name}: environment.yml {specs[name]} vs pyproject {spec}"


@pytest.mark.parametrize("name", sorted(_pyproject()))
def test_installed_versions_satisfy_the_environment(name: str) -> None:
    _, specs, _ = _environment()
    try:
        installed = metadata.version(name)
    except metadata.PackageNotFoundError:
        pytest.fail(f"{name} from environment.yml is not installed in this venv")
    assert specs[name].contains(installed, prereleases=True), f"{name} {installed} vs {specs[name]}"
