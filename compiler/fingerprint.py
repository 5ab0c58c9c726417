"""The compiler's build fingerprint: what, besides the spec, decides the bytes emit produces.

Emit is pure and deterministic, so its output is a function of the spec's data and the
compiler that runs it. The fingerprint stands for the compiler: a sha256 over the source and
data files of `mlc.compiler` and `mlc.templates`, the registered backends, and the versions of
the libraries that format text (PyYAML, Jinja2). It changes whenever any of them does, also
for an unreleased compiler run from a checkout, whose version string does not change.

`inputs_digest(spec_digest, edge_inputs, backends)` combines it with the spec and with what the
pipeline read besides it (`resolve.edge_inputs`: `mlc.images.lock`, ...). `mlc.lock` records
it, so planning an already-applied spec can skip emit when nothing that feeds emit has changed
(see `plan.specs`). Standard library only, and no stage imported: the validation cache hashes
the compiler's sources with it on every `mlc validate`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Protocol

_FINGERPRINTED_SUFFIXES = (".py", ".json", ".j2")


class _Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...


@functools.cache
def compiler_fingerprint(backends: tuple[str, ...]) -> str:
    """sha256 hex over the compiler's own files, formatting libraries and the registered
    `backends` (`mlc.compiler.backends.BACKEND_MODULES`)."""
    # Files are read once per process; cached per backend list, so a process that registers
    # other backends (the tests' stand-in) never reuses the fingerprint of the real ones.

    digest = hashlib.sha256()
    hash_compiler_sources(digest)
    for distribution in ("PyYAML", "Jinja2"):
        digest.update(f"{distribution}=={_version(distribution)}\0".encode())
    digest.update(repr(backends).encode())
    return digest.hexdigest()


def inputs_digest(spec_digest: str, edge_inputs: Mapping[str, object], backends: tuple[str, ...]) -> str:
    """sha256 hex of everything emit's output depends on: the compiler with its `backends`, the
    spec's data, and the facts read beside the spec (`resolve.edge_inputs`, any JSON data)."""
    edge = json.dumps(edge_inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{compiler_fingerprint(backends)}:{spec_digest}:{edge}".encode()).hexdigest()


def hash_compiler_sources(digest: _Hash) -> None:
    """Feed the path and content of every source and data file of `mlc.compiler` and
    `mlc.templates` into `digest`. Cheap (no imports beyond the two packages, a few ms of
    reading), so the validation cache can use it on every `mlc validate`.
    """
    from mlc import compiler, templates

    for package in (compiler, templates):
        root = next(iter(package.__path__))
        for parts in sorted(_source_files(root)):
            digest.update("/".join(parts).encode() + b"\0")
            digest.update(hashlib.sha256(Path(root, *parts).read_bytes()).digest())


def _source_files(root: str) -> Iterator[tuple[str, ...]]:
    """The path parts (relative to `root`) of its fingerprinted files, caches skipped."""
    for folder, folders, names in os.walk(root):
        folders[:] = [name for name in folders if name != "__pycache__"]
        relative = os.path.relpath(folder, root)
        prefix = () if relative == "." else tuple(relative.split(os.sep))
        yield from ((*prefix, name) for name in names if name.endswith(_FINGERPRINTED_SUFFIXES))


def _version(distribution: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"
