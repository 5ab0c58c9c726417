"""The one YAML writer for structured artifacts (Kubernetes manifests, workflows).

Deterministic bytes: keys keep the order the backend built them in (apiVersion, kind, metadata,
spec, as Kubernetes writes them), block style, sequences indented, no line folding, `\\n` line
ends. Strings that any YAML reader could take for something else are double-quoted: YAML 1.1
booleans (`on`, `yes`, `n`), nulls, numbers including `0755`, `1_000` and `1:20`, and dates.

Comments are not data, but some readers need them (a GitHub Action pinned to a commit SHA keeps
its tag as a trailing comment; zizmor wants write permissions explained). A value wrapped in
`Commented(value, comment)` is written as the plain string followed by `  # comment` on its line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.events import ScalarEvent
from yaml.nodes import Node, ScalarNode

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


def dump_yaml(documents: Iterable[dict[str, Any]], header: str = "") -> bytes:
    """Serialise documents (separated by `---`) with an optional comment header."""
    parts = [
        yaml.dump(
            doc,
            Dumper=_ArtifactDumper,
            sort_keys=False,
            default_flow_style=False,
            allow_unicode=True,
            width=10_000,
            indent=2,
        )
        for doc in documents
    ]
    prefix = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return (prefix + "---\n".join(parts)).encode("utf-8")
