"""Stage 4, emit: the resolved environments of one project -> artifacts.

One backend per artifact family, each a module in `mlc.compiler.backends` with
`emit(environments: Sequence[ResolvedSpec]) -> list[Artifact]`. Backends are pure (no I/O, no
clock, no environment variables) and know nothing of each other; they share only the resolved
specs. Every environment of the project is passed at once because some artifacts are per
project (one training image serves every environment) and others per environment.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Protocol

from mlc.compiler.artifact import Artifact
from mlc.compiler.errors import MlcError
from mlc.compiler.resolve.resolved import ResolvedSpec

# Explicit, ordered: a reader sees every artifact family here.
BACKEND_MODULES: tuple[str, ...] = ("docker", "kubernetes", "ci")


class Backend(Protocol):
    """What a backend module provides."""

    def emit(self, environments: Sequence[ResolvedSpec]) -> list[Artifact]: ...


class DuplicateArtifactError(MlcError):
    """Two backends (or one, twice) produced the same path: a bug in the compiler."""


def emit_project(environments: Sequence[ResolvedSpec]) -> list[Artifact]:
    """Run every backend over the project's environments; artifacts sorted by path."""
    artifacts: dict[str, Artifact] = {}
    for module_name in BACKEND_MODULES:
        backend: Backend = importlib.import_module(f"mlc.compiler.backends.{module_name}")  # type: ignore[assignment]
        for artifact in backend.emit(environments):
            if artifact.path in artifacts:
                raise DuplicateArtifactError(f"{artifact.path} emitted twice ({module_name})")
            artifacts[artifact.path] = artifact
    return [artifacts[path] for path in sorted(artifacts)]
