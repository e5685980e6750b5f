"""Deployments: what to call, where, with which defaults — from Python or a validated YAML file.

A `Deployment` is one column of a comparison. It names the endpoint (base URL and style), the
deployment name sent to the service, auth, default sampling parameters, labels for charts, prices
and client-side pacing. Keys are never stored from the environment: `resolve_api_key()` reads the
argument, then the variable, at the moment a client is built, and keys never appear in `repr`,
`to_dict()` or error messages.

Environment variables follow the SDKs' own conventions:

=================  =========================  ========================  ====================
kind               endpoint                   key                       api version
=================  =========================  ========================  ====================
azure-inference    AZURE_AI_CHAT_ENDPOINT     AZURE_AI_CHAT_KEY         (argument only)
azure-openai       AZURE_OPENAI_ENDPOINT      AZURE_OPENAI_API_KEY      OPENAI_API_VERSION
openai             OPENAI_BASE_URL            OPENAI_API_KEY            —
=================  =========================  ========================  ====================

An explicit argument always wins over a variable; `api_key_env` names a different variable.
"""

from __future__ import annotations

import difflib
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import yaml

from compare.errors import ConfigError, CredentialError

KINDS: Final = ("azure-inference", "azure-openai", "openai")
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
# What each SDK sends when not told otherwise (azure-ai-inference 1.0.0b9's default; the GA
# Azure OpenAI data-plane version in ../shared/specs).
DEFAULT_API_VERSION: Final[dict[str, str]] = {
    "azure-inference": "2024-05-01-preview",
    "azure-openai": "2024-10-21",
}
# Body keys `extra` may not carry (the runner and adapters own them).
RESERVED_BODY_KEYS: Final = (
    "model",
    "messages",
    "stream",
    "temperature",
    "max_tokens",
    "top_p",
    "seed",
    "stop",
)
FIELD_NAMES_WITH_OWN_SETTING: Final = ("temperature", "max_tokens", "top_p", "seed", "stop")
DEFAULT_CONNECT_TIMEOUT_S: Final = 10.0
DEFAULT_READ_TIMEOUT_S: Final = 120.0


def _is_number(value: Any) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float (YAML reads 400 digits as an int)
        return False


def _json_problem(value: Any, *, allow_nan: bool) -> str | None:
    try:
        json.dumps(value, allow_nan=allow_nan)
    except (TypeError, ValueError, RecursionError) as e:
        return str(e) if not isinstance(e, RecursionError) else "nested too deeply"
    return None


