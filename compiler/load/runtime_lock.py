"""`mlc.runtime.lock`: the sha256 of each file of the mlc release an index serves, beside the spec.

With `images.runtime.index_url`, images and CI install `mlc==<version>` from that index; this
lock, a pip requirements file (`mlc==X --hash=sha256:...`), makes the install hash-checked: the
builder stage and the CI step run `pip install --no-deps --require-hashes -r mlc.runtime.lock`
first, then the role's extras (mlc is then already there, pip only adds its dependencies).
`mlc vendor` writes it from what the index serves; validation reads it.
"""

from __future__ import annotations

import re

RUNTIME_LOCK_FILENAME = "mlc.runtime.lock"
_PIN = re.compile(r"^mlc==(?P<version>\S+)(?P<hashes>(?:\s+--hash=sha256:[0-9a-f]{64})+)\s*$")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


def runtime_lock_text(version: str, hashes: list[str]) -> str:
    """The lock's text: one pin of mlc, its hashes sorted (stable diffs)."""
    lines = [
        f"# {RUNTIME_LOCK_FILENAME}: the files of mlc {version} on images.runtime.index_url, by sha256.",
        "# Images and CI install it with pip --require-hashes. Written by `mlc vendor`; commit it.",
        f"mlc=={version} \\",
        " \\\n".join(f"    --hash=sha256:{digest}" for digest in sorted(set(hashes))),
    ]
    return "\n".join(lines) + "\n"


def parse_runtime_lock(text: str) -> tuple[str, tuple[str, ...]] | None:
    """(version, sorted sha256 hashes) of the lock's pin, None when it holds no such pin."""
    logical = " ".join(
        line.rstrip("\\").strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    )
    found = _PIN.match(logical)
    if found is None:
        return None
    return found["version"], tuple(sorted(set(_HASH.findall(found["hashes"]))))
