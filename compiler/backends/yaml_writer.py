"""The one YAML writer for structured artifacts (Kubernetes manifests, workflows).

Deterministic bytes: keys keep the order the backend built them in (apiVersion, kind, metadata,
spec, as Kubernetes writes them), block style, sequences indented, no line folding, `\\n` line
ends. Strings that any YAML reader could take for something else are double-quoted: YAML 1.1
booleans (`on`, `yes`, `n`), nulls, numbers including `0755`, `1_000` and `1:20`, and dates.

Comments are not data, but some readers need them (a GitHub Action pinned to a commit SHA keeps
its tag as a trailing comment; zizmor wants write permissions explained). A value wrapped in
`Commented(value, comment)` is written as the plain string followed by `  # comment` on its line.

Two writers produce the same bytes. PyYAML's emitter (`_ArtifactDumper`) is the reference and
handles everything; it is pure Python and costs ~6 ms for a typical manifest, which dominated
planning a monorepo. `_FastDocument` writes the documents our backends build (mappings, lists,
plain ASCII scalars) directly, and gives a document back to PyYAML whenever it meets anything
it does not cover (non-ASCII text, control characters, very long lines, odd keys). The tests
compare both writers on every artifact of the examples and on random documents.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import yaml
from yaml.emitter import Emitter
from yaml.events import ScalarEvent
from yaml.nodes import Node, ScalarNode
from yaml.resolver import Resolver

# Everything a YAML 1.1 or 1.2 reader (PyYAML, go-yaml v2/v3, GitHub's parser) may not read
# as a string.
_AMBIGUOUS = re.compile(
    r"""(?x)^(
        y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF
      | ~|null|Null|NULL|
      | [-+]?(\d[\d_]*)?\.?[\d_]*([eE][-+]?\d+)?
      | [-+]?0[xob][0-9a-fA-F_]+
      | [-+]?\d[\d_]*(:[0-5]?\d)+(\.\d*)?
      | [-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)
      | \d{4}-\d\d?-\d\d?([Tt ].*)?
      | [<=]
    )$"""
)


@dataclass(frozen=True)
class Commented:
    """A one-line string value written with a trailing comment, e.g. `uses: a/b@<sha>  # v1.2.3`.

    Only for mapping values and sequence items (a comment after a key would end the line before
    its `:`); a multi-line value has no line to put the comment on.
    """

    value: str
    comment: str

    def __post_init__(self) -> None:
        if "\n" in self.value or "\n" in self.comment or "\r" in self.comment:
            raise ValueError(f"a commented value and its comment must be one line: {self.value!r}")


def dump_yaml(documents: Iterable[dict[str, Any]], header: str = "") -> bytes:
    """Serialise documents (separated by `---`) with an optional comment header."""
    parts = []
    for doc in documents:
        text = _FastDocument.write(doc)
        parts.append(text if text is not None else _pyyaml_document(doc))
    prefix = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return (prefix + "---\n".join(parts)).encode("utf-8")


# --- the reference writer: PyYAML's emitter -----------------------------------------------------


class _CommentedScalarNode(ScalarNode):
    """A scalar node that carries the comment to write after it."""

    def __init__(self, value: str, style: str | None, comment: str) -> None:
        super().__init__("tag:yaml.org,2002:str", value, style=style)
        self.comment = comment


class _ArtifactDumper(yaml.SafeDumper):
    # The serializer turns nodes into events and the emitter writes events, with a look-ahead
    # queue in between; the comment travels on the scalar's event so it reaches the right line.
    _comment_of_next_scalar: str | None = None

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Indent sequences under their key, as kubectl and most style guides do.
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True  # never emit anchors: every document stands alone

    def serialize_node(self, node: Node, parent: Node | None, index: Any) -> None:
        if isinstance(node, _CommentedScalarNode):
            self._comment_of_next_scalar = node.comment
        super().serialize_node(node, parent, index)

    def emit(self, event: Any) -> None:
        if isinstance(event, ScalarEvent) and self._comment_of_next_scalar is not None:
            event.comment = self._comment_of_next_scalar  # type: ignore[attr-defined]
            self._comment_of_next_scalar = None
        super().emit(event)

    def process_scalar(self) -> None:
        comment = getattr(self.event, "comment", None)
        if comment is not None and self.simple_key_context:
            raise ValueError(f"a mapping key cannot carry a comment: {self.event.value!r}")
        super().process_scalar()
        if comment is not None:
            self.write_indicator(f" # {comment}", True)


def _scalar_style(value: str) -> str | None:
    if "\n" in value:
        return "|"
    if _AMBIGUOUS.match(value) or value != value.strip():
        return '"'
    return None


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=_scalar_style(value))


def _represent_commented(dumper: yaml.SafeDumper, value: Commented) -> ScalarNode:
    return _CommentedScalarNode(value.value, _scalar_style(value.value), value.comment)


_ArtifactDumper.add_representer(str, _represent_str)
_ArtifactDumper.add_representer(Commented, _represent_commented)


def _pyyaml_document(doc: Any) -> str:
    return yaml.dump(
        doc,
        Dumper=_ArtifactDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=10_000,
        indent=2,
    )


# --- the fast writer: the same bytes for the documents backends build ---------------------------


class _Unsupported(Exception):
    """Raised inside `_FastDocument` to hand the whole document to PyYAML."""


# Printable ASCII; the fast writer leaves everything else (tabs, non-ASCII, controls) to PyYAML.
_PRINTABLE = re.compile(r"[ -~]*")
_PRINTABLE_LINES = re.compile(r"[ -~\n]*")
# A string PyYAML writes plain in block context, provided it also resolves to a string: no
# leading indicator, no `: ` or ` #`, no leading or trailing space (see Emitter.analyze_scalar).
_PLAIN = re.compile(r"[A-Za-z0-9_/][ !\"$-9;-~]*(?<! )")
# Past PyYAML's line width (10 000) a scalar would be folded; stay far below it.
_LONGEST_INLINE = 4_000
# PyYAML writes a key as a simple key (on the line of its `:`) only when shorter than this.
_LONGEST_KEY = 128

_MEMO_LIMIT = 100_000  # distinct strings remembered; a long-lived process starts over past it

_RESOLVER = Resolver()
_ANALYZER = Emitter(None, allow_unicode=True)  # only its pure analyze_scalar is used
_STR_TAG = "tag:yaml.org,2002:str"


def _resolves_to_str(value: str) -> bool:
    """Whether a plain `value` would be read back as a string (PyYAML's implicit resolvers)."""
    return _RESOLVER.resolve(ScalarNode, value, (True, False)) == _STR_TAG


def _inline_scalar(value: str, is_key: bool) -> str:
    """How PyYAML writes a one-line string in block context, or `_Unsupported`."""
    if len(value) >= (_LONGEST_KEY if is_key else _LONGEST_INLINE) or not _PRINTABLE.fullmatch(value):
        raise _Unsupported
    if _AMBIGUOUS.match(value) or value != value.strip():
        if '"' in value or "\\" in value:
            raise _Unsupported
        return f'"{value}"'
    if _PLAIN.fullmatch(value) and _resolves_to_str(value):
        return value
    analysis = _ANALYZER.analyze_scalar(value)
    if analysis.allow_block_plain and not analysis.empty and _resolves_to_str(value):
        return value
    if analysis.allow_single_quoted:
        return "'" + value.replace("'", "''") + "'"
    raise _Unsupported


def _literal_block(value: str, indent: str) -> str:
    """A multi-line string as PyYAML's literal block (`|` or `|-`) whose lines sit at `indent`."""
    if (
        value[0] in " \n"
        or value.endswith((" ", "\n\n"))
        or " \n" in value
        or len(value) >= 100 * _LONGEST_INLINE
        or not _PRINTABLE_LINES.fullmatch(value)
    ):
        raise _Unsupported  # PyYAML would add an indentation hint, keep (`|+`) or double-quote
    body = value[:-1] if value.endswith("\n") else value
    lines = "\n".join(indent + line if line else "" for line in body.split("\n"))
    return (" |\n" if value.endswith("\n") else " |-\n") + lines + "\n"


def _float_text(value: float) -> str:
    # SafeRepresenter.represent_float, which always writes plain.
    if value != value:
        return ".nan"
    if value in (float("inf"), float("-inf")):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value).lower()
    return text.replace("e", ".0e", 1) if "." not in text and "e" in text else text


