"""Stage 1, load: YAML text -> plain data plus the source position of every node.

The spec is untrusted input edited by hand, so the loader is strict where YAML is lax:

- duplicate keys are errors (at the second occurrence), not a silent last-one-wins;
- anchors and aliases are refused outright, so an alias bomb costs nothing;
- input over 1 MiB is refused before parsing;
- scalars follow YAML 1.2's core schema, not 1.1's: `on`, `yes`, `no`, `off` stay strings,
  and a number with a leading zero (`0755`) stays the string it was written as. A field that
  wants a boolean or a number then reports the string instead of silently changing meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlc.compiler.diagnostics import Diagnostic, SourcePosition, error

MAX_SPEC_BYTES = 1024 * 1024
MAX_DEPTH = 64

FieldPath = tuple[str | int, ...]

_PLAIN = "mlc:plain"
_NULL = {"", "~", "null", "Null", "NULL"}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}
_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_OCT = re.compile(r"0o[0-7]+")
# No leading zeros: a bare `0755` stays the string it was written as (YAML 1.1 read it as octal).
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|(0|[1-9][0-9]*)(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_STR_TAG = "tag:yaml.org,2002:str"


@dataclass(frozen=True)
class SourceMap:
    """Where each node of a loaded document came from."""

    file: str
    values: dict[FieldPath, SourcePosition] = field(default_factory=dict)
    keys: dict[FieldPath, SourcePosition] = field(default_factory=dict)

    def value_position(self, path: FieldPath) -> SourcePosition:
        """The position of the value at `path`, or of its nearest ancestor that exists."""
        for i in range(len(path), 0, -1):
            prefix = path[:i]
            if prefix in self.values:
                return self.values[prefix]
        return SourcePosition(self.file, 1, 1)

    def key_position(self, path: FieldPath) -> SourcePosition:
        """The position of the mapping key that names `path` (falls back to the value)."""
        return self.keys.get(path) or self.value_position(path)


@dataclass(frozen=True)
class LoadedDocument:
    """A parsed spec: plain data (dicts, lists, scalars) and its source map."""

    data: dict[str, Any]
    source: SourceMap


class _Refused(Exception):
    def __init__(self, message: str, mark: yaml.Mark | None, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark
        self.hint = hint


class _StrictComposer(yaml.SafeLoader):
    """SafeLoader's composer, refusing anchors/aliases and leaving scalar typing to us."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _Refused(
                "YAML anchors and aliases (&name, *name) are not allowed in mlproject.yaml",
                event.start_mark,
                "write the values out; use `environments:` overlays to share a base",
            )
        return super().compose_node(parent, index)  # type: ignore[no-any-return]

    def resolve(self, kind: type, value: str, implicit: tuple[bool, bool]) -> str:  # type: ignore[override]
        # Plain scalars get typed by `_plain_scalar` (YAML 1.2 core), not by the 1.1 resolver.
        if kind is yaml.ScalarNode and implicit[0]:
            return _PLAIN
        return super().resolve(kind, value, implicit)  # type: ignore[no-any-return]


def _plain_scalar(text: str) -> Any:
    if text in _NULL:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if _INT.fullmatch(text):
        return int(text)
    if _HEX.fullmatch(text):
        return int(text, 16)
    if _OCT.fullmatch(text):
        return int(text[2:], 8)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def _position(file: str, mark: yaml.Mark) -> SourcePosition:
    return SourcePosition(file, mark.line + 1, mark.column + 1)


