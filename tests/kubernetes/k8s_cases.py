"""The specs the Kubernetes backend tests compile: the examples, the reference spec, and variants
of the reference spec that switch on the branches the others leave off."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from mlc.compiler.artifact import Artifact
from mlc.compiler.backends.yaml_writer import dump_yaml
from mlc.compiler.load.document import parse_spec_text
from mlc.compiler.pipeline import compile_spec_file

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared"
REFERENCE_SPEC = SHARED / "design" / "mlproject.reference.yaml"
CHURN = REPO / "examples" / "churn"
LLM_CHAT = REPO / "examples" / "llm-chat"
K8S_SMALL = REPO / "tests" / "cases" / "k8s-small"  # its artifacts are also golden files


def reference_spec() -> dict[str, Any]:
    """The data of ../shared's reference spec (a fresh copy; skips when ../shared is absent)."""
    if not REFERENCE_SPEC.is_file():
        pytest.skip(f"{REFERENCE_SPEC} is absent: ../shared is not beside the repository")
    # mlc's own loader: PyYAML would read the key `on:` as the boolean true (YAML 1.1).
    document, diagnostics = parse_spec_text(REFERENCE_SPEC.read_text(encoding="utf-8"))
    assert document is not None, diagnostics
    return copy.deepcopy(document.data)


def _multi_node(spec: dict[str, Any]) -> None:
    spec["train"]["distributed"] = {"nodes": 4, "backend": "job"}
    spec["train"]["resources"]["gpus"] = 8
    spec["train"]["resources"]["gpu_type"] = "nvidia-h100-80gb"
    spec["environments"] = {}


def _jobset(spec: dict[str, Any]) -> None:
    _multi_node(spec)
    spec["train"]["distributed"]["backend"] = "jobset"
    spec["train"].pop("schedule")
    spec["monitor"]["drift"]["on_drift"] = "alert"


def _cpu_autoscale_flux(spec: dict[str, Any]) -> None:
    spec["serve"]["autoscale"] = {"on": "cpu"}
    spec["serve"]["rollout"] = {"strategy": "rolling"}
    spec["gitops"]["engine"] = "flux"
    spec.pop("environments")


def _kserve(spec: dict[str, Any]) -> None:
    spec["serve"]["engine"] = "kserve"
    spec["serve"]["autoscale"] = {"on": "none"}
    spec["serve"]["rollout"] = {"strategy": "rolling"}
    spec["serve"].pop("batch")
    spec["gitops"] = {"engine": "none"}


def _kserve_cpu_gpu(spec: dict[str, Any]) -> None:
    _kserve(spec)
    spec["serve"]["autoscale"] = {"on": "cpu", "target": 60}
    spec["serve"]["replicas"] = {"min": 0, "max": 4}
    spec["serve"]["resources"] = {"cpu": 4, "memory": "16Gi", "gpus": 1, "gpu_type": "nvidia-l4"}
    spec.pop("environments")


ACCESS = {
    "callers": [
        {"namespace": "web", "pods": {"app": "checkout"}},
        {"namespace": "ingress-nginx", "pods": {"app.kubernetes.io/name": "ingress-nginx"}},
        {"pods": {"app": "batch-client"}},
    ],
    "api_keys": {"k8s": "churn-api-keys"},
    "rate_limit": {"requests_per_second": 50.5},
    "audit": "requests",
}


def _access(spec: dict[str, Any]) -> None:
    spec["serve"]["access"] = copy.deepcopy(ACCESS)


VARIANTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "access": _access,
    "multi-node": _multi_node,
    "jobset": _jobset,
    "cpu-autoscale-flux": _cpu_autoscale_flux,
    "kserve": _kserve,
    "kserve-cpu-gpu": _kserve_cpu_gpu,
}


def _write_project(folder: Path, spec: dict[str, Any]) -> Path:
    """A project folder the validator accepts: the spec plus the churn example's lock and code."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(CHURN / "requirements.lock", folder / "requirements.lock")
    shutil.copytree(CHURN / "src", folder / "src", dirs_exist_ok=True)
    spec_path = folder / "mlproject.yaml"
    spec_path.write_bytes(dump_yaml([spec]))
    return spec_path


def _compile(spec_path: Path) -> list[Artifact]:
    compiled = compile_spec_file(spec_path)
    assert compiled.ok, [str(d) for d in compiled.result.diagnostics]
    return [a for a in compiled.artifacts if a.backend == "kubernetes"]


@cache
def compiled_cases(workdir: Path) -> dict[str, list[Artifact]]:
    """Every case name -> its Kubernetes artifacts (compiled once per test session)."""
    cases = {
        "churn": _compile(CHURN / "mlproject.yaml"),
        "llm-chat": _compile(LLM_CHAT / "mlproject.yaml"),
        "k8s-small": _compile(K8S_SMALL / "mlproject.yaml"),
    }
    if REFERENCE_SPEC.is_file():
        cases["reference"] = _compile(_write_project(workdir / "reference", reference_spec()))
        for name, change in VARIANTS.items():
            spec = copy.deepcopy(reference_spec())
            change(spec)
            cases[name] = _compile(_write_project(workdir / name, spec))
    return cases


def write_artifacts(root: Path, artifacts: list[Artifact]) -> list[Path]:
    """Write artifacts under `root`; the written paths."""
    paths = []
    for artifact in artifacts:
        path = root / artifact.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(artifact.content)
        paths.append(path)
    return paths
