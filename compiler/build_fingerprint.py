"""The compiler's build fingerprint: what, besides the spec, decides the bytes emit produces.

Emit is pure and deterministic, so its output is a function of the spec's data and the
compiler that runs it. The fingerprint stands for the compiler: a sha256 over the source and
data files of `mlc.compiler` and `mlc.templates`, the registered backends, and the versions of
the libraries that format text (PyYAML, Jinja2). It changes whenever any of them does, also
for an unreleased compiler run from a checkout, whose version string does not change.

`inputs_digest(spec_digest, edge_inputs)` combines it with the spec and with what the pipeline
read besides it (`resolve.edge_inputs`: `mlc.images.lock`, ...). `mlc.lock` records it, so
planning an already-applied spec can skip emit when nothing that feeds emit has changed (see
`plan_specs`).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

_FINGERPRINTED_SUFFIXES = (".py", ".json", ".j2")


def compiler_fingerprint() -> str:
    """sha256 hex over the compiler's own files, formatting libraries and registered backends."""
    from mlc.compiler import emit

    return _fingerprint(emit.BACKEND_MODULES)


@functools.cache
def _fingerprint(backends: tuple[str, ...]) -> str:
    # Files are read once per process; cached per backend list, so a process that registers
    # other backends (the tests' stand-in) never reuses the fingerprint of the real ones.
    from mlc import compiler, templates

    digest = hashlib.sha256()
    for package in (compiler, templates):
        root = Path(next(iter(package.__path__)))
        for path in sorted(root.rglob("*")):
            if path.suffix in _FINGERPRINTED_SUFFIXES and "__pycache__" not in path.parts:
                digest.update(path.relative_to(root).as_posix().encode() + b"\0")
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    for distribution in ("PyYAML", "Jinja2"):
        digest.update(f"{distribution}=={_version(distribution)}\0".encode())
    digest.update(repr(backends).encode())
    return digest.hexdigest()


def inputs_digest(spec_digest: str, edge_inputs: Mapping[str, object]) -> str:
    """sha256 hex of everything emit's output depends on: the compiler, the spec's data, and
    the facts read beside the spec (`resolve.edge_inputs`, any JSON data)."""
    edge = json.dumps(edge_inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{compiler_fingerprint()}:{spec_digest}:{edge}".encode()).hexdigest()


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"
