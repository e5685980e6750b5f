"""The scorer protocol: `Score`, `Scorer`, the model-call context and the `@scorer` decorator.

A scorer turns one record (an answer of one deployment to one prompt) into a `Score`. Rows that
cannot be scored — status not ok, or no reference when the scorer needs one — score NaN; a
scorer never raises for them. Scorers that can score many rows at once implement `score_batch`
(the engine prefers it); model-based scorers (judges, embeddings) only have the async `score`
and make every model call through a `ScoringContext`, never through an SDK.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol, runtime_checkable

import numpy as np

from compare.errors import CompareError, ConfigError
from compare.prompts import Prompt

Kind = Literal["binary", "continuous", "ordinal"]
KINDS: Final = ("binary", "continuous", "ordinal")
NAME_PATTERN: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
NAN: Final = math.nan


@dataclass(frozen=True, slots=True)
class Score:
    """One scored row. `value` is NaN when the row could not be scored."""

    value: float
    passed: bool | None = None
    answer: str | None = None
    explanation: str | None = None


def nan_score(explanation: str | None = None) -> Score:
    return Score(NAN, None, None, explanation)


@dataclass(frozen=True, slots=True)
class JudgeReply:
    """A judge model's reply as the context returns it. `text` is None when the call failed."""

    text: str | None
    status: str = "ok"
    error: str | None = None
    # The reply's token log probabilities (OpenAI `logprobs.content`) when asked for and sent.
    logprobs: list[dict[str, Any]] | None = None


class ScoringCallError(CompareError):
    """A model call made for scoring (judge chat, embedding) failed for good.

    A `ScoringContext` raises it (or another `CompareError`) from `embed`; scorers turn it into a
    NaN score with the error in `explanation`.
    """


@runtime_checkable
class ScoringContext(Protocol):
    """How model-based scorers reach a model. The runner implements it (timed, retried, paced by
    the judge deployment's limits, checkpointed, cost counted apart from the evaluated run).

    `call_key` is a stable identity of the call, so a resumed run re-sends no finished call.
    `response_format` (OpenAI's, e.g. a json_schema) and `top_logprobs` (asks for logprobs with
    that many alternatives per token) are sent in the request body when given.
    """

    async def chat(
        self,
        deployment: str,
        messages: list[dict[str, Any]],
        *,
        call_key: str,
        temperature: float = 0.0,
        seed: int | None = 0,
        max_tokens: int | None = None,
        response_format: dict[str, Any] | None = None,
        top_logprobs: int | None = None,
    ) -> JudgeReply: ...

    async def embed(
        self, deployment: str, texts: list[str], *, call_key: str
    ) -> list[list[float]]: ...


class RecordLike(Protocol):
    """What a scorer reads from a record (`compare.records.Record` has all of it)."""

    prompt_id: str
    deployment: str
    repeat: int
    status: str
    output: str | None


@dataclass(frozen=True, slots=True)
class RowView:
    """The fields of one frame row that scorers read (the engine builds these)."""

    prompt_id: str
    deployment: str
    repeat: int
    status: str
    output: str | None


@dataclass(slots=True)
class BatchScores:
    """What `score_batch` returns: one entry per input row. `answers`/`explanations` may be
    None when the scorer has none to give."""

    values: np.ndarray
    answers: list[str | None] | None = None
    explanations: list[str | None] | None = None


