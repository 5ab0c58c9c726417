"""Fixtures: every case compiled once, written to a temporary folder, and parsed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from k8s_cases import compiled_cases, write_artifacts
from mlc.compiler.artifact import Artifact


@dataclass(frozen=True)
class Rendered:
    """One case's artifacts on disk, with the parsed documents of each file."""

    name: str
    root: Path
    artifacts: list[Artifact]
    documents: dict[str, list[dict[str, Any]]]  # artifact path -> YAML documents

    def resources(self) -> list[tuple[str, dict[str, Any]]]:
        """(path, document) of every Kubernetes resource (kustomizations and tests excluded)."""
        return [
            (path, doc)
            for path, docs in self.documents.items()
            for doc in docs
            if "/tests/" not in path and not path.endswith("kustomization.yaml")
        ]


class RenderedCases(dict[str, Rendered]):
    """Case name -> rendered case; a case built from ../shared's reference spec skips when absent."""

    def __missing__(self, name: str) -> Rendered:
        pytest.skip(f"case '{name}' is a variant of ../shared/design/mlproject.reference.yaml, absent here")


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rendered]:
    """Case name -> its rendered artifacts."""
    projects = tmp_path_factory.mktemp("projects")
    out = tmp_path_factory.mktemp("rendered")
    result = RenderedCases()
    for name, artifacts in compiled_cases(projects).items():
        write_artifacts(out / name, artifacts)
        documents = {a.path: [d for d in yaml.safe_load_all(a.content) if d is not None] for a in artifacts}
        result[name] = Rendered(name, out / name, artifacts, documents)
    return result