def _url_problem(url: str) -> str | None:
    """Why `url` cannot be a base URL, or None. Checked here because each SDK fails differently
    on a malformed one, some only at the first request and with their own exception types
    (ValueError, httpx InvalidURL, an ExceptionGroup for an out-of-range port)."""
    if any(c.isspace() or not c.isprintable() for c in url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port outside 0-65535
    except ValueError as e:
        return f"is not a valid URL ({e})"
    if not parts.hostname:
        return "has no host name"
    if "@" in parts.netloc:
        # It would be stored with the deployment (manifests, frames): keys go in api_key.
        return "must not contain credentials (user:password@); pass the key as api_key"
    if parts.query or parts.fragment or "?" in url or "#" in url:
        return "must be a base URL without '?' or '#' (set api_version separately)"
    return None


def _show(value: Any, limit: int = 80) -> str:
    """`repr` for error messages, bounded: file values can be huge (an int past Python's
    4300-digit str limit makes repr itself raise) or deeply nested."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        return f"<a {type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Deployment:
    """One deployment to compare. Construct directly or via `load_deployments`.

    `endpoint` falls back to the kind's endpoint variable and `api_version` to its version
    variable, at construction. The key is resolved only by `resolve_api_key()`.
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
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S

    def __post_init__(self) -> None:
        _check_str(self.name, "name", required=True)
        _check_choice(self.kind, "kind", KINDS)
        _check_choice(self.auth, "auth", AUTHS)
        if self.extra_parameters is not None:
            _check_choice(self.extra_parameters, "extra_parameters", EXTRA_PARAMETERS)
        for name in ("endpoint", "deployment", "api_key", "api_key_env", "api_version", "system"):
            _check_str(getattr(self, name), name)
        for name in ("name", "deployment"):
            value = getattr(self, name)
            if value is not None and not value.isprintable():
                # Names label chart axes, table rows and one-line CLI messages; a newline or an
                # escape sequence (YAML "\e[2J") would break or hijack them.
                raise ConfigError(
                    f"{name} must not contain line breaks, tabs or control characters, "
                    f"got {_show(value)}",
                    field=name,
                )
        self._set("deployment", self.deployment or self.name)
        self._set("endpoint", self._resolve_endpoint())
        self._set("api_version", self._resolve_api_version())
        self._check_numbers()
        self._set("stop", _normalise_stop(self.stop))
        for name in ("extra", "labels"):
            value = getattr(self, name)
            if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
                raise ConfigError(f"{name} must be a mapping with string keys", field=name)
            self._set(name, dict(value))
            problem = _json_problem(value, allow_nan=name == "labels")
            if problem:
                # `extra` goes into every request body and both into manifests: a value JSON
                # cannot carry (a set, NaN for the service) would fail mid-run, per request.
                raise ConfigError(f"{name} must hold JSON values: {problem}", field=name)
        reserved = sorted(set(self.extra) & set(RESERVED_BODY_KEYS))
        if reserved:
            # Adapters merge `extra` into the body last: it would silently replace the prompt,
            # the model or streaming, or fight the parameter of the same name.
            own = [k for k in reserved if k in FIELD_NAMES_WITH_OWN_SETTING]
            hint = f"; set {', '.join(own)} as {'a field' if len(own) == 1 else 'fields'}"
            raise ConfigError(
                f"extra must not set {', '.join(reserved)}: the comparison sets "
                f"{'it' if len(reserved) == 1 else 'them'}" + (hint if own else ""),
                field="extra",
            )
        self._check_service_name()
        self._check_unicode()
        if self.auth == "entra" and self.api_key is not None:
            raise ConfigError(
                f"deployment {self.name!r}: auth='entra' uses a Microsoft Entra ID token; "
                "remove api_key (or use auth='key')",
                field="auth",
            )

    def _check_service_name(self) -> None:
        # Azure OpenAI puts the deployment name into the URL path (…/deployments/NAME/…);
        # the other kinds send it as the body's `model`, where any text is fine.
        name = str(self.deployment)
        if self.kind == "azure-openai" and (
            name in (".", "..")
            or any(c in "/?#%" or c.isspace() for c in name)
            or not name.isprintable()
        ):
            raise ConfigError(
                f"deployment {self.name!r}: an Azure OpenAI deployment name goes into the URL "
                f"path and cannot contain '/', '?', '#', '%' or spaces, nor be '.' or '..'; "
                f"got {_show(name)}",
                field="deployment",
            )

    def _check_unicode(self) -> None:
        # Lone surrogates (from Python, or "\\ud800" in a JSON-ish source) cannot be encoded as
        # UTF-8: every request or the results files would fail later, far from the cause.
        for f in fields(self):
            if f.name == "api_key":
                continue  # checked (without echoing it) by resolve_api_key
            try:
                json.dumps(getattr(self, f.name), ensure_ascii=False, default=str).encode()
            except UnicodeEncodeError:
                raise ConfigError(
                    f"{f.name} contains a lone surrogate (e.g. \\ud800), which is not valid "
                    "Unicode text",
                    field=f.name,
                ) from None

    def __hash__(self) -> int:
        # Dict fields make the generated hash fail; identity in a run is the name and target.
        return hash((self.name, self.kind, self.endpoint, self.deployment))

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def _resolve_endpoint(self) -> str:
        var = ENDPOINT_ENV[self.kind]
        url = self.endpoint or os.environ.get(var)
        if not url:
            raise ConfigError(
                f"deployment {self.name!r} has no endpoint: pass endpoint=... "
                f"(`endpoint:` in YAML) or set {var}",
                field="endpoint",
            )
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"deployment {self.name!r}: endpoint must start with http:// or https://, "
                f"got {_show(url)}",
                field="endpoint",
            )
        problem = _url_problem(url)
        if problem:
            shown = "" if "@" in url else f" {_show(url)}"  # user:password@ stays out of errors
            raise ConfigError(
                f"deployment {self.name!r}: endpoint{shown} {problem}", field="endpoint"
            )
        return url.rstrip("/")

    def _resolve_api_version(self) -> str | None:
        if self.api_version:
            return self.api_version
        var = API_VERSION_ENV.get(self.kind)
        if var and os.environ.get(var):
            return os.environ[var]
        return DEFAULT_API_VERSION.get(self.kind)

    def _check_numbers(self) -> None:
        ranges: dict[str, tuple[float, float]] = {
            "temperature": (0.0, 2.0),
            "top_p": (0.0, 1.0),
            "price_input_per_1k": (0.0, math.inf),
            "price_output_per_1k": (0.0, math.inf),
        }
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if value is None:
                continue
            if not _is_number(value) or not low <= value <= high:
                raise ConfigError(
                    f"{name} must be a number in [{low:g}, {high:g}], got {_show(value)}",
                    field=name,
                )
        for name in ("max_tokens", "concurrency"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1
            ):
                raise ConfigError(
                    f"{name} must be a positive integer, got {_show(value)}", field=name
                )
        if self.seed is not None and (
            not isinstance(self.seed, int) or isinstance(self.seed, bool)
        ):
            raise ConfigError(f"seed must be an integer, got {_show(self.seed)}", field="seed")
        for name in (
            "requests_per_minute",
            "tokens_per_minute",
            "connect_timeout_s",
            "read_timeout_s",
        ):
            value = getattr(self, name)
            # Pacing may be off (None); a timeout may not: None would mean waiting forever.
            optional = not name.endswith("_timeout_s")
            if (value is not None or not optional) and (not _is_number(value) or value <= 0):
                raise ConfigError(
                    f"{name} must be a positive number, got {_show(value)}", field=name
                )

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