def call_key(*parts: str | int) -> str:
    """A stable, readable identity of one model call (JSON list of its parts)."""
    return json.dumps([str(p) if not isinstance(p, int) else p for p in parts],
                      ensure_ascii=False, separators=(",", ":"))


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_name(name: str, where: str = "name") -> str:
    """Scorer names become column suffixes (`score_<name>`): a letter, then letters, digits, _."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        fixed = re.sub(r"\W+", "_", str(name)).strip("_") or "my_scorer"
        if not fixed[0].isalpha():
            fixed = "s_" + fixed
        raise ConfigError(
            f"scorer name {name!r} cannot be a column suffix: use a letter followed by letters, "
            f"digits or _ (for example {fixed!r})",
            field=where,
        )
    return name


class Scorer:
    """Base class of every scorer.

    Subclasses set `name`, `kind`, `higher_is_better`, `needs_reference` and implement either
    `score_text` (synchronous, per row; `score_batch` loops over it unless overridden) or, for
    model-based scorers, the async `score` itself (and set `model_based = True`).

    `tags` restricts a scorer to prompts carrying any of those tags (others score NaN).
    """

    name: str = "scorer"
    kind: Kind = "continuous"
    higher_is_better: bool = True
    needs_reference: bool = False
    model_based: bool = False
    threshold: float | None = None
    tags: frozenset[str] | None = None
    judge: str | None = None  # the chat deployment a model-graded scorer calls
    embed: str | None = None  # the embedding deployment an embedding scorer calls
    template: str | None = None

    def __init__(
        self,
        *,
        name: str | None = None,
        threshold: float | None = None,
        tags: Sequence[str] | str | None = None,
    ) -> None:
        if name is not None:
            self.name = name
        check_name(self.name)
        if threshold is not None and not (
            isinstance(threshold, int | float) and math.isfinite(threshold)
        ):
            raise ConfigError(f"threshold must be a finite number, got {threshold!r}",
                              field="threshold")
        self.threshold = float(threshold) if threshold is not None else None
        if tags is not None:
            self.tags = frozenset([tags] if isinstance(tags, str) else tags)
        self.unparsed = 0
        self.errors = 0

    def __repr__(self) -> str:
        extra = f", threshold={self.threshold}" if self.threshold is not None else ""
        return f"{type(self).__name__}(name={self.name!r}, kind={self.kind!r}{extra})"

    @property
    def template_sha256(self) -> str | None:
        """sha256 of the model prompt template (for the run manifest), when there is one."""
        return sha256_text(self.template) if self.template is not None else None

    def passed(self, value: float) -> bool | None:
        """`value` against `threshold`; without one, a binary score passes at 1. None when the
        row has no value (or the scorer no notion of passing)."""
        if math.isnan(value):
            return None
        if self.threshold is None:
            return value == 1.0 if self.kind == "binary" else None
        return value >= self.threshold if self.higher_is_better else value <= self.threshold

    def applies(self, prompt: Prompt | None, status: str) -> str | None:
        """Why this row scores NaN (None when it can be scored)."""
        if status != "ok":
            return f"not scored: status {status}"
        if self.tags is not None and (prompt is None or not self.tags & set(prompt.tags)):
            return "not scored: prompt lacks tags " + ", ".join(sorted(self.tags))
        if self.needs_reference and (prompt is None or prompt.reference is None):
            return "not scored: no reference answer"
        return None

    def score_text(self, output: str, reference: str | None, prompt: Prompt | None) -> Score:
        """Score one output (status ok, reference present when needed)."""
        raise NotImplementedError(f"{type(self).__name__} scores only through score()")

    def score_batch(
        self,
        outputs: Sequence[str],
        references: Sequence[str | None],
        prompts: Sequence[Prompt | None],
    ) -> BatchScores:
        """Score many scorable rows at once (the engine prefers this to `score`)."""
        guarded = self._guarded
        scores = [guarded(o, r, p) for o, r, p in zip(outputs, references, prompts, strict=True)]
        values = np.fromiter((s.value for s in scores), dtype="float64", count=len(scores))
        return BatchScores(values, [s.answer for s in scores], [s.explanation for s in scores])

    def _guarded(self, output: str, reference: str | None, prompt: Prompt | None) -> Score:
        return self.score_text(output, reference, prompt)

    async def score(self, prompt: Prompt | None, record: RecordLike, ctx: Any) -> Score:
        """Score one record. Never raises for a row that is not ok or lacks a reference."""
        why = self.applies(prompt, record.status)
        if why is not None:
            return nan_score(why)
        reference = prompt.reference if prompt is not None else None
        return self.with_passed(self._guarded(record.output or "", reference, prompt))

    def with_passed(self, score: Score) -> Score:
        """`score` with `passed` filled from the threshold (or binary value) when it has none."""
        if score.passed is not None:
            return score
        passed = self.passed(score.value)
        if passed is None:
            return score
        return Score(score.value, passed, score.answer, score.explanation)


def as_score(result: Any) -> Score:
    """A user function's return value as a Score: float, bool, None (NaN) or a Score."""
    if isinstance(result, Score):
        return result
    if result is None:
        return nan_score()
    if isinstance(result, bool | np.bool_):
        return Score(1.0 if result else 0.0, bool(result))
    if isinstance(result, int | float | np.integer | np.floating):
        return Score(float(result))
    raise TypeError(
        f"a scorer function must return a float, a bool, None or a Score, "
        f"got {type(result).__name__}"
    )


