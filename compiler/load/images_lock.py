"""`mlc.images.lock`: base image tags pinned to registry digests, beside the spec.

Written by `mlc images lock` (which asks the registries, `registry_digests`), read by the
pipeline on every compile so the Dockerfiles say `tag@sha256:...`. Versioned JSON:
`{"format_version": 1, "images": {"<tag>": "sha256:<hex>"}}`, keys sorted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from mlc.compiler.errors import MlcError

IMAGES_LOCK_FILENAME = "mlc.images.lock"
IMAGES_LOCK_FORMAT = 1


class ImagesLockError(MlcError):
    """The images lock cannot be used; the message names the file and the fix."""


def write_images_lock(path: Path, digests: Mapping[str, str]) -> None:
    """Write the images lock atomically (temp file + rename), keys sorted: stable diffs."""
    from mlc.compiler.output_tree import write_atomically

    data = {"format_version": IMAGES_LOCK_FORMAT, "images": dict(sorted(digests.items()))}
    write_atomically(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"))


def read_images_lock(path: Path) -> dict[str, str]:
    """Tag -> digest from an images lock; empty when there is none."""
    if not path.is_file():
        return {}
    return parse_images_lock(path.read_text(encoding="utf-8"), path)


def parse_images_lock(text: str, path: Path) -> dict[str, str]:
    """Tag -> digest from the text of the images lock at `path` (named in errors)."""
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("images"), dict):
        raise ImagesLockError(f"{path}: not an images lock (a JSON object with 'images')")
    if data.get("format_version") != IMAGES_LOCK_FORMAT:
        raise ImagesLockError(f"{path}: format_version {data.get('format_version')} is not {IMAGES_LOCK_FORMAT}")
    return dict(data["images"])
