"""Golden files: every Kubernetes-backend artifact of `tests/cases/k8s-small`, byte for byte.

The case compiles `tests/cases/k8s-small/mlproject.yaml` and compares each artifact of the
kubernetes backend with `tests/cases/k8s-small/expected/<artifact path>`; a difference fails with
a unified diff, and a missing or extra file fails by name. The same artifacts are also a case of
the shared validation tests (`k8s_cases.py`: kubernetes-validate --strict, the CRD schemas,
promtool, the pod policy), so what is pinned here is also what the validators accept.

After an intended change, regenerate and review the diff in git:

    MLC_UPDATE_GOLDEN=1 PYTHONPATH=... python -m pytest tests/kubernetes/test_k8s_golden.py

(it rewrites `expected/`, deleting files the backend no longer emits, then passes).
"""

from __future__ import annotations

import difflib
import os
import shutil

from k8s_cases import K8S_SMALL
from mlc.compiler.pipeline import compile_spec_file

EXPECTED = K8S_SMALL / "expected"
UPDATE = os.environ.get("MLC_UPDATE_GOLDEN") == "1"


def _compiled() -> dict[str, bytes]:
    compiled = compile_spec_file(K8S_SMALL / "mlproject.yaml")
    assert compiled.ok, [str(d) for d in compiled.result.diagnostics]
    return {a.path: a.content for a in compiled.artifacts if a.backend == "kubernetes"}


def _expected() -> dict[str, bytes]:
    if not EXPECTED.is_dir():
        return {}
    return {p.relative_to(EXPECTED).as_posix(): p.read_bytes() for p in sorted(EXPECTED.rglob("*")) if p.is_file()}


def _write(artifacts: dict[str, bytes]) -> None:
    shutil.rmtree(EXPECTED, ignore_errors=True)
    for path, content in artifacts.items():
        target = EXPECTED / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def _diff(path: str, expected: bytes, actual: bytes) -> str:
    return "".join(
        difflib.unified_diff(
            expected.decode().splitlines(keepends=True),
            actual.decode().splitlines(keepends=True),
            fromfile=f"expected/{path}",
            tofile=f"compiled/{path}",
        )
    )


def test_kubernetes_artifacts_match_the_golden_files():
    actual = _compiled()
    if UPDATE:
        _write(actual)
    expected = _expected()
    problems = [
        f"missing golden file expected/{p} (MLC_UPDATE_GOLDEN=1 writes it)"
        for p in sorted(actual.keys() - expected.keys())
    ]
    problems += [f"golden file expected/{p} is no longer emitted" for p in sorted(expected.keys() - actual.keys())]
    problems += [
        _diff(p, expected[p], actual[p]) for p in sorted(actual.keys() & expected.keys()) if expected[p] != actual[p]
    ]
    assert not problems, "\n".join(problems)


def test_golden_case_covers_every_part_of_the_backend():
    """The small case stays worth pinning: a folder, its kustomization, GitOps and alert tests."""
    paths = set(_expected())
    assert "deploy/default/kustomization.yaml" in paths
    assert "deploy/clusters/default.yaml" in paths
    assert "deploy/tests/default/alerts.test.yaml" in paths
    kinds = {p.rsplit("/", 1)[-1].split("-", 1)[0] for p in paths if p.startswith("deploy/default/")}
    assert {"job", "deployment", "service", "namespace", "prometheusrule", "configmap"} <= kinds
