"""Object metadata shared by every manifest: names, labels, annotations, selectors.

Every resource carries the resolved `app.kubernetes.io/*` labels plus its component, and the
provenance annotations (compiler version, environment). Its `app.kubernetes.io/version` is the
digest of the resource itself (`stamp_version`): it changes when the resource does and only
then, so an edit relabels only what it changes. Selectors use only the labels that never change
with a spec edit (`name`, `instance`, `component`), because a Deployment's selector is immutable.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mlc.compiler.resolve.resolved import ResolvedSpec

COMPONENT_LABEL = "app.kubernetes.io/component"
VERSION_LABEL = "app.kubernetes.io/version"
_UNSTAMPED = ""  # the version label's value until `stamp_version` fills it
_SELECTOR_KEYS = ("app.kubernetes.io/name", "app.kubernetes.io/instance")
# How each GitOps engine is told to delete and recreate an object whose immutable fields changed
# (a Job's pod template), where patching it would fail the sync.
_RECREATE_ON_CHANGE = {
    "argocd": {"argocd.argoproj.io/sync-options": "Force=true,Replace=true"},
    "flux": {"kustomize.toolkit.fluxcd.io/force": "enabled"},
}


def recreate_on_change(resolved: ResolvedSpec) -> dict[str, str]:
    """Annotations that make the spec's GitOps engine recreate, not patch, the object."""
    return dict(_RECREATE_ON_CHANGE.get(resolved.spec.gitops.engine, {}))


def component_labels(resolved: ResolvedSpec, component: str) -> dict[str, str]:
    """Every label of a resource of `component` (training, serving, drift, batch, config...)."""
    return {**resolved.labels, VERSION_LABEL: _UNSTAMPED, COMPONENT_LABEL: component}


def selector_labels(resolved: ResolvedSpec, component: str) -> dict[str, str]:
    """The stable labels that select the pods of `component`."""
    return {**{key: resolved.labels[key] for key in _SELECTOR_KEYS}, COMPONENT_LABEL: component}


def object_meta(
    resolved: ResolvedSpec,
    name: str,
    component: str,
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    namespaced: bool = True,
) -> dict[str, Any]:
    """`metadata` of a resource: name, namespace, labels and provenance annotations."""
    meta: dict[str, Any] = {"name": name}
    if namespaced:
        meta["namespace"] = resolved.namespace
    meta["labels"] = {**component_labels(resolved, component), **(labels or {})}
    meta["annotations"] = {**resolved.annotations, **(annotations or {})}
    return meta


def stamp_version(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource with its version label set to 12 hex of its own canonical digest (the
    label left out of it); documents without the label (a kustomization) are returned as they are."""
    labels = resource.get("metadata", {}).get("labels", {})
    if labels.get(VERSION_LABEL) != _UNSTAMPED:
        return resource
    body = json.dumps(resource, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    labels[VERSION_LABEL] = hashlib.sha256(body.encode()).hexdigest()[:12]
    return resource


def manifest(api_version: str, kind: str, metadata: dict[str, Any], **body: Any) -> dict[str, Any]:
    """A resource in the key order Kubernetes itself writes: apiVersion, kind, metadata, rest."""
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **body}


def service_account_objects(
    resolved: ResolvedSpec, name: str, component: str, rules: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """ServiceAccount, Role and RoleBinding, all named `name`: what one pod may do with the API
    (`rules`), nothing else. The token is mounted only where the pod spec asks for it."""
    account = manifest(
        "v1",
        "ServiceAccount",
        object_meta(resolved, name, component),
        automountServiceAccountToken=False,
    )
    role = manifest("rbac.authorization.k8s.io/v1", "Role", object_meta(resolved, name, component), rules=rules)
    binding = manifest(
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        object_meta(resolved, name, component),
        roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        subjects=[{"kind": "ServiceAccount", "name": name, "namespace": resolved.namespace}],
    )
    return [account, role, binding]
