"""GitOps wiring: the per-environment `kustomization.yaml` and the Argo CD / Flux objects.

The rendered-manifests pattern: `<gitops.path>/<env>/` holds fully rendered manifests, one
resource per file, and a kustomization that only lists them (no patches). The objects that tell
Argo CD or Flux to sync that folder live in `<gitops.path>/clusters/<env>.yaml`, outside it, so
they are bootstrapped once per cluster and never prune themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlc.compiler.backends.kubernetes.objects import manifest, object_meta
from mlc.compiler.resolve.resolved import ResolvedSpec

ARGOCD_NAMESPACE = "argocd"
FLUX_NAMESPACE = "flux-system"
IN_CLUSTER_SERVER = "https://kubernetes.default.svc"
FLUX_SOURCE_INTERVAL = "1m"
FLUX_SYNC_INTERVAL = "10m"
# Flux prunes what leaves the folder; a Namespace must never go that way: deleting it deletes the
# Secrets people created in it by hand (Argo CD's CreateNamespace never deletes it either).
FLUX_PRUNE_ANNOTATION = "kustomize.toolkit.fluxcd.io/prune"


def emit_kustomization(files: Sequence[str]) -> dict[str, Any]:
    """A kustomization that lists exactly the environment's manifest files, sorted."""
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": sorted(files),
    }


def emit_argocd_application(
    resolved: ResolvedSpec, owned_elsewhere: Mapping[tuple[str, str, str], Sequence[str]]
) -> dict[str, Any]:
    """An Application syncing the environment's folder: automated prune + selfHeal, SSA.

    `owned_elsewhere` maps (group, kind, name) to JSON pointers another controller sets (the
    replicas an autoscaler owns, a canary's pinned model version): they are ignored so selfHeal
    never fights it. They are not in the manifests either, so a server-side-apply sync leaves them.
    """
    gitops = resolved.spec.gitops
    meta = object_meta(resolved, resolved.names.gitops_object, "gitops")
    meta["namespace"] = ARGOCD_NAMESPACE
    meta["finalizers"] = ["resources-finalizer.argocd.argoproj.io"]
    spec: dict[str, Any] = {
        "project": "default",
        "source": {
            "repoURL": gitops.repo,
            "targetRevision": gitops.branch,
            "path": resolved.manifests_folder,
        },
        "destination": {"server": IN_CLUSTER_SERVER, "namespace": resolved.namespace},
        "syncPolicy": {
            "automated": {"prune": True, "selfHeal": True},
            "syncOptions": ["ServerSideApply=true", "CreateNamespace=true", "PruneLast=true"],
        },
    }
    if owned_elsewhere:
        spec["ignoreDifferences"] = [
            {
                "group": group,
                "kind": kind,
                "name": name,
                "namespace": resolved.namespace,
                "jsonPointers": list(pointers),
            }
            for (group, kind, name), pointers in owned_elsewhere.items()
        ]
    return manifest("argoproj.io/v1alpha1", "Application", meta, spec=spec)


def emit_namespace(resolved: ResolvedSpec) -> list[dict[str, Any]]:
    """The environment's Namespace, when the GitOps engine does not create it (Flux).

    Argo CD creates it (`CreateNamespace=true`); Flux applies the folder into an existing
    namespace, so the folder carries it, kept out of pruning.
    """
    if resolved.spec.gitops.engine != "flux":
        return []
    meta = object_meta(
        resolved,
        resolved.namespace,
        "gitops",
        annotations={FLUX_PRUNE_ANNOTATION: "disabled"},
        namespaced=False,
    )
    return [manifest("v1", "Namespace", meta)]


def emit_flux_objects(resolved: ResolvedSpec) -> list[dict[str, Any]]:
    """A GitRepository and a Kustomization (pruning, waiting for health) for the environment."""
    gitops = resolved.spec.gitops
    name = resolved.names.gitops_object
    source_meta = object_meta(resolved, name, "gitops")
    source_meta["namespace"] = FLUX_NAMESPACE
    sync_meta = object_meta(resolved, name, "gitops")
    sync_meta["namespace"] = FLUX_NAMESPACE
    source = manifest(
        "source.toolkit.fluxcd.io/v1",
        "GitRepository",
        source_meta,
        spec={
            "interval": FLUX_SOURCE_INTERVAL,
            "url": gitops.repo,
            "ref": {"branch": gitops.branch},
        },
    )
    sync = manifest(
        "kustomize.toolkit.fluxcd.io/v1",
        "Kustomization",
        sync_meta,
        spec={
            "interval": FLUX_SYNC_INTERVAL,
            "path": f"./{resolved.manifests_folder}",
            "prune": True,
            "wait": True,
            "timeout": "5m",
            "sourceRef": {"kind": "GitRepository", "name": name},
        },
    )
    return [source, sync]
