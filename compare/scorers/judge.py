"""Model-graded scorers: `judge` (pointwise: a 1–5 grade or PASS/FAIL, with the reason).

The judge is another deployment, reached only through the `ScoringContext` (the runner times,
retries, paces and checkpoints those calls). It runs at temperature 0 with a fixed seed. The
prompt template — with the rubric filled in — and its sha256 are exposed as `template` and
`template_sha256` for the run manifest; a changed rubric is a changed template, so a resumed
run re-asks the judge rather than reusing grades given under other instructions.

Placeholders in a template are `{question}`, `{answer}`, `{reference}` (and `{rubric}` before
the rubric is filled in). They are filled in one pass, so an answer containing "{reference}"
stays as written; other braces (a JSON example) are left alone.
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal

from compare.errors import CompareError, ConfigError
from compare.prompts import Prompt
from compare.scorers.base import RecordLike, Score, Scorer, call_key, nan_score
from compare.scorers.parsing import parse_grade, parse_pass_fail

Scale = Literal["1-5", "pass_fail"]
SCALES: Final = ("1-5", "pass_fail")
NO_REFERENCE: Final = "(no reference answer given)"
_PLACEHOLDER: Final = re.compile(r"\{(question|answer|reference)\}")

DEFAULT_RUBRIC: Final = (
    "Is the answer correct, complete and responsive to the question? When a reference answer "
    "is given, the answer must agree with it in substance (wording may differ)."
)

GRADE_TEMPLATE: Final = """You are grading an AI assistant's answer.

Rubric:
{rubric}

Question:
<<<
{question}
>>>

Reference answer:
<<<
{reference}
>>>

Answer to grade:
<<<
{answer}
>>>

Grade the answer from 1 (fails the rubric) to 5 (fully meets it). Give one or two sentences of
reasoning, then end with a line of the form "Grade: N" where N is 1, 2, 3, 4 or 5."""

PASS_FAIL_TEMPLATE: Final = """You are checking an AI assistant's answer.

Rubric:
{rubric}

Question:
<<<
{question}
>>>

Reference answer:
<<<
{reference}
>>>

Answer to check:
<<<
{answer}
>>>

Decide whether the answer meets the rubric. Give one or two sentences of reasoning, then end
with a line of the form "Verdict: PASS" or "Verdict: FAIL"."""


def fill(template: str, values: dict[str, str]) -> str:
    """Replace {question}/{answer}/{reference} in one pass (inserted text is never re-read)."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def with_rubric(template: str, rubric: str) -> str:
    if "{answer}" not in template:
        raise ConfigError("a judge template must contain {answer}", field="template")
    return template.replace("{rubric}", rubric)


class Judge(Scorer):
    """Grades each answer with a judge deployment.

    `scale="1-5"`: ordinal, value = the grade (higher is better). `scale="pass_fail"`: binary,
    value 1 for PASS. `answer` holds the parsed grade/verdict, `explanation` the judge's reply.
    A reply that cannot be read scores NaN and counts in `unparsed`; a failed call scores NaN
    and counts in `errors`.
    """

    model_based = True

    def __init__(
        self,
        deployment: str,
        *,
        rubric: str = DEFAULT_RUBRIC,
        scale: Scale = "1-5",
        template: str | None = None,
        name: str = "judge",
        threshold: float | None = None,
        max_tokens: int | None = 512,
        seed: int | None = 0,
        **kwargs: Any,
    ) -> None:
        if not isinstance(deployment, str) or not deployment:
            raise ConfigError("judge needs the name of the judge deployment", field="deployment")
        if scale not in SCALES:
            raise ConfigError(f"judge scale must be one of {', '.join(SCALES)}, got {scale!r}",
                              field="scale")
        self.judge = deployment
        self.scale = scale
        self.rubric = rubric
        self.kind = "ordinal" if scale == "1-5" else "binary"
        base = template or (GRADE_TEMPLATE if scale == "1-5" else PASS_FAIL_TEMPLATE)
        self.template = with_rubric(base, rubric)
        self.max_tokens = max_tokens
        self.seed = seed
        super().__init__(name=name, threshold=threshold, **kwargs)

    def messages(self, prompt: Prompt | None, output: str) -> list[dict[str, Any]]:
        """The chat messages sent to the judge for one answer."""
        reference = prompt.reference if prompt is not None else None
        text = fill(self.template or "", {
            "question": prompt.text if prompt is not None else "",
            "answer": output,
            "reference": reference if reference is not None else NO_REFERENCE,
        })
        return [{"role": "user", "content": text}]

    def key(self, record: RecordLike) -> str:
        return call_key(self.name, (self.template_sha256 or "")[:16], record.prompt_id,
                        record.deployment, record.repeat, "pointwise")

    async def score(self, prompt: Prompt | None, record: RecordLike, ctx: Any) -> Score:
        why = self.applies(prompt, record.status)
        if why is not None:
            return nan_score(why)
        try:
            reply = await ctx.chat(
                self.judge, self.messages(prompt, record.output or ""), call_key=self.key(record),
                temperature=0.0, seed=self.seed, max_tokens=self.max_tokens,
            )
        except CompareError as e:
            self.errors += 1
            return nan_score(f"judge call failed: {e}")
        if reply.text is None or reply.status != "ok":
            self.errors += 1
            return nan_score(f"judge call failed ({reply.status}): {reply.error or 'no reply'}")
        return self.read(reply.text)

    def read(self, text: str) -> Score:
        """A judge reply as a Score (NaN and counted as unparsed when it says no grade)."""
        if self.scale == "1-5":
            grade = parse_grade(text)
            if grade is None:
                self.unparsed += 1
                return nan_score(text)
            return self.with_passed(Score(float(grade), answer=str(grade), explanation=text))
        verdict = parse_pass_fail(text)
        if verdict is None:
            self.unparsed += 1
            return nan_score(text)
        return Score(float(verdict), verdict, "PASS" if verdict else "FAIL", text)
