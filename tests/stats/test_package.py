"""`compare.stats` names are the functions, whichever submodule was imported first."""

from __future__ import annotations

import subprocess
import sys

import compare.stats as stats


def test_public_names_are_functions_even_after_submodule_imports() -> None:
    # Importing a submodule binds its name on the package: no submodule may share a name with
    # a function, or `stats.<name>` would become the module.
    import compare.stats.plots  # noqa: F401  (imports ranking, comparison, …)

    for name in stats.__all__:
        value = getattr(stats, name)
        assert callable(value) and not isinstance(value, type(stats)), name
    assert sorted(stats.__all__) == sorted(set(stats.__all__) & set(dir(stats)))


def test_importing_the_package_is_light() -> None:
    code = ("import sys, compare.stats; "
            "print([m for m in ('scipy', 'statsmodels', 'matplotlib') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
