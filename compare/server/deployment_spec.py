"""What a deployments file describes, once validated: `DeploymentSpec` and its parts.

Frozen dataclasses only; `compare.server.config` reads a file into them. The names the file may
use for faults, categories and backends are here too, so validation and runtime share one list.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

BACKENDS = ("llama", "simulated", "sentence-transformers")
# Backends that run one request at a time (one worker thread per loaded model).
ONE_AT_A_TIME = ("llama", "sentence-transformers")
MODEL_TYPES = ("chat-completion", "embeddings")
# Azure's deployment SKUs this endpoint models: Standard answers online requests; GlobalBatch
# answers only requests sent through the batch API (files + /openai/batches).
DEPLOYMENT_TYPES = ("standard", "global-batch")
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


@dataclass(frozen=True)
class Dist:
    """A delay or count distribution. Values are in the unit of the field (ms or tokens)."""

    kind: str  # fixed | uniform | normal | lognormal | exponential
    a: float  # fixed: value; uniform: min; normal: mean; lognormal: median; exponential: mean
    b: float = 0.0  # uniform: max; normal: sd; lognormal: sigma

    def sample(self, rng: random.Random) -> float:
        """One draw, clipped at 0 (a delay or a count is never negative)."""
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
        """The first match of the regex or of any term (case-insensitive), or None."""
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
    # (regex, answer) rules tried on the last user message before `text` applies.
    replies: tuple[tuple[re.Pattern[str], str], ...] = ()


@dataclass(frozen=True)
class WeightsRef:
    """Where a GGUF comes from: a file in an installed package, an assembling package, a path."""

    package: str | None = None
    file: str | None = None
    path: str | None = None

    @property
    def key(self) -> str:
        """Identity of the weights: deployments with the same key share one loaded model."""
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
class BatchSpec:
    """How a global-batch deployment runs batch jobs."""

    concurrency: int = 8  # requests of this deployment's batches in flight at once
    # Azure's enqueued-token quota: input tokens of all unfinished batches of the deployment.
    enqueued_tokens: int = 5_000_000


@dataclass(frozen=True)
class EncoderSpec:
    """A sentence-transformers model directory (config.json, weights, tokenizer) to embed with."""

    weights: WeightsRef
    n_threads: int = 1
    batch_size: int = 32


@dataclass(frozen=True)
class DeploymentSpec:
    name: str
    backend: str
    model: str
    model_type: str = "chat-completion"  # chat-completion | embeddings
    deployment_type: str = "standard"  # standard | global-batch
    version: str = "1"
    provider: str = "compare (local)"
    defaults: Mapping[str, Any] = field(default_factory=dict)
    max_output_tokens: int = 4096
    capacity: Capacity | None = None
    content_filter: tuple[FilterRule, ...] = ()
    faults: tuple[FaultRule, ...] = ()
    simulated: SimulatedSpec | None = None
    llama: LlamaSpec | None = None
    batch: BatchSpec | None = None  # global-batch deployments only
    encoder: EncoderSpec | None = None  # sentence-transformers deployments only
    # Requests it runs at once (others wait their turn on the server): 1 for llama, whose
    # loaded model is shared by every deployment on the same weights, and for
    # sentence-transformers; None = unlimited.
    max_concurrent_requests: int | None = None
    line: int | None = None

    @property
    def is_batch(self) -> bool:
        """True for a global-batch deployment (answers batch jobs only)."""
        return self.deployment_type == "global-batch"


@dataclass(frozen=True)
class ServerConfig:
    deployments: tuple[DeploymentSpec, ...]
    source: str = "<config>"
    region: str = "local"
    max_body_bytes: int = 1_048_576
    max_file_bytes: int = 200 * 1024 * 1024  # Azure's limit for a batch input file
    # What the only completion window Azure takes, "24h", lasts here: shorter in tests, so an
    # unfinished job expires.
    batch_completion_window_s: float = 86_400.0

    def names(self) -> list[str]:
        """Deployment names in file order."""
        return [d.name for d in self.deployments]

    def capacity_groups(self) -> list[tuple[list[str], int]]:
        """Deployments that draw on one generation capacity, and its size: the llama ones on
        the same weights share one loaded model (1 at a time across them); a simulated one
        with max_concurrent_requests is a group of its own. Unlimited ones are in none."""
        groups: dict[str, tuple[list[str], int]] = {}
        for d in self.deployments:
            if d.max_concurrent_requests is None:
                continue
            key = f"llama:{d.llama.weights.key}" if d.llama is not None else \
                f"encoder:{d.encoder.weights.key}" if d.encoder is not None else f"own:{d.name}"
            groups.setdefault(key, ([], d.max_concurrent_requests))[0].append(d.name)
        return list(groups.values())

    def sharing(self, name: str) -> list[str]:
        """The other deployments that draw on `name`'s capacity."""
        for group, _ in self.capacity_groups():
            if name in group:
                return [n for n in group if n != name]
        return []
