"""Probes: each deployment's first request goes alone, and what it shows.

A deployment that cannot be used at all (refused key, no such deployment, no HTTP answer) is
stopped before fanning out: its other rows are not sent (they say why). A run failing fast (the
CLI) raises DeploymentUnusableError once every deployment's first result is in, so that the error
names each unusable one; otherwise a warning says which deployment was dropped.
"""

from __future__ import annotations

import asyncio
import warnings
from typing import TYPE_CHECKING, Final

from compare.errors import CompareError, DeploymentUnusableError
from compare.records import Record

if TYPE_CHECKING:
    from compare.runner.attempt import DeploymentRun

# A deployment whose first request ended with one of these cannot be used at all.
UNUSABLE_ERRORS: Final = frozenset({"AuthenticationError", "CredentialError",
                                    "DeploymentNotFoundError", "TransportError"})


class DeploymentStopped(CompareError):
    """Why a deployment's remaining rows are not sent: its first request's error."""

    def __init__(self, first: Record) -> None:
        super().__init__(first.error_message or "")
        self.error_type = str(first.error_type)
        self.http_status = first.http_status


class Probes:
    """Each deployment's first result, and what it showed: a deployment that cannot be used at
    all is stopped, and a run failing fast raises once every deployment's first result is in
    (so that the error names each unusable one)."""

    def __init__(self, fail_fast: bool) -> None:
        self.fail_fast = fail_fast
        self.first: dict[str, Record] = {}  # each deployment's first finished record
        self.problems: dict[str, str] = {}  # deployments found unusable, and why
        self._left = 0
        self._all_in = asyncio.Event()

    def start(self, deployments: int) -> None:
        self._left = deployments
        self._all_in = asyncio.Event()

    async def probed(self, run: DeploymentRun) -> None:
        """The deployment's first result is in."""
        problem = self._unusable(run)
        self._left -= 1
        if self._left == 0:
            self._all_in.set()
        if problem is not None and self.fail_fast:
            await self._all_in.wait()
            raise DeploymentUnusableError(self.problems)

    def _unusable(self, run: DeploymentRun) -> str | None:
        """Stop the deployment when its first record shows it cannot be used; say why."""
        first = self.first.get(run.dep.name)
        if first is None or first.error_type not in UNUSABLE_ERRORS:
            return None
        run.abort = run.abort or DeploymentStopped(first)
        problem = f"{first.error_type}: {first.error_message}"
        self.problems[run.dep.name] = problem
        if not self.fail_fast:
            warnings.warn(f"deployment {run.dep.name!r} cannot be used, its other rows are not "
                          f"sent: {problem}", RuntimeWarning, stacklevel=2)
        return problem
