"""Every rendered manifest of every case passes its ecosystem's validator.

Core kinds: `kubernetes-validate --strict` (Kubernetes 1.33). Custom resources: the upstream
schemas in ../shared/schemas/crds. Both skip with a reason when the tool or schemas are absent.
"""

from __future__ import annotations

import subprocess

import pytest

from k8s_validators import (
    CRD_SCHEMAS,
    KUBERNETES_VERSION,
    crd_errors,
    find_tool,
    is_custom_resource,
)


def test_every_core_manifest_passes_kubernetes_validate_strict(rendered):
    tool = find_tool("kubernetes-validate")
    if tool is None:
        pytest.skip("kubernetes-validate not installed (pip install kubernetes-validate)")
    files = sorted(
        str(case.root / path)
        for case in rendered.values()
        for path, docs in case.documents.items()
        if "/tests/" not in path and any(not is_custom_resource(doc) for doc in docs)
    )
    assert files
    run = subprocess.run(
        [tool, "--strict", "-k", KUBERNETES_VERSION, *files],
        capture_output=True,
        text=True,
        check=False,
    )
    problems = [
        line for line in run.stdout.splitlines() + run.stderr.splitlines() if not line.startswith(("INFO", "WARN"))
    ]
    assert run.returncode == 0 and not problems, "\n".join(problems) or run.stdout
    passed = sum(1 for line in run.stdout.splitlines() if line.startswith("INFO") and " passed " in line)
    core_docs = sum(
        1
        for case in rendered.values()
        for path, doc in case.resources()
        if not is_custom_resource(doc) and "/tests/" not in path
    )
    assert passed == core_docs, "kubernetes-validate did not check every core resource"


def test_every_custom_resource_matches_its_upstream_schema(rendered):
    if not CRD_SCHEMAS.is_dir():
        pytest.skip(f"shared CRD schemas not found at {CRD_SCHEMAS}")
    failures = []
    checked = 0
    for case in rendered.values():
        for path, docs in case.documents.items():
            if "/tests/" in path:
                continue
            for doc in docs:
                if is_custom_resource(doc):
                    checked += 1
                    failures.extend(f"{case.name}:{path}: {error}" for error in crd_errors(doc))
    assert checked
    assert not failures, "\n".join(failures)