def _check_str(value: Any, name: str, *, required: bool = False) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or not value.strip():
        # Never echo what was given as a key, however malformed.
        got = type(value).__name__ if name == "api_key" else _show(value)
        raise ConfigError(f"{name} must be a non-empty string, got {got}", field=name)


def _check_choice(value: Any, name: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(
            f"{name} must be one of {', '.join(choices)}; "
            f"got {_show(value)}{_hint(value, choices)}",
            field=name,
        )


def _normalise_stop(stop: Any) -> tuple[str, ...] | None:
    if stop is None:
        return None
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, Iterable) or not all(isinstance(s, str) and s for s in stop):
        raise ConfigError(
            f"stop must be a string or a list of strings, got {_show(stop)}", field="stop"
        )
    return tuple(stop)


def _hint(word: Any, choices: Iterable[str]) -> str:
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# -- YAML ------------------------------------------------------------------------------------

TOP_LEVEL_KEYS: Final = ("defaults", "deployments")
# Far beyond any real deployments file (a few hundred values), far below trouble.
MAX_YAML_VALUES: Final = 100_000


class _SafeLoader(yaml.SafeLoader):
    """SafeLoader that keeps dates as the text written: `api_version: 2024-10-21` and
    `labels: {version: 2024-08-06}` mean strings (YAML 1.1 would make them `date` objects,
    which no field accepts and JSON cannot carry). Invalid dates still fail to load."""


def _timestamp_as_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    loader.construct_yaml_timestamp(node)  # raises ValueError for 2020-13-45
    return str(loader.construct_scalar(node))


_SafeLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


