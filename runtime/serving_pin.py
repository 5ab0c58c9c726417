"""Pin the served model version in the serving Deployment's pod template (a canary rollout).

With `serve.rollout.strategy: canary` the serving pods do not follow the champion alias: each
serves the version its pod template names in the `SERVED_VERSION_ANNOTATION` annotation (the
downward API hands it to `mlc-runtime serve`). Promotion moves the alias (the registry's record
of what should serve) and then patches that annotation; the Argo Rollout that references the
Deployment sees a new pod template, so the new version starts as a canary, its analysis judges
it, and an aborted analysis leaves the stable pods on the old version.

A JSON merge patch of one annotation, as `kubectl patch` would send it, with a field manager of
its own: GitOps never wrote the annotation (server-side apply leaves fields other managers own
alone, and the Argo CD Application ignores it besides), so a sync does not undo a promotion.
"""

from __future__ import annotations

from typing import Any

from mlc.runtime.contract import SERVED_VERSION_ANNOTATION
from mlc.runtime.errors import MlcRuntimeError

FIELD_MANAGER = "mlc-promote"


class PinError(MlcRuntimeError):
    """The serving Deployment's pinned version could not be changed."""


def pin_patch(version: str) -> dict[str, Any]:
    """The merge patch that makes the Deployment's pods serve `version`."""
    return {"spec": {"template": {"metadata": {"annotations": {SERVED_VERSION_ANNOTATION: version}}}}}


def pin_served_version(apps_api: Any, namespace: str, deployment: str, version: str) -> None:
    """Patch `deployment`'s pod template to serve `version` (through `apps_api`, an AppsV1Api)."""
    from kubernetes.client.exceptions import ApiException

    try:
        apps_api.patch_namespaced_deployment(
            deployment,
            namespace,
            pin_patch(version),
            field_manager=FIELD_MANAGER,
            _content_type="application/merge-patch+json",
        )
    except ApiException as error:
        raise PinError(
            f"cannot pin version {version} in deployment/{deployment} ({namespace}): HTTP {error.status} "
            f"{error.reason} (the promoting pod's service account needs `patch` on it)"
        ) from None


def pin_in_cluster(namespace: str | None, deployment: str, version: str) -> str:
    """Pin `version` with the pod's (or the kubeconfig's) credentials; what was done."""
    from kubernetes import client
    from mlc.runtime.kubernetes_access import NoCredentials, api_client, current_namespace

    try:
        apps_api = client.AppsV1Api(api_client())
    except NoCredentials as error:
        raise PinError(f"cannot pin version {version} in deployment/{deployment}: {error}") from None
    where = namespace or current_namespace()
    pin_served_version(apps_api, where, deployment, version)
    return f"deployment/{deployment} ({where}) now serves version {version}: its canary rollout starts"