ScoreFunction = Callable[..., Any]


class FunctionScorer(Scorer):
    """A scorer made from `f(output, reference, prompt)` (sync or async) by `@scorer`.

    The function may take only `output`, or `output, reference`, or all three. An exception it
    raises scores that row NaN with the error in `explanation` (counted in `errors`): one odd
    output does not stop the scoring of 100k others.
    """

    def __init__(
        self,
        function: ScoreFunction,
        *,
        kind: Kind,
        name: str | None = None,
        higher_is_better: bool = True,
        needs_reference: bool | None = None,
        threshold: float | None = None,
        tags: Sequence[str] | str | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ConfigError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}",
                              field="kind")
        self.function = function
        self.kind = kind
        self.higher_is_better = higher_is_better
        self.arity = _arity(function)
        self.needs_reference = self.arity >= 2 if needs_reference is None else needs_reference
        self.is_async = inspect.iscoroutinefunction(function)
        self.model_based = self.is_async  # scored row by row, concurrently
        super().__init__(name=name or function.__name__, threshold=threshold, tags=tags)
        self.__doc__ = function.__doc__
        self.__wrapped__ = function

    def _args(self, output: str, reference: str | None, prompt: Prompt | None) -> tuple:
        return (output, reference, prompt)[: self.arity]

    def _guarded(self, output: str, reference: str | None, prompt: Prompt | None) -> Score:
        try:
            return as_score(self.function(*self._args(output, reference, prompt)))
        except Exception as e:  # a user function's failure is that row's, not the run's
            self.errors += 1
            return nan_score(f"{type(e).__name__}: {e}")

    async def score(self, prompt: Prompt | None, record: RecordLike, ctx: Any) -> Score:
        if not self.is_async:
            return await super().score(prompt, record, ctx)
        why = self.applies(prompt, record.status)
        if why is not None:
            return nan_score(why)
        reference = prompt.reference if prompt is not None else None
        try:
            result: Awaitable[Any] = self.function(
                *self._args(record.output or "", reference, prompt)
            )
            score = as_score(await result)
        except Exception as e:
            self.errors += 1
            return nan_score(f"{type(e).__name__}: {e}")
        return self.with_passed(score)


def _arity(function: ScoreFunction) -> int:
    try:
        params = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return 3
    positional = [
        p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return 3
    if not positional:
        raise ConfigError(
            f"scorer function {getattr(function, '__name__', function)!r} must take the output "
            "as its first argument: f(output, reference, prompt)",
            field="function",
        )
    return min(len(positional), 3)


def scorer(
    function: ScoreFunction | None = None,
    *,
    kind: Kind = "continuous",
    name: str | None = None,
    higher_is_better: bool = True,
    needs_reference: bool | None = None,
    threshold: float | None = None,
    tags: Sequence[str] | str | None = None,
) -> Any:
    """Turn `f(output, reference, prompt) -> float | bool | Score | None` into a Scorer.

        @scorer(kind="binary")
        def mentions_paris(output, reference, prompt):
            return "paris" in output.lower()

    Usable bare (`@scorer`) or with arguments. `needs_reference` defaults to whether the function
    takes a `reference` argument: rows without a reference then score NaN without calling it.
    An `async def` function is awaited (rows scored concurrently).
    """

    def wrap(f: ScoreFunction) -> FunctionScorer:
        return FunctionScorer(
            f,
            kind=kind,
            name=name,
            higher_is_better=higher_is_better,
            needs_reference=needs_reference,
            threshold=threshold,
            tags=tags,
        )

    return wrap(function) if function is not None else wrap
