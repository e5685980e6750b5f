"""Scorers by name: the built-in registry, CLI specs, and defaults chosen from prompt tags.

Spec grammar (what `--score` takes):

- ``NAME`` or ``NAME:key=value,key=value`` for the text scorers: exact, includes, f1, rouge,
  chrf, bleu, edit_similarity, json_valid, choice, numeric. Options every scorer takes:
  ``name=``, ``threshold=``, ``tags=a;b``; and its own: ``numeric:rel=0.01,abs=0.5``,
  ``includes:normalize=false``, ``rouge:stemmer=true``.
- ``regex:PATTERN`` — everything after the first colon is the pattern.
- ``json_schema:PATH`` — a JSON schema file.
- ``judge:DEPLOYMENT[:key=value,...]`` with ``scale=1-5|pass_fail``, ``threshold=``,
  ``name=``, and ``rubric=TEXT`` last (it takes the rest of the spec, commas included).
- ``pairwise:DEPLOYMENT[:name=...,rubric=TEXT]``, ``similarity:DEPLOYMENT[:threshold=...]``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final

from compare.errors import ConfigError
from compare.prompts import Prompt, PromptSet, load_prompts
from compare.scorers.base import Scorer
from compare.scorers.judge import Judge
from compare.scorers.numeric import Numeric
from compare.scorers.overlap import Bleu, Chrf, EditSimilarity, Rouge
from compare.scorers.pairwise import PairwiseScorer
from compare.scorers.similarity import Similarity
from compare.scorers.structured import JsonSchema, JsonValid
from compare.scorers.text import F1, Choice, Exact, Includes, Regex

COMMON_OPTIONS: Final = ("name", "threshold", "tags")
# name → (factory, its own options)
TEXT_SCORERS: Final[dict[str, tuple[Callable[..., Scorer], tuple[str, ...]]]] = {
    "exact": (Exact, ()),
    "includes": (Includes, ("normalize",)),
    "f1": (F1, ()),
    "rouge": (Rouge, ("stemmer",)),
    "chrf": (Chrf, ()),
    "bleu": (Bleu, ()),
    "edit_similarity": (EditSimilarity, ()),
    "json_valid": (JsonValid, ()),
    "choice": (Choice, ()),
    "numeric": (Numeric, ("rel", "abs")),
}
MODEL_SCORERS: Final[dict[str, tuple[Callable[..., Scorer], tuple[str, ...]]]] = {
    "judge": (Judge, ("scale", "rubric", "max_tokens", "structured", "logprobs")),
    "pairwise": (PairwiseScorer, ("rubric", "max_tokens")),
    "similarity": (Similarity, ()),
}
ARGUMENT_SCORERS: Final = ("regex", "json_schema")
ALIASES: Final = {
    "em": "exact", "exact_match": "exact", "contains": "includes", "rougel": "rouge",
    "rouge_l": "rouge", "levenshtein": "edit_similarity", "json": "json_valid",
    "multiple_choice": "choice", "mc": "choice", "number": "numeric", "embedding": "similarity",
}
ALL_NAMES: Final = (*TEXT_SCORERS, *ARGUMENT_SCORERS, *MODEL_SCORERS)


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _value(raw: str) -> Any:
    low = raw.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    try:
        return int(raw) if low.lstrip("-").isdigit() else float(raw)
    except ValueError:
        return raw.strip()


def _options(spec: str, text: str, allowed: Sequence[str]) -> dict[str, Any]:
    """key=value pairs separated by commas; `rubric=` takes the rest of the text."""
    options: dict[str, Any] = {}
    rest = text
    while rest:
        head, _, tail = rest.partition(",")
        key, eq, raw = head.partition("=")
        key = key.strip()
        if not eq:
            raise ConfigError(f"scorer spec {spec!r}: expected key=value, got {head!r}",
                              field="scorer")
        if key not in allowed:
            raise ConfigError(
                f"scorer spec {spec!r}: unknown option {key!r}{_did_you_mean(key, allowed)}; "
                f"options: {', '.join(allowed)}", field="scorer",
            )
        if key == "rubric":
            options[key] = rest.partition("=")[2]
            break
        options[key] = raw.split(";") if key == "tags" else _value(raw)
        if key in ("name", "scale"):
            options[key] = raw.strip()
        rest = tail
    return options


def parse_scorer_spec(spec: str) -> Scorer:
    """A Scorer from a spec string (see the module doc). ConfigError with a did-you-mean."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"a scorer spec must be a non-empty string, got {spec!r}",
                          field="scorer")
    head, _, rest = spec.strip().partition(":")
    name = ALIASES.get(head.lower(), head.lower())
    if name in TEXT_SCORERS:
        factory, own = TEXT_SCORERS[name]
        return factory(**_options(spec, rest, (*COMMON_OPTIONS, *own)))
    if name == "regex":
        if not rest:
            raise ConfigError("regex needs a pattern: regex:PATTERN", field="scorer")
        return Regex(rest)
    if name == "json_schema":
        if not rest:
            raise ConfigError("json_schema needs a schema file: json_schema:PATH", field="scorer")
        return JsonSchema(rest)
    if name in MODEL_SCORERS:
        deployment, _, opts = rest.partition(":")
        if not deployment.strip():
            raise ConfigError(f"{name} needs a deployment: {name}:DEPLOYMENT", field="scorer")
        factory, own = MODEL_SCORERS[name]
        allowed = (*COMMON_OPTIONS, *own) if name != "pairwise" else ("name", *own)
        return factory(deployment.strip(), **_options(spec, opts, allowed))
    raise ConfigError(
        f"unknown scorer {head!r}{_did_you_mean(name, (*ALL_NAMES, *ALIASES))}; "
        f"built-ins: {', '.join(ALL_NAMES)}", field="scorer",
    )


def as_scorers(items: Sequence[Scorer | str] | Scorer | str) -> list[Scorer]:
    """Scorer objects and spec strings as a list of Scorers."""
    if isinstance(items, Scorer | str):
        items = [items]
    return [parse_scorer_spec(i) if isinstance(i, str) else i for i in items]


# Tags that choose a scorer in `default_scorers_for` (a tag equal to a scorer name also does).
TAG_SCORERS: Final = ("exact", "includes", "f1", "numeric", "choice", "json_valid", "rouge",
                      "chrf", "bleu", "edit_similarity")


def eval_set() -> PromptSet:
    """The bundled evaluation set: 40 short questions with checkable answers (arithmetic,
    capitals, unit conversion, multiple choice, JSON), each tagged with its family and the
    scorer that fits it; `default_scorers_for(eval_set())` picks those scorers."""
    return load_prompts(Path(__file__).parent.parent / "data" / "eval_set.jsonl")


def default_scorers_for(prompts: Iterable[Prompt]) -> list[Scorer]:
    """Built-in scorers chosen from the prompts' tags, each restricted to the prompts that carry
    its tag (a numeric scorer on a capital-city question would only add zeros).

    A prompt tagged "numeric" gets `numeric`, "choice" gets `choice`, and so on for every text
    scorer name. Prompts with a reference but no scorer tag get `f1` and `includes` (restricted
    to none: they apply to every prompt with a reference).
    """
    tagged: dict[str, None] = {}
    untagged_reference = False
    for prompt in prompts:
        names = [t for t in prompt.tags if t in TAG_SCORERS]
        for t in names:
            tagged.setdefault(t)
        if not names and prompt.reference is not None:
            untagged_reference = True
    chosen = [TEXT_SCORERS[name][0](tags=[name]) for name in tagged]
    if untagged_reference:
        chosen += [s for s in (F1(), Includes()) if s.name not in tagged]
    return chosen