class _FastDocument:
    """Writes one document the way `_ArtifactDumper` does, or raises `_Unsupported`."""

    # Scalar spellings repeat across every manifest of every spec: analyse each string once.
    _values: ClassVar[dict[str, str]] = {}
    _keys: ClassVar[dict[str, str]] = {}

    @classmethod
    def write(cls, doc: Any) -> str | None:
        """The document's text, or None when PyYAML has to write it."""
        if type(doc) is not dict or not doc:
            return None
        out: list[str] = []
        try:
            cls._mapping(doc, "", out)
        except _Unsupported:
            return None
        return "".join(out)

    @classmethod
    def _key(cls, key: Any) -> str:
        if type(key) is not str:
            raise _Unsupported
        text = cls._keys.get(key)
        if text is None:
            if not key or "\n" in key:
                raise _Unsupported  # PyYAML writes it as a complex key (`? ...`)
            if len(cls._keys) > _MEMO_LIMIT:
                cls._keys.clear()
            text = cls._keys[key] = _inline_scalar(key, is_key=True)
        return text

    @classmethod
    def _scalar(cls, value: Any, indent: str) -> str | None:
        """` text\\n` for a scalar (the literal block included); None for a collection."""
        kind = type(value)
        if kind is str:
            text = cls._values.get(value)
            if text is None:
                if "\n" in value:
                    return _literal_block(value, indent)
                if len(cls._values) > _MEMO_LIMIT:
                    cls._values.clear()
                text = cls._values[value] = _inline_scalar(value, is_key=False)
            return f" {text}\n"
        if kind is bool:
            return " true\n" if value else " false\n"
        if kind is int:
            return f" {value}\n"
        if value is None:
            return " null\n"
        if kind is float:
            return f" {_float_text(value)}\n"
        if kind is Commented:
            if not value.value or not _PRINTABLE.fullmatch(value.comment):
                raise _Unsupported
            text = cls._scalar(value.value, indent)
            assert text is not None
            return f"{text[:-1]}  # {value.comment}\n"
        if kind is dict:
            return None if value else " {}\n"
        if kind is list:
            return None if value else " []\n"
        raise _Unsupported

    @classmethod
    def _mapping(cls, mapping: dict[Any, Any], indent: str, out: list[str], lead: str | None = None) -> None:
        """`key: value` lines of a non-empty mapping at `indent`; the first line starts with `lead`.

        A collection that is a sequence item starts on the item's `- ` line (`lead` is " ").
        """
        child = indent + "  "
        for key, value in mapping.items():
            out.append((indent if lead is None else lead) + cls._key(key) + ":")
            lead = None
            scalar = cls._scalar(value, child)
            if scalar is not None:
                out.append(scalar)
            elif type(value) is dict:
                out.append("\n")
                cls._mapping(value, child, out)
            else:
                out.append("\n")
                cls._sequence(value, child, out)

    @classmethod
    def _sequence(cls, items: list[Any], indent: str, out: list[str], lead: str | None = None) -> None:
        """`- item` lines of a non-empty list at `indent` (sequences are indented under their key)."""
        child = indent + "  "
        for item in items:
            out.append((indent if lead is None else lead) + "-")
            lead = None
            scalar = cls._scalar(item, child)
            if scalar is not None:
                out.append(scalar)
            elif type(item) is dict:
                cls._mapping(item, child, out, lead=" ")
            else:
                cls._sequence(item, child, out, lead=" ")
