"""GitOps wiring beyond the Argo CD / Flux objects: the Namespace a Flux folder must carry."""

from __future__ import annotations

from collections import defaultdict
from pathlib import PurePosixPath


def _folders(case):
    """Environment folder -> its resources (clusters/ and tests/ excluded)."""
    folders = defaultdict(list)
    for path, doc in case.resources():
        pure = PurePosixPath(path)
        if pure.parts[1] != "clusters":
            folders[str(pure.parent)].append(doc)
    return folders


def _engine(case, folder):
    env = PurePosixPath(folder).name
    docs = case.documents.get(f"deploy/clusters/{env}.yaml", [])
    kinds = {doc["kind"] for doc in docs}
    return "flux" if "GitRepository" in kinds else "argocd" if "Application" in kinds else "none"


def test_flux_folders_carry_their_namespace_kept_out_of_pruning(rendered):
    checked = 0
    for case in rendered.values():
        for folder, docs in _folders(case).items():
            if _engine(case, folder) != "flux":
                continue
            checked += 1
            (namespace,) = [d for d in docs if d["kind"] == "Namespace"]
            used = {d["metadata"]["namespace"] for d in docs if "namespace" in d["metadata"]}
            assert used == {namespace["metadata"]["name"]}, f"{case.name}:{folder}"
            assert "namespace" not in namespace["metadata"]
            annotations = namespace["metadata"]["annotations"]
            assert annotations["kustomize.toolkit.fluxcd.io/prune"] == "disabled"
            assert annotations["mlc.dev/compiler-version"] == "0.1.0"
            assert namespace["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "mlc"
    assert checked >= 2  # llm-chat's environments and the cpu-autoscale-flux variant


def test_argocd_and_plain_folders_leave_the_namespace_to_others(rendered):
    checked = 0
    for case in rendered.values():
        for folder, docs in _folders(case).items():
            if _engine(case, folder) == "flux":
                continue
            checked += 1
            assert not [d for d in docs if d["kind"] == "Namespace"], f"{case.name}:{folder}"
    assert checked
