"""Token-shaped literals: credentials pasted where only references belong.

A spec names secrets by reference (`secrets: {NAME: {k8s: ..., key: ...}}`); a literal token
anywhere else would land in ConfigMaps, labels, workflow env, image labels and MLflow params,
all of which are readable far more widely than a Secret. Every string of the spec is scanned
(validate refuses it at its line, never echoing it), and so is every generated file (plan
refuses to write one that carries a token, whatever put it there).

The patterns are those of gitleaks' default rules for the credentials an ML project handles:
cloud keys, source-hosting and chat tokens, model hubs and LLM APIs, private keys, and
credentials written into a URL. They match the token's own shape (prefix and alphabet), so an
ordinary value does not match by accident.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

# A path into the spec's data, as `load.document.FieldPath` (not imported: plan reads this
# module on its fast path, which loads no YAML parser).
FieldPath = tuple[str | int, ...]
# kind -> pattern; each anchored on the token's fixed prefix.
PATTERNS: dict[str, re.Pattern[str]] = {
    "an AWS access key": re.compile(r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b"),
    "a GitHub token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9_]{36,}|github_pat_[A-Za-z0-9_]{50,})"),
    "a GitLab token": re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"),
    "a Slack token": re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}"),
    "an OpenAI key": re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),
    "a Stripe key": re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"),
    "a Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}"),
    "a Hugging Face token": re.compile(r"\bhf_[A-Za-z]{34}\b"),
    "a private key": re.compile(r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----"),
    "a JSON Web Token": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    "a password in a URL": re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@"),
}


def token_kind(text: str) -> str | None:
    """What kind of credential `text` carries (e.g. "a GitHub token"), or None."""
    return next((kind for kind, pattern in PATTERNS.items() if pattern.search(text)), None)


def scan_data(data: Any, path: FieldPath = ()) -> Iterator[tuple[FieldPath, str]]:
    """(path, kind) of every string in loaded spec data (keys too) that carries a credential."""
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, str) and (kind := token_kind(key)):
                yield (*path, key), kind
            yield from scan_data(value, (*path, key))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from scan_data(item, (*path, index))
    elif isinstance(data, str) and (kind := token_kind(data)):
        yield path, kind
