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

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlc.compiler.diagnostics import Diagnostic, SourcePosition, error

MAX_SPEC_BYTES = 1024 * 1024
MAX_DEPTH = 64

FieldPath = tuple[str | int, ...]

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


# libyaml's parser (C) when PyYAML has it: the spec is parsed on every plan, of every spec in a
# monorepo. Only its event stream is used; composing data from events is ours (below).
_EVENT_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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


def _is_plain(event: yaml.ScalarEvent) -> bool:
    return event.tag is None and event.implicit[0] and not event.style


class _Builder:
    """Builds plain data from YAML events, recording positions as it goes.

    Working on events (not composed nodes) lets the C parser do the scanning while the rules
    stay ours: no anchors or aliases, no merge keys, string keys, YAML 1.2 core scalars.
    """

    def __init__(self, file: str, events: Iterator[yaml.Event]) -> None:
        self.source = SourceMap(file)
        self.events = events

    def document(self) -> Any:
        """The single document of the stream (None for an empty stream)."""
        self._expect(yaml.StreamStartEvent)
        event = next(self.events)
        if isinstance(event, yaml.StreamEndEvent):
            return None
        data = self._node(next(self.events), ())
        self._expect(yaml.DocumentEndEvent)
        event = next(self.events)
        if not isinstance(event, yaml.StreamEndEvent):
            raise _Refused(
                "expected a single YAML document, found another one",
                event.start_mark,
                "remove the `---` line: mlproject.yaml holds one document",
            )
        return data

    def _expect(self, kind: type) -> None:
        event = next(self.events)
        if not isinstance(event, kind):  # pragma: no cover - the parser guarantees the structure
            raise _Refused(f"unexpected YAML structure ({type(event).__name__})", event.start_mark)

    def _node(self, event: yaml.Event, path: FieldPath) -> Any:
        if len(path) > MAX_DEPTH:
            raise _Refused(f"nesting deeper than {MAX_DEPTH} levels", event.start_mark)
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _Refused(
                "YAML anchors and aliases (&name, *name) are not allowed in mlproject.yaml",
                event.start_mark,
                "write the values out; use `environments:` overlays to share a base",
            )
        self.source.values[path] = _position(self.source.file, event.start_mark)
        if isinstance(event, yaml.MappingStartEvent):
            return self._mapping(path)
        if isinstance(event, yaml.SequenceStartEvent):
            items = []
            while not isinstance(event := next(self.events), yaml.SequenceEndEvent):
                items.append(self._node(event, (*path, len(items))))
            return items
        return self._scalar(event)

    def _mapping(self, path: FieldPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, yaml.Mark] = {}
        while not isinstance(key_event := next(self.events), yaml.MappingEndEvent):
            if not isinstance(key_event, yaml.ScalarEvent) or key_event.anchor:
                raise _Refused("mapping keys must be plain strings", key_event.start_mark)
            if (key_event.value == "<<" and _is_plain(key_event)) or key_event.tag == "tag:yaml.org,2002:merge":
                raise _Refused("YAML merge keys (<<) are not allowed", key_event.start_mark)
            key = str(key_event.value)
            if key in first_seen:
                first = first_seen[key]
                raise _Refused(
                    f"duplicate key '{key}' (first defined at line {first.line + 1})",
                    key_event.start_mark,
                    "each key may appear once per mapping; merge the two entries",
                )
            first_seen[key] = key_event.start_mark
            self.source.keys[(*path, key)] = _position(self.source.file, key_event.start_mark)
            result[key] = self._node(next(self.events), (*path, key))
        return result

    def _scalar(self, event: yaml.ScalarEvent) -> Any:
        value = self._scalar_value(event)
        if isinstance(value, float) and not math.isfinite(value):
            # `1e400` reads as infinity: it would reach manifests and alerts as `inf`.
            raise _Refused(f"the number {event.value} is too large", event.start_mark, "write a finite number")
        return value

    def _scalar_value(self, event: yaml.ScalarEvent) -> Any:
        if _is_plain(event):
            return _plain_scalar(event.value)
        if event.tag in (None, "!", _STR_TAG):
            return event.value
        if event.tag.startswith("tag:yaml.org,2002:") and event.tag[18:] in {"int", "float", "bool", "null"}:
            return _plain_scalar(event.value)
        raise _Refused(f"unsupported YAML tag '{event.tag}'", event.start_mark, "remove the tag")


def _character_at(text: str, mark: yaml.Mark) -> str:
    lines = text.splitlines()
    return lines[mark.line][mark.column : mark.column + 1] if mark.line < len(lines) else ""


def parse_spec_text(text: str, file: str = "mlproject.yaml") -> tuple[LoadedDocument | None, list[Diagnostic]]:
    """Parse spec text into a `LoadedDocument`, or return the diagnostics that explain why not."""
    origin = SourcePosition(file, 1, 1)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_SPEC_BYTES:
        return None, [error(f"the spec is larger than {MAX_SPEC_BYTES // 1024} KiB", origin)]
    builder = _Builder(file, yaml.parse(text, Loader=_EVENT_LOADER))
    try:
        data = builder.document()
    except _Refused as refused:
        where = _position(file, refused.mark) if refused.mark else origin
        return None, [error(refused.message, where, hint=refused.hint)]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = _position(file, mark) if mark else origin
        problem = " ".join(filter(None, [exc.context, exc.problem])) or "invalid YAML"
        if mark is not None and _character_at(text, mark) == "\t":
            return None, [error("invalid YAML: a tab character; YAML indents with spaces only", where)]
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
    if path.is_symlink() and path.resolve().is_file():
        # mlc writes beside the spec: through a link, that would be wherever the link points
        # (a pipe such as /dev/stdin is read, never written beside).
        return None, [error(f"{path}: is a symbolic link", hint="use the file itself (mlc writes beside the spec)")]
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
