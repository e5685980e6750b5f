"""The engine's view of a tidy frame: plain per-row lists, the prompt of each row, and which rows
a scorer can score (and why not, for the others)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from compare.errors import ConfigError
from compare.prompts import Prompt, PromptSet
from compare.scorers.base import RowView, Scorer

REQUIRED_COLUMNS: Final = ("prompt_id", "deployment", "repeat", "status", "output")


def _texts(column: pd.Series) -> list[str | None]:
    return [v if isinstance(v, str) else None for v in column.tolist()]


class FrameRows:
    """Row-aligned lists taken once from the frame (pandas cells are slow to read one by one)."""

    def __init__(self, frame: pd.DataFrame, prompts: PromptSet | None) -> None:
        missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
        if missing:
            raise ConfigError(
                f"the frame to score lacks column(s) {', '.join(missing)}; it needs "
                f"{', '.join(REQUIRED_COLUMNS)} (a Results.frame has them)", field=missing[0],
            )
        self.n = len(frame)
        self.prompt_ids: list[str] = [str(v) for v in frame["prompt_id"].tolist()]
        self.deployments: list[str] = [str(v) for v in frame["deployment"].tolist()]
        self.repeats: list[int] = [int(v) for v in frame["repeat"].tolist()]
        self.statuses: list[str] = [v if isinstance(v, str) else "missing"
                                    for v in frame["status"].tolist()]
        raw_outputs = _texts(frame["output"])
        self.outputs: list[str] = [o if o is not None else "" for o in raw_outputs]
        self.prompt_by_id = self._prompt_map(prompts)
        self.prompts: list[Prompt | None] = [self.prompt_by_id.get(p) for p in self.prompt_ids]
        self.references: list[str | None] = [
            p.reference if p is not None else None for p in self.prompts
        ]
        self._subsets: dict[tuple[Any, ...], Subset] = {}

    def _prompt_map(self, prompts: PromptSet | None) -> dict[str, Prompt]:
        if prompts is None:
            return {}
        by_id = {p.id: p for p in prompts}
        unknown = sorted(set(self.prompt_ids) - set(by_id))
        if unknown:
            shown = ", ".join(repr(u) for u in unknown[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise ConfigError(
                f"the frame has prompt ids not in the prompt set: {shown}{more}; pass the prompt "
                "set the run used (Results.prompts or the file given to run)", field="prompts",
            )
        return by_id

    def view(self, i: int) -> RowView:
        return RowView(self.prompt_ids[i], self.deployments[i], self.repeats[i],
                       self.statuses[i], self.outputs[i])

    def subset(self, scorer: Scorer) -> Subset:
        """The rows `scorer` can score (and why not, for the others). Scorers that decide the
        same way (most need a reference, or not) share one computation."""
        key = (type(scorer).applies, scorer.needs_reference, scorer.tags)
        found = self._subsets.get(key)
        if found is None:
            found = self._subsets[key] = self._subset(scorer)
        return found

    def _subset(self, scorer: Scorer) -> Subset:
        by_status = {s: scorer.applies(None, s) if s != "ok" else None for s in set(self.statuses)}
        by_prompt: dict[str, str | None] = {
            pid: scorer.applies(self.prompt_by_id.get(pid), "ok") for pid in set(self.prompt_ids)
        }
        reasons = [by_status[s] or by_prompt[p]
                   for s, p in zip(self.statuses, self.prompt_ids, strict=True)]
        index = [i for i, why in enumerate(reasons) if why is None]
        return Subset(reasons, np.asarray(index, dtype="int64"), take(self.outputs, index),
                      take(self.references, index), take(self.prompts, index))


@dataclass(frozen=True)
class Subset:
    """Per row the reason it is not scored (None when it is); the scored rows' index, outputs,
    references and prompts."""

    reasons: list[str | None]
    index: np.ndarray
    outputs: list[str]
    references: list[str | None]
    prompts: list[Prompt | None]


def take(values: Sequence[Any], index: Sequence[int]) -> list[Any]:
    return [values[i] for i in index]
