"""Deployments from a YAML file, from a running local endpoint, or from whatever a user passed.

`load_deployments(path)` validates a file and names the file, line and field of any problem;
`local_deployments(endpoint)` points Deployments at a `compare.local_endpoint(...)`;
`as_deployments(obj)` is the one place that turns any `deployments=` argument (a Deployment, a
list, a YAML path, a local endpoint) into a list, for the runner, the explorer and the CLI alike.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, Final

from compare._checks import check_choice, hint
from compare._yaml import YamlList, YamlMap, line_of, load_file, plain
from compare.deployments import BATCH_KINDS, FIELD_NAMES, KINDS, Deployment
from compare.errors import ConfigError

# -- YAML ------------------------------------------------------------------------------------

TOP_LEVEL_KEYS: Final = ("defaults", "deployments")


def _mapping(value: Any, what: str, source: str, line: int | None) -> YamlMap:
    if not isinstance(value, YamlMap):
        raise ConfigError(f"{what} must be a mapping (key: value lines)", source=source,
                          line=line_of(value, line))
    return value


def _deployment_fields(
    data: YamlMap, what: str, source: str, *, allow_name: bool
) -> tuple[dict[str, Any], dict[str, int | None]]:
    """The fields of one deployment (or of `defaults:`) and the line of each value."""
    allowed = [n for n in FIELD_NAMES if allow_name or n != "name"]
    lines: dict[str, int | None] = {}
    for key in data:
        if key not in allowed:
            raise ConfigError(
                f"{what}: unknown key {key!r}{hint(key, allowed)}; "
                f"allowed: {', '.join(allowed)}",
                source=source,
                line=data.key_line(key),
                field=key,
            )
        lines[key] = data.value_line(key)
    return {key: plain(value) for key, value in data.items()}, lines


def _top_level(
    root: Any, source: str
) -> tuple[YamlList, dict[str, Any], dict[str, int | None]]:
    """The `deployments` list, the `defaults` values and their lines, from the file's root."""
    if root is None:
        raise ConfigError("the file is empty; expected a `deployments:` list", source=source)
    defaults: dict[str, Any] = {}
    default_lines: dict[str, int | None] = {}
    if isinstance(root, YamlList):
        items: Any = root
    else:
        top = _mapping(root, "top level", source, None)
        for key in top:
            if key not in TOP_LEVEL_KEYS:
                raise ConfigError(
                    f"unknown top-level key {key!r}{hint(key, TOP_LEVEL_KEYS)}; "
                    f"allowed: {', '.join(TOP_LEVEL_KEYS)}",
                    source=source,
                    line=top.key_line(key),
                    field=key,
                )
        if "deployments" not in top:
            raise ConfigError("missing the `deployments:` list", source=source, line=top.line,
                              field="deployments")
        if "defaults" in top:
            section = _mapping(top["defaults"], "defaults", source, top.value_line("defaults"))
            defaults, default_lines = _deployment_fields(section, "defaults", source,
                                                         allow_name=False)
        items = top["deployments"]
        if isinstance(items, YamlMap):
            items = _named_list(items, source)
        if not isinstance(items, YamlList):
            raise ConfigError(
                "`deployments` must be a list of mappings, or a mapping of name to settings; "
                f"for example:\n{_SNIPPET}", source=source,
                line=line_of(items, top.value_line("deployments")))
    if not items:
        raise ConfigError("`deployments` must be a non-empty list of mappings", source=source,
                          line=items.line)
    return items, defaults, default_lines


_SNIPPET: Final = """deployments:
  - name: gpt-4o-mini
    endpoint: https://RES.services.ai.azure.com/models
  - name: Phi-4
or
deployments:
  gpt-4o-mini: {endpoint: https://RES.services.ai.azure.com/models}
  Phi-4: {}"""


