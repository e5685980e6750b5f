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
from compare.scorers.base import JudgeReply, RecordLike, Score, Scorer, call_key, nan_score
from compare.scorers.judge_output import (
    TOP_LOGPROBS,
    distribution_text,
    expected_grade,
    grade_distribution,
    response_format,
    structured_grade,
    structured_note,
)
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

    `structured=True` asks for a JSON reply matching a schema (`response_format` json_schema);
    a deployment that refuses it is asked in text from then on. `logprobs=True` asks for token
    log probabilities: where the service sends them, the value is the expected grade over the
    grade tokens (G-Eval) and `answer` the distribution, e.g. {"1": 0.0, ..., "5": 0.93}.
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
        structured: bool = True,
        logprobs: bool = True,
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
        self.structured = structured
        self.logprobs = logprobs
        self._text_only = False  # set when the judge deployment refused a structured call
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

    def key(self, record: RecordLike, mode: str = "json") -> str:
        """The call's identity: template, row and reply mode ("json": structured, "text")."""
        return call_key(self.name, (self.template_sha256 or "")[:16], record.prompt_id,
                        record.deployment, record.repeat, "pointwise", mode)

    async def score(self, prompt: Prompt | None, record: RecordLike, ctx: Any) -> Score:
        why = self.applies(prompt, record.status)
        if why is not None:
            return nan_score(why)
        messages = self.messages(prompt, record.output or "")
        try:
            reply = None
            if self.structured and not self._text_only:
                reply = await self._ask(ctx, record, messages, structured=True)
                if reply.status == "error":
                    # The service refused the schema or logprobs: ask in text from now on.
                    self._text_only = True
            if reply is None or self._text_only:
                reply = await self._ask(ctx, record, messages, structured=False)
        except CompareError as e:
            self.errors += 1
            return nan_score(f"judge call failed: {e}")
        if reply.text is None or reply.status != "ok":
            self.errors += 1
            return nan_score(f"judge call failed ({reply.status}): {reply.error or 'no reply'}")
        return self.read(reply.text, reply.logprobs)

    async def _ask(self, ctx: Any, record: RecordLike, messages: list[dict[str, Any]], *,
                   structured: bool) -> JudgeReply:
        options: dict[str, Any] = {}
        if structured:
            note = structured_note(self.scale)
            messages = [{**m, "content": m["content"] + note} for m in messages]
            options["response_format"] = response_format(self.scale)
        if self.logprobs:
            options["top_logprobs"] = TOP_LOGPROBS
        return await ctx.chat(
            self.judge, messages, call_key=self.key(record, "json" if structured else "text"),
            temperature=0.0, seed=self.seed, max_tokens=self.max_tokens, **options,
        )

    def read(self, text: str, logprobs: list[dict[str, Any]] | None = None) -> Score:
        """A judge reply as a Score (NaN and counted as unparsed when it says no grade).

        With log probabilities at the grade token, the value is the expected grade (P(PASS) for
        pass_fail) and `answer` the distribution as JSON; otherwise the value is the grade read
        from the JSON reply, else from the text."""
        grade = structured_grade(text, self.scale)
        if grade is None:
            parsed = parse_grade(text) if self.scale == "1-5" else parse_pass_fail(text)
            grade = None if parsed is None else int(parsed)
        distribution = grade_distribution(text, logprobs, self.scale)
        if grade is None and distribution is None:
            self.unparsed += 1
            return nan_score(text)
        if distribution is not None:
            value = expected_grade(distribution, self.scale)
            answer = distribution_text(distribution)
        else:
            assert grade is not None
            value = float(grade)
            answer = str(grade) if self.scale == "1-5" else ("PASS" if grade else "FAIL")
        if self.scale == "1-5":
            return self.with_passed(Score(value, answer=answer, explanation=text))
        return Score(value, value >= 0.5, answer, text)
