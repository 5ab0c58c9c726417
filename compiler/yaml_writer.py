"""The one YAML writer for structured artifacts (Kubernetes manifests, workflows).

Deterministic bytes: keys keep the order the backend built them in (apiVersion, kind, metadata,
spec, as Kubernetes writes them), block style, sequences indented, no line folding, `\\n` line
ends. Strings that any YAML reader could take for something else are double-quoted: YAML 1.1
booleans (`on`, `yes`, `n`), nulls, numbers including `0755`, `1_000` and `1:20`, and dates.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import yaml

# Everything a YAML 1.1 or 1.2 reader (PyYAML, go-yaml v2/v3, GitHub's parser) may not read as a string.
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


class _ArtifactDumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Indent sequences under their key, as kubectl and most style guides do.
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True  # never emit anchors: every document stands alone


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        style = "|"
    elif _AMBIGUOUS.match(value) or value != value.strip():
        style = '"'
    else:
        style = None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ArtifactDumper.add_representer(str, _represent_str)


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
