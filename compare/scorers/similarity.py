"""`similarity`: cosine similarity of the embeddings of output and reference.

The embeddings come from an embedding deployment through the `ScoringContext` (one call per
row, both texts in it, so a resumed run re-sends only unfinished rows). The value is in
[-1, 1]; what counts as "similar" depends on the embedding model, so there is no default
threshold.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from compare.errors import CompareError, ConfigError
from compare.prompts import Prompt
from compare.scorers.base import RecordLike, Score, Scorer, call_key, nan_score


def cosine(u: Any, v: Any) -> float:
    """Cosine similarity of two vectors; NaN when either is all zeros."""
    a = np.asarray(u, dtype="float64")
    b = np.asarray(v, dtype="float64")
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    if norm == 0.0:
        return float("nan")
    return float(np.dot(a, b) / norm)


class Similarity(Scorer):
    """Cosine of embed(output) and embed(reference) from the `embed` deployment."""

    kind = "continuous"
    needs_reference = True
    model_based = True

    def __init__(self, embed: str, *, name: str = "similarity", **kwargs: Any) -> None:
        if not isinstance(embed, str) or not embed:
            raise ConfigError("similarity needs the name of an embedding deployment",
                              field="embed")
        self.embed = embed
        super().__init__(name=name, **kwargs)

    async def score(self, prompt: Prompt | None, record: RecordLike, ctx: Any) -> Score:
        why = self.applies(prompt, record.status)
        if why is not None or prompt is None or prompt.reference is None:
            return nan_score(why)
        key = call_key(self.name, self.embed, record.prompt_id, record.deployment,
                       record.repeat, "embed")
        try:
            vectors = await ctx.embed(self.embed, [record.output or "", prompt.reference],
                                      call_key=key)
        except CompareError as e:
            self.errors += 1
            return nan_score(f"embedding call failed: {e}")
        if len(vectors) != 2 or len(vectors[0]) != len(vectors[1]) or not len(vectors[0]):
            self.errors += 1
            shapes = [len(v) for v in vectors]
            return nan_score(f"embedding call returned vectors of sizes {shapes}, expected 2 "
                             "of the same size")
        value = cosine(vectors[0], vectors[1])
        return self.with_passed(Score(value, explanation=None if value == value else
                                      "an embedding is all zeros"))
