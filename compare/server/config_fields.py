"""Readers for the sections of a deployments file: each checks types and ranges, rejects unknown
keys, and fails with the file, line and dotted path of the field (`deployments.x.capacity.rpm`).
"""

from __future__ import annotations

import re
from typing import Any

from compare.errors import ConfigError
from compare.server.deployment_spec import (
    CATEGORIES,
    FAULTS,
    SEVERITIES,
    BatchSpec,
    Capacity,
    Dist,
    EncoderSpec,
    FaultRule,
    FilterRule,
    LlamaSpec,
    SimulatedSpec,
    WeightsRef,
)


class Section:
    """Reads one mapping, checking types and rejecting unknown keys, with file:line errors."""

    def __init__(self, data: Any, path: str, source: str, line: int | None) -> None:
        self.source = source
        self.path = path
        self.line = line if line is not None else getattr(data, "line", None)
        if not isinstance(data, dict):
            self.fail(f"must be a mapping, got {type(data).__name__}")
        self.data: dict[str, Any] = data
        self.used: set[str] = set()

    def fail(self, message: str, key: str | None = None) -> None:
        raise ConfigError(
            f"{self.path}{'.' + key if key else ''}: {message}",
            source=self.source,
            line=self.key_line(key),
            field=f"{self.path}.{key}" if key else self.path,
        )

    def key_line(self, key: str | None) -> int | None:
        lines = getattr(self.data, "key_lines", None) if hasattr(self, "data") else None
        if key is not None and lines and key in lines:
            return lines[key]
        return self.line

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = None) -> Any:
        self.used.add(key)
        return self.data.get(key, default)

    def section(self, key: str) -> Section:
        return Section(self.raw(key), f"{self.path}.{key}", self.source, self.key_line(key))

    def str_(self, key: str, default: str | None = None, *, choices: tuple[str, ...] = ()) -> Any:
        value = self.raw(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.fail(f"expected a string, got {type(value).__name__}", key)
        value = str(value)
        if choices and value not in choices:
            self.fail(f"{value!r} is not one of {', '.join(choices)}", key)
        return value

    def num(self, key: str, default: Any = None, *, lo: float | None = None,
            hi: float | None = None, integer: bool = False) -> Any:
        value = self.raw(key, default)
        if value is None:
            # `key: null` means "not set": the default (which may itself be None).
            return default
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            self.fail(f"expected {'an integer' if integer else 'a number'}, got {value!r}", key)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            self.fail(f"{value!r} is out of range [{lo}, {hi}]", key)
        return value

    def bool_(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            self.fail(f"expected true or false, got {value!r}", key)
        return value

    def finish(self) -> None:
        for key in self.data:
            if key not in self.used:
                self.fail("unknown key", key)


def dist(sec: Section, key: str, default: Dist, *, unit: str) -> Dist:
    if not sec.has(key):
        return default
    value = sec.raw(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            sec.fail(f"must be >= 0 {unit}", key)
        return Dist("fixed", float(value))
    d = sec.section(key)
    kind = d.str_("dist", "fixed", choices=("fixed", "uniform", "normal", "lognormal",
                                            "exponential"))
    params = {
        "fixed": ("value", None),
        "uniform": ("min", "max"),
        "normal": ("mean", "sd"),
        "lognormal": ("median", "sigma"),
        "exponential": ("mean", None),
    }[kind]
    a = d.num(params[0], lo=0)
    if a is None:
        d.fail(f"a {kind} distribution needs {params[0]!r}")
    b = 0.0
    if params[1] is not None:
        b = d.num(params[1], lo=0)
        if b is None:
            d.fail(f"a {kind} distribution needs {params[1]!r}")
        if kind == "uniform" and b < a:
            d.fail("max must be >= min", "max")
    d.finish()
    return Dist(kind, float(a), float(b))


def defaults(sec: Section) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out_temperature = sec.num("temperature", lo=0, hi=2)
    out_top_p = sec.num("top_p", lo=0, hi=1)
    out_max = sec.num("max_tokens", lo=1, integer=True)
    out_seed = sec.num("seed", integer=True)
    out_pp = sec.num("presence_penalty", lo=-2, hi=2)
    out_fp = sec.num("frequency_penalty", lo=-2, hi=2)
    stop = sec.raw("stop")
    if stop is not None:
        if isinstance(stop, str):
            stop = [stop]
        if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
            sec.fail("expected a string or a list of non-empty strings", "stop")
        out["stop"] = list(stop)
    for key, value in (("temperature", out_temperature), ("top_p", out_top_p),
                       ("max_tokens", out_max), ("seed", out_seed),
                       ("presence_penalty", out_pp), ("frequency_penalty", out_fp)):
        if value is not None:
            out[key] = value
    sec.finish()
    return out


def capacity(sec: Section) -> Capacity:
    rpm = sec.num("rpm", lo=1, integer=True)
    tpm = sec.num("tpm", lo=1, integer=True)
    window = sec.num("window_s", 10.0, lo=0.1, hi=60)
    sec.finish()
    if rpm is None and tpm is None:
        sec.fail("give rpm, tpm or both")
    return Capacity(rpm=rpm, tpm=tpm, window_s=float(window))


def filter_rules(value: Any, path: str, source: str, line: int | None) -> tuple[FilterRule, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{path}: expected a list of rules", source=source, line=line)
    rules = []
    lines = getattr(value, "item_lines", [line] * len(value))
    for i, item in enumerate(value):
        sec = Section(item, f"{path}[{i}]", source, lines[i])
        category = sec.str_("category", choices=CATEGORIES)
        if category is None:
            sec.fail("needs a category")
        severity = sec.str_("severity", "medium", choices=SEVERITIES[1:])
        terms = sec.raw("terms", [])
        if isinstance(terms, str):
            terms = [terms]
        if not isinstance(terms, list) or not all(isinstance(t, str) and t for t in terms):
            sec.fail("expected a list of non-empty strings", "terms")
        regex_text = sec.str_("regex")
        regex = None
        if regex_text is not None:
            try:
                regex = re.compile(regex_text, re.IGNORECASE)
            except re.error as exc:
                sec.fail(f"invalid regular expression: {exc}", "regex")
        if not terms and regex is None:
            sec.fail("give terms, regex or both")
        on = sec.raw("apply_to", ["prompt", "completion"])
        if isinstance(on, str):
            on = [on]
        if not isinstance(on, list) or not on or not set(on) <= {"prompt", "completion"}:
            sec.fail("expected prompt, completion or both", "apply_to")
        sec.finish()
        rules.append(FilterRule(category, severity, tuple(terms), regex, frozenset(on)))
    return tuple(rules)


def fault_rules(value: Any, path: str, source: str, line: int | None) -> tuple[FaultRule, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{path}: expected a list of fault rules", source=source, line=line)
    rules = []
    lines = getattr(value, "item_lines", [line] * len(value))
    for i, item in enumerate(value):
        sec = Section(item, f"{path}[{i}]", source, lines[i])
        fault = sec.str_("fault", choices=FAULTS)
        if fault is None:
            sec.fail(f"needs a fault, one of {', '.join(FAULTS)}")
        rate = sec.num("rate", lo=0, hi=1)
        first = sec.num("first_attempts", lo=1, integer=True)
        if rate is not None and first is not None:
            sec.fail("give either rate or first_attempts, not both")
        rule = FaultRule(
            fault=fault,
            rate=float(rate) if rate is not None else (None if first is not None else 1.0),
            first_attempts=first,
            match=sec.str_("match"),
            retry_after_s=float(sec.num("retry_after_s", 1.0, lo=0, hi=3600)),
            after_tokens=sec.num("after_tokens", 3, lo=0, integer=True),
            hang_s=float(sec.num("hang_s", 600.0, lo=0, hi=86400)),
            size_chars=sec.num("size_chars", 2_000_000, lo=1, integer=True),
        )
        sec.finish()
        rules.append(rule)
    return tuple(rules)


def simulated(sec: Section) -> SimulatedSpec:
    spec = SimulatedSpec(
        seed=sec.num("seed", 0, integer=True),
        output_tokens=dist(sec, "output_tokens", SimulatedSpec.output_tokens, unit="tokens"),
        ttft_ms=dist(sec, "ttft_ms", SimulatedSpec.ttft_ms, unit="ms"),
        itl_ms=dist(sec, "itl_ms", SimulatedSpec.itl_ms, unit="ms"),
        text=sec.str_("text", "lorem", choices=("lorem", "echo")),
        dimensions=sec.num("dimensions", 64, lo=2, hi=8192, integer=True),
        replies=reply_rules(sec),
    )
    sec.finish()
    return spec


def reply_rules(sec: Section) -> tuple[tuple[re.Pattern[str], str], ...]:
    """`replies: [{match: REGEX, text: ...}]`: the first rule whose regex is found in the last
    user message gives the answer's text (a scripted model: a judge that grades, a deployment
    that knows some answers)."""
    value = sec.raw("replies", [])
    if not isinstance(value, list):
        sec.fail("expected a list of {match, text} rules", "replies")
    rules = []
    for i, item in enumerate(value):
        rule = Section(item, f"{sec.path}.replies[{i}]", sec.source, sec.key_line("replies"))
        pattern, text = rule.str_("match"), rule.str_("text")
        if pattern is None or text is None:
            rule.fail("needs match (a regular expression) and text")
        try:
            rules.append((re.compile(str(pattern), re.IGNORECASE | re.DOTALL), str(text)))
        except re.error as exc:
            rule.fail(f"invalid regular expression: {exc}", "match")
        rule.finish()
    return tuple(rules)


def weights(sec: Section, key: str) -> WeightsRef:
    value = sec.raw(key)
    if value is None:
        sec.fail("a llama deployment needs weights", key)
    if isinstance(value, str):
        return WeightsRef(path=value)
    w = sec.section(key)
    ref = WeightsRef(package=w.str_("package"), file=w.str_("file"), path=w.str_("path"))
    w.finish()
    if (ref.package is None) == (ref.path is None):
        w.fail("give either package (with optional file) or path")
    return ref


def llama(sec: Section) -> LlamaSpec:
    spec = LlamaSpec(
        weights=weights(sec, "weights"),
        n_ctx=sec.num("n_ctx", 2048, lo=128, hi=131072, integer=True),
        n_threads=sec.num("n_threads", 1, lo=1, hi=256, integer=True),
        n_batch=sec.num("n_batch", 256, lo=1, hi=8192, integer=True),
        deterministic=sec.bool_("deterministic", False),
        chat_template=sec.str_("chat_template", "model", choices=("model", "plain")),
    )
    sec.finish()
    return spec


def batch(sec: Section) -> BatchSpec:
    """The `batch:` section of a global-batch deployment."""
    spec = BatchSpec(
        concurrency=sec.num("concurrency", BatchSpec.concurrency, lo=1, hi=4096, integer=True),
        enqueued_tokens=sec.num("enqueued_tokens", BatchSpec.enqueued_tokens, lo=1,
                                integer=True),
    )
    sec.finish()
    return spec


def encoder(sec: Section) -> EncoderSpec:
    """The `sentence_transformers:` section: the model directory and how to run it."""
    spec = EncoderSpec(
        weights=weights(sec, "weights"),
        n_threads=sec.num("n_threads", 1, lo=1, hi=256, integer=True),
        batch_size=sec.num("batch_size", 32, lo=1, hi=2048, integer=True),
    )
    sec.finish()
    return spec
