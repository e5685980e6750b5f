"""Deployments from a YAML file, from a running local endpoint, or from whatever a user passed.

`load_deployments(path)` validates a file and names the file, line and field of any problem;
`local_deployments(endpoint)` points Deployments at a `compare.local_endpoint(...)`;
`as_deployments(obj)` is the one place that turns any `deployments=` argument (a Deployment, a
list, a YAML path, a local endpoint) into a list, for the runner, the explorer and the CLI alike.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import yaml

from compare._checks import check_choice, hint, show
from compare.deployments import FIELD_NAMES, KINDS, Deployment
from compare.errors import ConfigError

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
                raise self.error(f"{what}: keys must be strings, got {show(key)}", key_node)
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
            raise ld.error(
                f"{what}: unknown key {key!r}{hint(key, allowed)}; "
                f"allowed: {', '.join(allowed)}",
                key_node,
                key,
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
                    f"unknown top-level key {key!r}{hint(key, TOP_LEVEL_KEYS)}; "
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
    check_choice(kind, "kind", KINDS)
    served = list(endpoint.deployment_names)
    if isinstance(names, str):
        names = [names]  # one name, not its characters
    chosen = list(served if names is None else names)
    unknown = [n for n in chosen if n not in served]
    if unknown:
        raise ConfigError(
            f"the local endpoint serves no deployment {unknown[0]!r}{hint(unknown[0], served)}; "
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


def as_deployments(obj: Any) -> list[Deployment]:
    """A Deployment, a list of them, a deployments YAML path, or a local endpoint → a list with
    unique names. The one normaliser of every `deployments=` argument."""
    if isinstance(obj, Deployment):
        deps = [obj]
    elif isinstance(obj, str | os.PathLike):
        deps = load_deployments(obj)
    elif hasattr(obj, "deployment_names") and hasattr(obj, "url"):
        deps = local_deployments(obj)
    elif isinstance(obj, Iterable):
        deps = list(obj)
        bad = [d for d in deps if not isinstance(d, Deployment)]
        if bad:
            raise ConfigError(
                f"deployments must be Deployment objects, got {type(bad[0]).__name__}",
                field="deployments",
            )
    else:
        raise ConfigError(
            "deployments: pass a Deployment, a list of them, a path to a deployments YAML file "
            f"or a local endpoint; got {type(obj).__name__}",
            field="deployments",
        )
    if not deps:
        raise ConfigError("no deployments to run", field="deployments")
    seen: set[str] = set()
    for d in deps:
        if d.name in seen:
            raise ConfigError(f"duplicate deployment name {d.name!r}", field="deployments")
        seen.add(d.name)
    return deps