def _named_list(entries: YamlMap, source: str) -> YamlList:
    """`deployments: {name: {settings}}` (the local endpoint's shape) as the list shape, each
    entry with its `name` and lines kept."""
    out = YamlList()
    out.line = entries.line
    out.item_lines = []
    for name, settings in entries.items():
        if settings is None:
            settings = YamlMap()
            settings.line = entries.key_line(name)
        if not isinstance(settings, YamlMap):
            raise ConfigError(f"deployment {name!r}: its settings must be a mapping (key: value "
                              f"lines), for example:\n{_SNIPPET}", source=source,
                              line=entries.value_line(name))
        if "name" in settings:
            raise ConfigError(f"deployment {name!r}: give its name once, as the key (remove "
                              "`name:`)", source=source, line=settings.key_line("name"))
        item = YamlMap({"name": name, **settings})
        item.line = entries.key_line(name)
        item.key_lines = {"name": entries.key_line(name) or 0,
                          **getattr(settings, "key_lines", {})}
        item.value_lines = {"name": entries.key_line(name) or 0,
                            **getattr(settings, "value_lines", {})}
        out.append(item)
        out.item_lines.append(entries.key_line(name) or 0)
    return out


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

    A top-level list is read as the `deployments` list; `deployments:` may also map each name to
    its settings (the shape `compare serve --deployments` files use).
    """
    source = str(path)
    items, defaults, default_lines = _top_level(load_file(path, "deployments file"), source)
    out: list[Deployment] = []
    first_line: dict[str, int | None] = {}
    for index, raw in enumerate(items):
        item = _mapping(raw, "deployment", source, items.item_line(index))
        values, lines = _deployment_fields(item, "deployment", source, allow_name=True)
        if "name" not in values:
            raise ConfigError("deployment: missing required key 'name'", source=source,
                              line=item.line, field="name")
        dep = _build({**defaults, **values}, {**default_lines, **lines}, source, item.line)
        if dep.name in first_line:
            raise ConfigError(
                f"duplicate deployment name {dep.name!r} (first on line {first_line[dep.name]}); "
                "names must be unique in a run",
                source=source,
                line=lines["name"],
                field="name",
            )
        first_line[dep.name] = item.line
        out.append(dep)
    return out


def _build(
    values: dict[str, Any], lines: dict[str, int | None], source: str, item_line: int | None
) -> Deployment:
    try:
        return Deployment(**values)
    except ConfigError as e:
        # The Deployment's own message; the loader adds where it came from.
        raise ConfigError(
            str(e), source=source, line=lines.get(e.field or "", item_line), field=e.field
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
    orders deployments (default: every chat deployment it serves; embedding deployments can be
    named too); `overrides` set Deployment fields (e.g. temperature=0) on each. A batch kind
    (azure-openai-batch, openai-batch) picks from the endpoint's global-batch deployments
    (`.batch_deployment_names`). Labels carry the served model and version;
    `max_concurrent_requests` and `capacity_group` what the endpoint declares it can serve at
    once (one generation per loaded llama model).
    """
    check_choice(kind, "kind", KINDS)
    batch = kind in BATCH_KINDS
    chat = list(getattr(endpoint, "batch_deployment_names", []) if batch
                else endpoint.deployment_names)
    served = chat + ([] if batch else list(getattr(endpoint, "embedding_deployment_names", ())))
    if isinstance(names, str):
        names = [names]  # one name, not its characters
    chosen = list(chat if names is None else names)
    unknown = [n for n in chosen if n not in served]
    if unknown:
        what = "global-batch deployment" if batch else "deployment"
        raise ConfigError(
            f"the local endpoint serves no {what} {unknown[0]!r}{hint(unknown[0], served)}; "
            f"it serves: {', '.join(served) or 'none'}",
            field="names",
        )
    base = str(endpoint.url).rstrip("/")
    url = base + "/openai/v1" if kind in ("openai", "openai-batch") else base
    extra_labels = overrides.pop("labels", None) or {}
    return [
        Deployment(name=name, endpoint=url, kind=kind, api_key=endpoint.api_key,
                   **{**_declared(endpoint, name, extra_labels), **overrides})
        for name in chosen
    ]


def _declared(endpoint: Any, name: str, extra_labels: dict[str, Any]) -> dict[str, Any]:
    """What the local endpoint's configuration says about a deployment: labels (model,
    version, deployment type) and its capacity (requests at once, shared with whom)."""
    labels: dict[str, Any] = {"endpoint": "local"}
    fields: dict[str, Any] = {}
    config = getattr(endpoint, "config", None)
    spec = next((d for d in getattr(config, "deployments", ()) if d.name == name), None)
    if spec is not None:
        labels.update(model=spec.model, version=str(spec.version),
                      deployment_type=spec.deployment_type)
        fields["max_concurrent_requests"] = spec.max_concurrent_requests
        for group, _ in endpoint.shared_groups(endpoint.deployment_names):
            if name in group:
                fields["capacity_group"] = "+".join(group)
    fields["labels"] = {**labels, **extra_labels}
    return fields


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