class _Loader:
    """Walks a composed YAML node tree so every value keeps its line for error messages."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        try:
            # For a str, PyYAML's reader checks every character here, before any parsing.
            self.loader = _SafeLoader(text)
        except yaml.reader.ReaderError as e:
            line = text.count("\n", 0, e.position) + 1
            raise ConfigError(
                f"not valid YAML: character {chr(e.character)!r} is not allowed "
                "(control characters must be escaped in a double-quoted string)",
                source=source,
                line=line,
            ) from None

    def error(self, message: str, node: yaml.Node | None, field: str | None = None) -> ConfigError:
        line = node.start_mark.line + 1 if node is not None else None
        return ConfigError(message, source=self.source, line=line, field=field)

    def root(self) -> yaml.Node | None:
        try:
            node = self.loader.get_single_node()
            if node is not None:
                self._check_size(node)
            return node
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            line = mark.line + 1 if mark is not None else None
            raise ConfigError(
                f"not valid YAML: {e.problem or e}", source=self.source, line=line
            ) from None
        except yaml.YAMLError as e:
            raise ConfigError(f"not valid YAML: {e}", source=self.source) from None
        except RecursionError:
            # PyYAML composes recursively; `[[[[...` thousands deep exhausts the stack.
            raise ConfigError("not valid YAML: nested too deeply", source=self.source) from None

    def _check_size(self, root: yaml.Node) -> None:
        """Rejects documents whose aliases expand past MAX_YAML_VALUES values.

        PyYAML shares an aliased node, so nine lines of `&a [*b, *b, ...]` ("billion laughs")
        compose cheaply but expand to 10^9 values in anything that copies or serialises them
        (validation, manifests): memory runs out. Sizes are counted per distinct node."""
        sizes: dict[int, int] = {}
        active: set[int] = set()

        def size(node: yaml.Node) -> int:
            key = id(node)
            if key in sizes:
                return sizes[key]
            if key in active:
                raise self.error("not valid here: a YAML alias refers to itself", node)
            active.add(key)
            total = 1
            if isinstance(node, yaml.SequenceNode):
                total += sum(size(child) for child in node.value)
            elif isinstance(node, yaml.MappingNode):
                total += sum(size(k) + size(v) for k, v in node.value)
            active.discard(key)
            sizes[key] = total
            if total > MAX_YAML_VALUES:
                raise self.error(
                    f"the document expands to more than {MAX_YAML_VALUES} values "
                    "(YAML aliases repeating large blocks?)",
                    node,
                )
            return total

        size(root)

    def value(self, node: yaml.Node) -> Any:
        """Plain Python value of a node (scalars typed as YAML 1.1 safe loading types them)."""
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as e:
            raise self.error(f"cannot read value: {e.problem or e}", node) from None
        except yaml.YAMLError as e:
            raise self.error(f"cannot read value: {e}", node) from None
        except (ValueError, OverflowError, TypeError) as e:
            # PyYAML's own constructors raise these for scalars that look typed but are not
            # valid: an int past Python's 4300-digit limit, a date like 2020-13-45.
            raise self.error(f"cannot read value: {e}", node) from None
        except RecursionError:
            raise self.error("cannot read value: nested too deeply", node) from None

    def mapping(self, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(f"{what} must be a mapping (key: value lines)", node)
        items: list[tuple[str, yaml.Node, yaml.Node]] = []
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = self.value(key_node)
            if not isinstance(key, str):
                raise self.error(f"{what}: keys must be strings, got {_show(key)}", key_node)
            if key in seen:
                raise self.error(
                    f"{what}: duplicate key {key!r} (first on line {seen[key]})", key_node, key
                )
            seen[key] = key_node.start_mark.line + 1
            items.append((key, key_node, value_node))
        return items


def _deployment_fields(
    ld: _Loader, node: yaml.Node, what: str, *, allow_name: bool
) -> tuple[dict[str, Any], dict[str, yaml.Node]]:
    allowed = [n for n in FIELD_NAMES if allow_name or n != "name"]
    values: dict[str, Any] = {}
    nodes: dict[str, yaml.Node] = {}
    for key, key_node, value_node in ld.mapping(node, what):
        if key not in allowed:
            hint = _hint(key, allowed)
            raise ld.error(
                f"{what}: unknown key {key!r}{hint}; allowed: {', '.join(allowed)}", key_node, key
            )
        values[key] = ld.value(value_node)
        nodes[key] = value_node
    return values, nodes


def load_deployments(path: str | os.PathLike[str]) -> list[Deployment]:
    """Deployments from a YAML file, validated; errors name the file, line and field.

    Shape::

        defaults:            # optional; applied to every deployment, each may override
          endpoint: https://my-resource.services.ai.azure.com/models
          kind: azure-inference
          temperature: 0
        deployments:
          - name: gpt-4o-mini
            labels: {model: gpt-4o-mini, capacity_type: standard}
            price_input_per_1k: 0.00015

    A top-level list is read as the `deployments` list.
    """
    p = Path(path)
    source = str(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read deployments file: {e.strerror}", source=source) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"not UTF-8 text (byte {data[e.start]:#04x}; save the file as UTF-8)",
            source=source,
            line=data.count(b"\n", 0, e.start) + 1,
        ) from None
    ld = _Loader(text, source)
    root = ld.root()
    if root is None:
        raise ConfigError("the file is empty; expected a `deployments:` list", source=source)
    defaults: dict[str, Any] = {}
    default_nodes: dict[str, yaml.Node] = {}
    if isinstance(root, yaml.SequenceNode):
        items_node: yaml.Node = root
    else:
        top = ld.mapping(root, "top level")
        keys = {k: (kn, vn) for k, kn, vn in top}
        for key, key_node, _ in top:
            if key not in TOP_LEVEL_KEYS:
                raise ld.error(
                    f"unknown top-level key {key!r}{_hint(key, TOP_LEVEL_KEYS)}; "
                    f"allowed: {', '.join(TOP_LEVEL_KEYS)}",
                    key_node,
                    key,
                )
        if "deployments" not in keys:
            raise ld.error("missing the `deployments:` list", root, "deployments")
        if "defaults" in keys:
            defaults, default_nodes = _deployment_fields(
                ld, keys["defaults"][1], "defaults", allow_name=False
            )
        items_node = keys["deployments"][1]
    if not isinstance(items_node, yaml.SequenceNode) or not items_node.value:
        raise ld.error("`deployments` must be a non-empty list of mappings", items_node)
    out: list[Deployment] = []
    first_line: dict[str, int] = {}
    for item in items_node.value:
        values, nodes = _deployment_fields(ld, item, "deployment", allow_name=True)
        if "name" not in values:
            raise ld.error("deployment: missing required key 'name'", item, "name")
        merged = {**defaults, **values}
        merged_nodes = {**default_nodes, **nodes}
        dep = _build(ld, merged, merged_nodes, item)
        if dep.name in first_line:
            raise ld.error(
                f"duplicate deployment name {dep.name!r} (first on line {first_line[dep.name]}); "
                "names must be unique in a run",
                nodes["name"],
                "name",
            )
        first_line[dep.name] = item.start_mark.line + 1
        out.append(dep)
    return out


def _build(
    ld: _Loader, values: dict[str, Any], nodes: dict[str, yaml.Node], item: yaml.Node
) -> Deployment:
    try:
        return Deployment(**values)
    except ConfigError as e:
        node = nodes.get(e.field or "", item)
        # The Deployment's own message; the loader adds where it came from.
        raise ConfigError(
            str(e), source=ld.source, line=node.start_mark.line + 1, field=e.field
        ) from None


# -- local endpoint --------------------------------------------------------------------------


def local_deployments(
    endpoint: Any,
    kind: str = "azure-inference",
    names: Iterable[str] | None = None,
    **overrides: Any,
) -> list[Deployment]:
    """Deployments that point at a running local endpoint (`compare.local_endpoint(...)`).

    `endpoint` is anything with `.url`, `.api_key` and `.deployment_names`. `names` picks and
    orders deployments (default: all the endpoint serves); `overrides` set Deployment fields
    (e.g. temperature=0) on each.
    """
    _check_choice(kind, "kind", KINDS)
    served = list(endpoint.deployment_names)
    if isinstance(names, str):
        names = [names]  # one name, not its characters
    chosen = list(served if names is None else names)
    unknown = [n for n in chosen if n not in served]
    if unknown:
        hint = _hint(unknown[0], served)
        raise ConfigError(
            f"the local endpoint serves no deployment {unknown[0]!r}{hint}; "
            f"it serves: {', '.join(served)}",
            field="names",
        )
    base = str(endpoint.url).rstrip("/")
    url = base + "/openai/v1" if kind == "openai" else base
    labels = {"endpoint": "local", **(overrides.pop("labels", None) or {})}
    return [
        Deployment(
            name=name,
            endpoint=url,
            kind=kind,
            api_key=endpoint.api_key,
            labels=labels,
            **overrides,
        )
        for name in chosen
    ]
