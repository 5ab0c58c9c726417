"""Shared fixtures: a project directory with the files a spec points at."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
REFERENCE_SPEC = SHARED / "design" / "mlproject.reference.yaml"


def make_project(root: Path, spec_text: str, package: str = "demo", lock: str = "numpy==2.0.0\n") -> Path:
    """Write `spec_text` as root/mlproject.yaml plus a requirements.lock and a train module."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "requirements.lock").write_text(lock)
    module = root / "src" / package
    module.mkdir(parents=True, exist_ok=True)
    (module / "__init__.py").write_text("")
    (module / "model.py").write_text("def train(ctx):\n    return None\n")
    spec = root / "mlproject.yaml"
    spec.write_text(spec_text)
    return spec


@pytest.fixture
def project(tmp_path: Path):
    """A factory: `project(spec_text) -> path of mlproject.yaml` in a fresh directory."""
    counter = iter(range(1_000_000))

    def factory(spec_text: str, **kwargs: str) -> Path:
        return make_project(tmp_path / f"p{next(counter)}", spec_text, **kwargs)

    return factory


@pytest.fixture
def reference_spec_text() -> str:
    """The v1 reference spec from ../shared (skips when ../shared is absent)."""
    if not REFERENCE_SPEC.is_file():
        pytest.skip(f"{REFERENCE_SPEC} not found: ../shared is not beside the repository")
    return REFERENCE_SPEC.read_text()
