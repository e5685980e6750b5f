"""`pairwise`: a judge deployment compares two deployments' answers to the same prompt.

Judges favour the answer shown first (position bias), so each pair is judged twice, with a
shown first and with b shown first. A win counts only when both orders agree; any disagreement
is a tie. When either order's reply cannot be read the pair has no winner (None) and is left
out of the per-record score.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Literal

from compare.errors import CompareError, ConfigError
from compare.prompts import Prompt
from compare.scorers.base import RecordLike, Score, Scorer, call_key
from compare.scorers.judge import NO_REFERENCE
from compare.scorers.parsing import Verdict, parse_pairwise

Winner = Literal["a", "b", "tie"]

DEFAULT_PAIRWISE_RUBRIC: Final = (
    "Which response answers the question better: more correct, more complete, more helpful? "
    "Length alone is not a merit."
)

PAIRWISE_TEMPLATE: Final = """You are comparing two AI assistants' responses to the same question.

Criteria:
{rubric}

Question:
<<<
{question}
>>>

Reference answer:
<<<
{reference}
>>>

Response A:
<<<
{first}
>>>

Response B:
<<<
{second}
>>>

Compare them in one or two sentences, then end with a line of the form "Winner: A",
"Winner: B" or "Winner: tie"."""

_PLACEHOLDER: Final = re.compile(r"\{(question|reference|first|second)\}")
PAIRS_COLUMNS: Final = (
    "prompt_id", "repeat", "a", "b", "winner", "verdict_ab", "verdict_ba", "judge", "explanation",
)


@dataclass(frozen=True, slots=True)
class PairVerdict:
    """The outcome of comparing record a with record b.

    `verdict_ab` is the judge's verdict with a shown first, `verdict_ba` with b shown first
    ("first" / "second" / "tie", None when unreadable or not asked).
    """

    winner: Winner | None
    verdict_ab: Verdict | None
    verdict_ba: Verdict | None
    explanation: str | None = None


def combine(verdict_ab: Verdict | None, verdict_ba: Verdict | None) -> Winner | None:
    """The winner from both orders: a win only when both agree, else a tie; None if unread."""
    if verdict_ab is None or verdict_ba is None:
        return None
    from_ab = {"first": "a", "second": "b", "tie": "tie"}[verdict_ab]
    from_ba = {"first": "b", "second": "a", "tie": "tie"}[verdict_ba]
    return from_ab if from_ab == from_ba else "tie"  # type: ignore[return-value]


def _fill(template: str, values: dict[str, str]) -> str:
    """Fill placeholders in one pass (an answer containing "{second}" stays as written)."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


class PairwiseScorer(Scorer):
    """Compares deployments two at a time with a judge deployment.

    The engine runs `compare` over every pair of deployments for each (prompt, repeat), builds
    the `pairs` frame, and scores each record `score_<name>` = the mean over the other
    deployments of win 1 / tie 0.5 / loss 0 (pairs without a winner left out).
    """

    kind = "continuous"
    model_based = True

    def __init__(
        self,
        deployment: str,
        *,
        rubric: str = DEFAULT_PAIRWISE_RUBRIC,
        template: str | None = None,
        name: str = "pairwise",
        max_tokens: int | None = 512,
        seed: int | None = 0,
        **kwargs: Any,
    ) -> None:
        if not isinstance(deployment, str) or not deployment:
            raise ConfigError("pairwise needs the name of the judge deployment",
                              field="deployment")
        base = template or PAIRWISE_TEMPLATE
        if "{first}" not in base or "{second}" not in base:
            raise ConfigError("a pairwise template must contain {first} and {second}",
                              field="template")
        self.judge = deployment
        self.rubric = rubric
        self.template = base.replace("{rubric}", rubric)
        self.max_tokens = max_tokens
        self.seed = seed
        super().__init__(name=name, **kwargs)

    def messages(self, prompt: Prompt | None, first: str, second: str) -> list[dict[str, Any]]:
        reference = prompt.reference if prompt is not None else None
        text = _fill(self.template or "", {
            "question": prompt.text if prompt is not None else "",
            "reference": reference if reference is not None else NO_REFERENCE,
            "first": first,
            "second": second,
        })
        return [{"role": "user", "content": text}]

    async def _ask(
        self, ctx: Any, prompt: Prompt | None, first: RecordLike, second: RecordLike,
        order: str,
    ) -> tuple[Verdict | None, str]:
        key = call_key(self.name, (self.template_sha256 or "")[:16], first.prompt_id,
                       first.deployment, second.deployment, first.repeat, order)
        try:
            reply = await ctx.chat(
                self.judge, self.messages(prompt, first.output or "", second.output or ""),
                call_key=key, temperature=0.0, seed=self.seed, max_tokens=self.max_tokens,
            )
        except CompareError as e:
            self.errors += 1
            return None, f"judge call failed: {e}"
        if reply.text is None or reply.status != "ok":
            self.errors += 1
            return None, f"judge call failed ({reply.status}): {reply.error or 'no reply'}"
        verdict = parse_pairwise(reply.text)
        if verdict is None:
            self.unparsed += 1
        return verdict, reply.text

    async def compare(
        self, prompt: Prompt | None, record_a: RecordLike, record_b: RecordLike, ctx: Any
    ) -> PairVerdict:
        """Judge a against b in both orders. Never raises for a failed row or a bad reply."""
        for label, record in (("a", record_a), ("b", record_b)):
            why = self.applies(prompt, record.status)
            if why is not None:
                return PairVerdict(None, None, None, f"{label} ({record.deployment}) {why}")
        verdict_ab, text_ab = await self._ask(ctx, prompt, record_a, record_b, "ab")
        verdict_ba, text_ba = await self._ask(ctx, prompt, record_b, record_a, "ba")
        explanation = f"[a first] {text_ab}\n[b first] {text_ba}"
        return PairVerdict(combine(verdict_ab, verdict_ba), verdict_ab, verdict_ba, explanation)

    async def score(self, prompt: Prompt | None, record: RecordLike, ctx: Any) -> Score:
        raise CompareError(
            f"{self.name} compares two records: the engine calls compare(prompt, a, b, ctx)"
        )