class _Builder:
    """Walks composed nodes into plain data, recording positions as it goes."""

    def __init__(self, file: str) -> None:
        self.source = SourceMap(file)

    def build(self, node: yaml.Node, path: FieldPath) -> Any:
        if len(path) > MAX_DEPTH:
            raise _Refused(f"nesting deeper than {MAX_DEPTH} levels", node.start_mark)
        self.source.values[path] = _position(self.source.file, node.start_mark)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._scalar(node)

    def _mapping(self, node: yaml.MappingNode, path: FieldPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, yaml.Mark] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Refused("mapping keys must be plain strings", key_node.start_mark)
            if key_node.tag == "tag:yaml.org,2002:merge" or (key_node.tag == _PLAIN and key_node.value == "<<"):
                raise _Refused("YAML merge keys (<<) are not allowed", key_node.start_mark)
            key = str(key_node.value)
            if key in first_seen:
                first = first_seen[key]
                raise _Refused(
                    f"duplicate key '{key}' (first defined at line {first.line + 1})",
                    key_node.start_mark,
                    "each key may appear once per mapping; merge the two entries",
                )
            first_seen[key] = key_node.start_mark
            self.source.keys[(*path, key)] = _position(self.source.file, key_node.start_mark)
            result[key] = self.build(value_node, (*path, key))
        return result

    def _scalar(self, node: yaml.Node) -> Any:
        if node.tag == _PLAIN:
            return _plain_scalar(node.value)
        if node.tag == _STR_TAG or node.tag is None:
            return node.value
        if node.tag.startswith("tag:yaml.org,2002:") and node.tag[18:] in {"int", "float", "bool", "null"}:
            return _plain_scalar(node.value)
        raise _Refused(f"unsupported YAML tag '{node.tag}'", node.start_mark, "remove the tag")


def parse_spec_text(text: str, file: str = "mlproject.yaml") -> tuple[LoadedDocument | None, list[Diagnostic]]:
    """Parse spec text into a `LoadedDocument`, or return the diagnostics that explain why not."""
    origin = SourcePosition(file, 1, 1)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_SPEC_BYTES:
        return None, [error(f"the spec is larger than {MAX_SPEC_BYTES // 1024} KiB", origin)]
    builder = _Builder(file)
    try:
        loader = _StrictComposer(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
        data = builder.build(node, ()) if node is not None else None
    except _Refused as refused:
        where = _position(file, refused.mark) if refused.mark else origin
        return None, [error(refused.message, where, hint=refused.hint)]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = _position(file, mark) if mark else origin
        problem = " ".join(filter(None, [exc.context, exc.problem])) or "invalid YAML"
        context = exc.context_mark
        hint = (
            f"the construct started at line {context.line + 1}, column {context.column + 1}"
            if context and mark and context.line != mark.line
            else ""
        )
        return None, [error(f"invalid YAML: {problem}", where, hint=hint)]
    except yaml.YAMLError as exc:
        return None, [error(f"invalid YAML: {exc}", origin)]
    except RecursionError:
        return None, [error(f"invalid YAML: nesting deeper than {MAX_DEPTH} levels", origin)]
    if not isinstance(data, dict):
        found = "an empty file" if data is None else f"a {type(data).__name__}"
        return None, [
            error(
                f"the spec must be a mapping, found {found}",
                origin,
                hint="start with `apiVersion: mlc/v1` and `kind: MLProject` (run `mlc init`)",
            )
        ]
    return LoadedDocument(data, builder.source), []


def read_spec(path: Path, display: str | None = None) -> tuple[LoadedDocument | None, list[Diagnostic]]:
    """Read and parse the spec file at `path` (the loader's only I/O); `display` names it in errors."""
    name = display or str(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SPEC_BYTES + 1)
    except FileNotFoundError:
        return None, [error(f"{path}: no such file", hint="create one with `mlc init`, or pass -f PATH")]
    except IsADirectoryError:
        return None, [error(f"{path}: is a directory, expected a YAML file")]
    except OSError as exc:
        return None, [error(f"{path}: cannot read: {exc.strerror}")]
    if len(raw) > MAX_SPEC_BYTES:
        return None, [error(f"the spec is larger than {MAX_SPEC_BYTES // 1024} KiB", SourcePosition(name, 1, 1))]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [error(f"not UTF-8 text (byte {exc.start})", SourcePosition(name, 1, 1))]
    return parse_spec_text(text, name)
