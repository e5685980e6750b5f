"""Deployments: what to call, where, with which defaults — one column of a comparison.

A `Deployment` names the endpoint (base URL and style), the deployment name sent to the service,
auth, default sampling parameters, labels for charts, prices and client-side pacing. It is
validated once, at construction, with messages that name the field. Keys are never stored from the
environment: `resolve_api_key()` reads the argument, then the variable, when a client is built
(`compare.endpoints.pool`), and keys never appear in `repr`, `to_dict()` or error messages.
YAML files and the local endpoint's deployments are read by `compare.deployments_file`.

Environment variables follow the SDKs' own conventions (an explicit argument always wins over a
variable; `api_key_env` names a different variable):

==================  =========================  ========================  ==================
kind                endpoint                   key                       api version
==================  =========================  ========================  ==================
azure-inference     AZURE_AI_CHAT_ENDPOINT     AZURE_AI_CHAT_KEY         (argument only)
azure-openai        AZURE_OPENAI_ENDPOINT      AZURE_OPENAI_API_KEY      OPENAI_API_VERSION
openai              OPENAI_BASE_URL            OPENAI_API_KEY            —
azure-openai-batch  AZURE_OPENAI_ENDPOINT      AZURE_OPENAI_API_KEY      OPENAI_API_VERSION
openai-batch        OPENAI_BASE_URL            OPENAI_API_KEY            —
==================  =========================  ========================  ==================
The batch kinds send requests as JSONL files to a batch deployment (`compare.runner.batch`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Final

from compare._checks import (
    check_choice,
    check_str,
    is_int,
    is_number,
    json_problem,
    show,
    url_problem,
)
from compare.batch_settings import CLIENT_KIND, check_batch_poll
from compare.errors import ConfigError, CredentialError

ONLINE_KINDS: Final = ("azure-inference", "azure-openai", "openai")
BATCH_KINDS: Final = ("azure-openai-batch", "openai-batch")
KINDS: Final = (*ONLINE_KINDS, *BATCH_KINDS)
AUTHS: Final = ("key", "entra")
EXTRA_PARAMETERS: Final = ("error", "drop", "pass-through")

ENDPOINT_ENV: Final[dict[str, str]] = {
    "azure-inference": "AZURE_AI_CHAT_ENDPOINT",
    "azure-openai": "AZURE_OPENAI_ENDPOINT",
    "openai": "OPENAI_BASE_URL",
}
KEY_ENV: Final[dict[str, str]] = {
    "azure-inference": "AZURE_AI_CHAT_KEY",
    "azure-openai": "AZURE_OPENAI_API_KEY",
    "openai": "OPENAI_API_KEY",
}
API_VERSION_ENV: Final[dict[str, str]] = {"azure-openai": "OPENAI_API_VERSION"}
# What each SDK sends when not told otherwise: azure-ai-inference 1.0.0b9's default, and the GA
# Azure OpenAI data-plane version (the 2024-10-21 inference spec, tests/specs/).
DEFAULT_API_VERSION: Final[dict[str, str]] = {
    "azure-inference": "2024-05-01-preview",
    "azure-openai": "2024-10-21",
}
for _table in (ENDPOINT_ENV, KEY_ENV, API_VERSION_ENV, DEFAULT_API_VERSION):  # as their client's
    _table.update({b: _table[o] for b, o in CLIENT_KIND.items() if o in _table})
# The common request parameters: a Deployment sets their defaults, a run may override them, and
# `extra` may not carry them (nor the body keys the runner and adapters own).
REQUEST_PARAMS: Final = ("temperature", "max_tokens", "top_p", "seed", "stop")
RESERVED_BODY_KEYS: Final = ("model", "messages", "stream", *REQUEST_PARAMS)
DEFAULT_CONNECT_TIMEOUT_S: Final = 10.0
DEFAULT_READ_TIMEOUT_S: Final = 120.0
# (low, high) of the numeric fields; ints are checked apart.
_RANGES: Final[dict[str, tuple[float, float]]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "price_input_per_1k": (0.0, math.inf),
    "price_output_per_1k": (0.0, math.inf),
}
_POSITIVE_INTS: Final = ("max_tokens", "concurrency", "max_concurrent_requests")
# Pacing may be off (None); a timeout may not: None would mean waiting forever.
_POSITIVE_OPTIONAL: Final = ("requests_per_minute", "tokens_per_minute")
_POSITIVE_REQUIRED: Final = ("connect_timeout_s", "read_timeout_s")
_TEXT_FIELDS: Final = ("endpoint", "deployment", "api_key", "api_key_env", "api_version", "system",
                       "capacity_group")


@dataclass(frozen=True)
class Deployment:
    """One deployment to compare. Construct directly or via `compare.load_deployments`.

    `endpoint` falls back to the kind's endpoint variable and `api_version` to its version
    variable, at construction. The key is resolved only by `resolve_api_key()`.
    `concurrency` caps this deployment's requests in flight. `max_concurrent_requests` is what
    the service is declared to serve at once (local deployments know it): a run sends no more by
    default, and says so when told to (TTFT then includes the server's queue);
    `capacity_group` names a capacity several deployments share (one loaded model).
    """

    name: str
    endpoint: str | None = None
    kind: str = "azure-inference"
    deployment: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_key_env: str | None = None
    auth: str = "key"
    api_version: str | None = None
    extra_parameters: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] | None = None
    system: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)
    price_input_per_1k: float | None = None
    price_output_per_1k: float | None = None
    concurrency: int | None = None
    max_concurrent_requests: int | None = None
    capacity_group: str | None = None
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S
    batch_poll_s: float | None = None

    def __post_init__(self) -> None:
        _check_text(self)
        set_ = self._set
        set_("deployment", self.deployment or self.name)
        set_("endpoint", _resolve_endpoint(self))
        set_("api_version", _resolve_api_version(self))
        _check_numbers(self)
        set_("stop", _normalise_stop(self.stop))
        for name in ("extra", "labels"):
            set_(name, _json_mapping(getattr(self, name), name))
        _check_extra(self.extra)
        _check_service_name(self)
        _check_unicode(self)
        if self.kind in BATCH_KINDS:
            set_("batch_poll_s", check_batch_poll(self.batch_poll_s, str(self.endpoint)))
        if self.auth == "entra" and self.api_key is not None:
            raise ConfigError(
                f"deployment {self.name!r}: auth='entra' uses a Microsoft Entra ID token; "
                "remove api_key (or use auth='key')",
                field="auth",
            )

    def __hash__(self) -> int:
        # Dict fields make the generated hash fail; identity in a run is the name and target.
        return hash((self.name, self.kind, self.endpoint, self.deployment))

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    @property
    def is_batch(self) -> bool:
        """True for the batch kinds (requests go as JSONL files through the batch API)."""
        return self.kind in BATCH_KINDS

    # -- secrets -----------------------------------------------------------------------------

    @property
    def key_env(self) -> str:
        """The variable `resolve_api_key()` reads when no key was passed."""
        return self.api_key_env or KEY_ENV[self.kind]

    def resolve_api_key(self) -> str:
        """The API key: the `api_key` argument, then the environment variable.

        Raises CredentialError naming both when neither is set. Never logs the key.
        """
        if self.api_key:
            return self._checked_key(self.api_key, "the api_key argument")
        key = os.environ.get(self.key_env)
        if key:
            return self._checked_key(key, f"the environment variable {self.key_env}")
        raise CredentialError(
            f"no API key for deployment {self.name!r}: pass api_key=... (`api_key:` in YAML) "
            f"or set the environment variable {self.key_env}"
            + ("" if self.api_key_env else " (or name another one with api_key_env)")
            + "; for Microsoft Entra ID use auth='entra'",
            field="api_key",
        )

    def _checked_key(self, key: str, origin: str) -> str:
        # A key travels in an HTTP header: non-ASCII (a pasted typographic quote), spaces or a
        # line break would make the SDKs fail with UnicodeEncodeError or a protocol error that
        # carries the key in its arguments. Say where it came from, never what it is.
        if all(33 <= ord(c) <= 126 for c in key):
            return key
        raise CredentialError(
            f"the API key for deployment {self.name!r} (from {origin}) contains characters "
            "an HTTP header cannot carry (non-ASCII, spaces, line breaks or control "
            "characters); check it for a stray character",
            field="api_key",
        )

    # -- views -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Every field except the key, JSON-friendly (for manifests and frames)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "api_key":
                continue
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, dict):
                value = dict(value)
            out[f.name] = value
        return out

    def defaults(self) -> dict[str, Any]:
        """The request parameters this deployment sets (ChatRequest field names), None omitted."""
        out: dict[str, Any] = {}
        for name in ("temperature", "max_tokens", "top_p", "seed"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.stop is not None:
            out["stop"] = list(self.stop)
        if self.extra:
            out["extra"] = dict(self.extra)
        return out

    def replace(self, **changes: Any) -> Deployment:
        """A copy with some fields changed (validated again)."""
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        current.update(changes)
        return Deployment(**current)


FIELD_NAMES: Final[tuple[str, ...]] = tuple(f.name for f in fields(Deployment))


# -- validation (each check raises ConfigError naming its field) ------------------------------


def _check_text(d: Deployment) -> None:
    check_str(d.name, "name", required=True)
    check_choice(d.kind, "kind", KINDS)
    check_choice(d.auth, "auth", AUTHS)
    if d.extra_parameters is not None:
        check_choice(d.extra_parameters, "extra_parameters", EXTRA_PARAMETERS)
    for name in _TEXT_FIELDS:
        check_str(getattr(d, name), name)
    for name in ("name", "deployment"):
        value = getattr(d, name)
        if value is not None and not value.isprintable():
            # Names label chart axes, table rows and one-line CLI messages; a newline or an
            # escape sequence (YAML "\e[2J") would break or hijack them.
            raise ConfigError(
                f"{name} must not contain line breaks, tabs or control characters, "
                f"got {show(value)}",
                field=name,
            )


def _check_numbers(d: Deployment) -> None:
    for name, (low, high) in _RANGES.items():
        value = getattr(d, name)
        if value is not None and (not is_number(value) or not low <= value <= high):
            raise ConfigError(
                f"{name} must be a number in [{low:g}, {high:g}], got {show(value)}", field=name
            )
    for name in _POSITIVE_INTS:
        value = getattr(d, name)
        if value is not None and (not is_int(value) or value < 1):
            raise ConfigError(f"{name} must be a positive integer, got {show(value)}", field=name)
    if d.seed is not None and not is_int(d.seed):
        raise ConfigError(f"seed must be an integer, got {show(d.seed)}", field="seed")
    for name in (*_POSITIVE_OPTIONAL, *_POSITIVE_REQUIRED):
        value = getattr(d, name)
        if (value is not None or name in _POSITIVE_REQUIRED) and (
            not is_number(value) or value <= 0
        ):
            raise ConfigError(f"{name} must be a positive number, got {show(value)}", field=name)


def _json_mapping(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"{name} must be a mapping with string keys", field=name)
    problem = json_problem(value, allow_nan=name == "labels")
    if problem:
        # `extra` goes into every request body and both into manifests: a value JSON cannot
        # carry (a set, NaN for the service) would fail mid-run, per request.
        raise ConfigError(f"{name} must hold JSON values: {problem}", field=name)
    return dict(value)


def _check_extra(extra: Mapping[str, Any]) -> None:
    reserved = sorted(set(extra) & set(RESERVED_BODY_KEYS))
    if not reserved:
        return
    # Adapters merge `extra` into the body last: it would silently replace the prompt, the
    # model or streaming, or fight the parameter of the same name.
    own = [k for k in reserved if k in REQUEST_PARAMS]
    advice = f"; set {', '.join(own)} as {'a field' if len(own) == 1 else 'fields'}"
    raise ConfigError(
        f"extra must not set {', '.join(reserved)}: the comparison sets "
        f"{'it' if len(reserved) == 1 else 'them'}" + (advice if own else ""),
        field="extra",
    )


def _check_service_name(d: Deployment) -> None:
    # Azure OpenAI puts the deployment name into the URL path (…/deployments/NAME/…); the other
    # kinds send it as the body's `model`, where any text is fine.
    name = str(d.deployment)
    if d.kind == "azure-openai" and (
        name in (".", "..")
        or any(c in "/?#%" or c.isspace() for c in name)
        or not name.isprintable()
    ):
        raise ConfigError(
            f"deployment {d.name!r}: an Azure OpenAI deployment name goes into the URL "
            f"path and cannot contain '/', '?', '#', '%' or spaces, nor be '.' or '..'; "
            f"got {show(name)}",
            field="deployment",
        )


def _check_unicode(d: Deployment) -> None:
    # Lone surrogates (from Python, or "\\ud800" in a JSON-ish source) cannot be encoded as
    # UTF-8: every request or the results files would fail later, far from the cause.
    for f in fields(d):
        if f.name == "api_key":
            continue  # checked (without echoing it) by resolve_api_key
        try:
            json.dumps(getattr(d, f.name), ensure_ascii=False, default=str).encode()
        except UnicodeEncodeError:
            raise ConfigError(
                f"{f.name} contains a lone surrogate (e.g. \\ud800), which is not valid "
                "Unicode text",
                field=f.name,
            ) from None


def _resolve_endpoint(d: Deployment) -> str:
    var = ENDPOINT_ENV[d.kind]
    url = d.endpoint or os.environ.get(var)
    if not url:
        raise ConfigError(
            f"deployment {d.name!r} has no endpoint: pass endpoint=... "
            f"(`endpoint:` in YAML) or set {var}",
            field="endpoint",
        )
    if not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"deployment {d.name!r}: endpoint must start with http:// or https://, "
            f"got {show(url)}",
            field="endpoint",
        )
    problem = url_problem(url)
    if problem:
        shown = "" if "@" in url else f" {show(url)}"  # user:password@ stays out of errors
        raise ConfigError(f"deployment {d.name!r}: endpoint{shown} {problem}", field="endpoint")
    return url.rstrip("/")


def _resolve_api_version(d: Deployment) -> str | None:
    if d.api_version:
        return d.api_version
    var = API_VERSION_ENV.get(d.kind)
    if var and os.environ.get(var):
        return os.environ[var]
    return DEFAULT_API_VERSION.get(d.kind)


def _normalise_stop(stop: Any) -> tuple[str, ...] | None:
    if stop is None:
        return None
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, Iterable) or not all(isinstance(s, str) and s for s in stop):
        raise ConfigError(
            f"stop must be a string or a list of strings, got {show(stop)}", field="stop"
        )
    return tuple(stop)
