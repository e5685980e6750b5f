"""The one YAML loader of `compare`: safe, line-aware, and hostile-input proof.

Both deployments files (the client's `compare.deployments_file` and the local endpoint's
`compare.server.config`) read YAML through `load_file` / `load_text`. Mappings come back as
`YamlMap` and sequences as `YamlList`: plain `dict` / `list` subclasses that remember the line of
themselves, of each key and of each value, so a validator can name `file:line` for any field.

What it refuses, always as a `ConfigError` naming the file (and the line when one is known):
- bytes that are not UTF-8, and control characters (PyYAML's reader rejects them);
- anchors and aliases that expand past `MAX_VALUES` values ("billion laughs": nine short lines of
  `&a [*b, *b, ...]` expand to 10^9 values in anything that copies or serialises them) and
  aliases that refer to themselves, both checked on the node graph before anything is built;
- nesting deeper than `MAX_DEPTH` (and compose-time recursion past Python's limit);
- scalars PyYAML itself cannot build (an int past Python's 4300-digit str limit, 2020-13-45);
- duplicate keys (naming the line of the first) and keys that are not strings.

Unquoted dates stay the text written: YAML 1.1 would turn `api_version: 2024-10-21` into a `date`,
which no field accepts and JSON cannot carry. Invalid dates still fail.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final

import yaml

from compare._checks import show
from compare.errors import ConfigError

# Far beyond any real deployments file (a few hundred values), far below trouble.
MAX_VALUES: Final = 100_000
# Real files nest four or five levels; a hundred leaves room for any honest `extra:` body.
MAX_DEPTH: Final = 100

_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlMap(dict[str, Any]):
    """A mapping read from YAML: `line` of itself, `key_lines[key]`, `value_lines[key]`
    (1-based)."""

    line: int | None = None
    key_lines: dict[str, int]
    value_lines: dict[str, int]

    def key_line(self, key: str) -> int | None:
        """Line of `key`, else of the mapping itself."""
        return getattr(self, "key_lines", {}).get(key, self.line)

    def value_line(self, key: str) -> int | None:
        """Line where the value of `key` starts, else of the mapping itself."""
        return getattr(self, "value_lines", {}).get(key, self.line)


class YamlList(list[Any]):
    """A sequence read from YAML: `line` of itself and `item_lines[i]` (1-based)."""

    line: int | None = None
    item_lines: list[int]

    def item_line(self, index: int) -> int | None:
        """Line of item `index`, else of the sequence itself."""
        lines = getattr(self, "item_lines", [])
        return lines[index] if 0 <= index < len(lines) else self.line


def line_of(value: Any, default: int | None = None) -> int | None:
    """The line a YAML mapping or sequence started on; `default` for anything else."""
    line = getattr(value, "line", None)
    return line if isinstance(line, int) else default


def plain(value: Any) -> Any:
    """`value` with every YamlMap / YamlList turned back into a plain dict / list."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def read_text(path: str | os.PathLike[str], what: str) -> str:
    """The file's text; ConfigError (naming `what`, the file and the line) if unreadable or not
    UTF-8."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror}", source=source) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:  # e.g. a file saved as Latin-1: name it, no traceback
        raise ConfigError(
            f"not UTF-8 text (byte {data[exc.start]:#04x}; save the file as UTF-8)",
            source=source,
            line=data.count(b"\n", 0, exc.start) + 1,
        ) from None


def load_file(path: str | os.PathLike[str], what: str = "YAML file") -> Any:
    """Load a YAML file (see the module docstring); None for an empty document."""
    return load_text(read_text(path, what), str(path))


def load_text(text: str, source: str) -> Any:
    """Load YAML text; errors name `source` and the line. None for an empty document."""
    try:
        # For a str, PyYAML's reader checks every character here, before any parsing.
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:
        raise ConfigError(
            f"not valid YAML: character {chr(exc.character)!r} is not allowed "
            "(control characters must be escaped in a double-quoted string)",
            source=source,
            line=text.count("\n", 0, exc.position) + 1,
        ) from None
    loader.source = source
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _check_graph(root, source)
        return loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"not valid YAML: {exc.problem or exc}", source=source,
                          line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", source=source) from None
    except RecursionError:
        # PyYAML composes recursively; `[[[[...` thousands deep exhausts the stack first.
        raise ConfigError("not valid YAML: nested too deeply", source=source) from None
    finally:
        loader.dispose()


def _error(message: str, source: str, node: yaml.Node, field: str | None = None) -> ConfigError:
    return ConfigError(message, source=source, line=node.start_mark.line + 1, field=field)


def _check_graph(root: yaml.Node, source: str) -> None:
    """Reject self-referencing aliases, documents expanding past MAX_VALUES values and nesting
    past MAX_DEPTH, on the composed node graph (PyYAML shares an aliased node, so this costs one
    visit per distinct node however far the aliases would expand)."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise _error("not valid here: a YAML alias refers to itself", source, node)
        if depth > MAX_DEPTH:
            raise _error(f"not valid YAML: nested more than {MAX_DEPTH} levels deep", source,
                         node)
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k, depth + 1) + size(v, depth + 1) for k, v in node.value)
        active.discard(key)
        sizes[key] = total
        if total > MAX_VALUES:
            raise _error(f"the document expands to more than {MAX_VALUES} values (YAML aliases "
                         "repeating large blocks?)", source, node)
        return total

    size(root, 0)


class _Loader(yaml.SafeLoader):
    source = "<yaml>"

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except ConfigError:
            raise
        except (ValueError, OverflowError, TypeError) as exc:
            # PyYAML's own scalar constructors fail with these for scalars that look typed but
            # are not valid: an int past Python's 4300-digit limit, a date like 2020-13-45.
            raise _error(f"cannot read value: {exc}", self.source, node) from None


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> YamlMap:
    explicit = {id(k) for k, _ in node.value if k.tag != _MERGE_TAG}
    loader.flatten_mapping(node)  # `<<: *base` merge keys; explicit keys override merged ones
    out = YamlMap()
    out.line = node.start_mark.line + 1
    out.key_lines, out.value_lines = {}, {}
    key_nodes: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            quote = f" (quote it: '{key}')" if isinstance(key, int | float | None) else ""
            raise _error(f"keys must be strings, got {show(key)}{quote}", loader.source,
                         key_node)
        first = key_nodes.get(key)
        if first is not None and id(first) in explicit and id(key_node) in explicit:
            raise _error(f"duplicate key {key!r} (first on line {out.key_lines[key]})",
                         loader.source, key_node, key)
        out[key] = loader.construct_object(value_node, deep=True)
        key_nodes[key] = key_node
        out.key_lines[key] = key_node.start_mark.line + 1
        out.value_lines[key] = value_node.start_mark.line + 1
    return out


def _construct_list(loader: _Loader, node: yaml.SequenceNode) -> YamlList:
    out = YamlList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


def _timestamp_as_text(loader: _Loader, node: yaml.ScalarNode) -> str:
    loader.construct_yaml_timestamp(node)  # raises ValueError for 2020-13-45
    return str(loader.construct_scalar(node))


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_list)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)
