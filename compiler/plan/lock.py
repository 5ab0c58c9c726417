"""`mlc.lock`: what the last `mlc apply` wrote, so `plan` can tell a hand edit from a stale file.

One lock per spec, in the spec's directory (the output root). Versioned JSON, like dbt's
artifacts: adding a field with a default is compatible (readers ignore unknown fields, old
files get the default); renaming or retyping a field bumps `format_version`.

    {
      "format_version": 1,
      "compiler_version": "0.1.0",
      "spec_digest": "<sha256 hex of the spec data>",
      "files": {"<path relative to the spec's directory>": "<sha256 hex of its bytes>", ...},
      "images": {"train": "<repo>@sha256:<64 hex>", ...},
      "inputs_digest": "<sha256 hex of the spec data, what was read beside it and the compiler; see fingerprint>"
    }

Keys are sorted and the text ends with a newline, so the same lock is the same bytes.

`mlc.lock.intent` is apply's journal: written before the first file, removed after the lock.
It lists, per path, every sha256 an unfinished apply may have left there (the intents of
earlier interrupted applies included), so a plan after a killed apply treats those contents
as generated, not as hand edits, even when the spec has changed again since::

    {"format_version": 1, "files": {"<path>": ["<sha256 hex>", ...], ...}}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlc.compiler.errors import MlcError

LOCK_FILENAME = "mlc.lock"
LOCK_FORMAT_VERSION = 1
INTENT_FILENAME = "mlc.lock.intent"


class LockError(MlcError):
    """`mlc.lock` cannot be read: corrupt JSON, a wrong shape, or a newer format version."""


@dataclass(frozen=True)
class Lock:
    """The lock's content: provenance, every generated file's sha256, and pinned images."""

    compiler_version: str
    spec_digest: str
    files: Mapping[str, str] = field(default_factory=dict)  # path -> sha256 hex
    images: Mapping[str, str] = field(default_factory=dict)  # role -> repo@sha256:...
    inputs_digest: str = ""  # added in format 1 with a default: older locks read as ""
    format_version: int = LOCK_FORMAT_VERSION


def sha256_hex(content: bytes) -> str:
    """The sha256 of `content`, as lower-case hex (how the lock and the plan name contents)."""
    return hashlib.sha256(content).hexdigest()


def lock_to_bytes(lock: Lock) -> bytes:
    """The lock's canonical file content."""
    data = {
        "format_version": lock.format_version,
        "compiler_version": lock.compiler_version,
        "spec_digest": lock.spec_digest,
        "files": dict(sorted(lock.files.items())),
        "images": dict(sorted(lock.images.items())),
        "inputs_digest": lock.inputs_digest,
    }
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def parse_lock(content: bytes, name: str = LOCK_FILENAME) -> Lock:
    """Parse lock file bytes; raises `LockError` naming the problem and the likely fix."""
    try:
        data = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LockError(f"{name}: not valid JSON ({exc}); restore it from git") from None
    if not isinstance(data, dict):
        raise LockError(f"{name}: expected a JSON object")
    version = data.get("format_version")
    if version != LOCK_FORMAT_VERSION:
        raise LockError(
            f"{name}: format_version {version!r} is not supported by this mlc "
            f"(reads {LOCK_FORMAT_VERSION}); upgrade mlc or restore the lock from git"
        )
    return Lock(
        compiler_version=_string(data, "compiler_version", name),
        spec_digest=_string(data, "spec_digest", name),
        files=_string_map(data, "files", name),
        images=_string_map(data, "images", name),
        inputs_digest=_string(data, "inputs_digest", name) if "inputs_digest" in data else "",
    )


def read_lock(root: Path) -> Lock | None:
    """The lock in `root`, or None when there is none yet (nothing was applied)."""
    path = root / LOCK_FILENAME
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        return None
    return parse_lock(content, str(path))


def intent_to_bytes(files: Mapping[str, Collection[str]]) -> bytes:
    """The canonical content of `mlc.lock.intent`."""
    data = {
        "format_version": LOCK_FORMAT_VERSION,
        "files": {path: sorted(set(shas)) for path, shas in sorted(files.items())},
    }
    return (json.dumps(data, indent=2) + "\n").encode("utf-8")


def read_intent(root: Path) -> dict[str, frozenset[str]]:
    """The shas an interrupted apply may have left at each path ({} when none was interrupted)."""
    path = root / INTENT_FILENAME
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise LockError(f"{path}: not valid JSON; delete it and review `mlc plan`") from None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict) or data.get("format_version") != LOCK_FORMAT_VERSION:
        raise LockError(f"{path}: not an intent file this mlc reads; delete it and review `mlc plan`")
    return {str(k): frozenset(map(str, v)) for k, v in files.items() if isinstance(v, list)}


def _string(data: dict[str, Any], key: str, name: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise LockError(f"{name}: {key} must be a string")
    return value


def _string_map(data: dict[str, Any], key: str, name: str) -> dict[str, str]:
    value = data.get(key, {})  # absent: a field added later, read with its default
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise LockError(f"{name}: {key} must map strings to strings")
    return dict(value)
