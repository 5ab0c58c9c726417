"""Shared fixtures: a project directory with the files a spec points at."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from spec_fixtures import REFERENCE_SPEC, make_project

# `--area-progress` (what `make test` passes): a line per finished file, the time per area.
pytest_plugins = ["area_progress"]

# No test talks to anything but 127.0.0.1: MLflow's usage telemetry stays off here and in every
# process the tests start (they inherit this environment).
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"


@pytest.fixture(scope="session", autouse=True)
def _session_validation_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A validation cache for session- and module-scoped fixtures, which start before any test."""
    directory = tmp_path_factory.mktemp("mlc-cache-session")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLC_CACHE_DIR", str(directory))
        yield directory


@pytest.fixture(autouse=True)
def validation_cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test its own validation cache (for in-process runs and the processes it starts):
    nothing is written to ~/.cache, and no test sees another's entries."""
    directory = tmp_path_factory.mktemp("mlc-cache")
    monkeypatch.setenv("MLC_CACHE_DIR", str(directory))
    monkeypatch.delenv("MLC_NO_CACHE", raising=False)
    return directory


@pytest.fixture
def project(tmp_path: Path):
    """A factory: `project(spec_text) -> path of mlproject.yaml` in a fresh directory."""
    counter = iter(range(1_000_000))

    def factory(spec_text: str, **kwargs: str) -> Path:
        return make_project(tmp_path / f"p{next(counter)}", spec_text, **kwargs)

    return factory


@pytest.fixture
def stand_in_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """`tests/plan_backend.py` is the only backend, for this test (plan/apply/bot tests use it
    with `pytestmark = pytest.mark.usefixtures("stand_in_backend")`)."""
    import plan_backend
    from mlc.compiler import backends as emit

    monkeypatch.setattr(plan_backend, "emit", plan_backend.emit_artifacts, raising=False)
    monkeypatch.setitem(sys.modules, f"mlc.compiler.backends.{plan_backend.MODULE_NAME}", plan_backend)
    monkeypatch.setattr(emit, "BACKEND_MODULES", (plan_backend.MODULE_NAME,))


@pytest.fixture
def reference_spec_text() -> str:
    """The v1 reference spec from ../shared (skips when ../shared is absent)."""
    if not REFERENCE_SPEC.is_file():
        pytest.skip(f"{REFERENCE_SPEC} not found: ../shared is not beside the repository")
    return REFERENCE_SPEC.read_text()
