"""The hardened pod template every workload shares (training, serving, batch, drift).

Policy (ARTIFACTS.md, kube-score / kube-linter): non-root with the fixed UID the images are built
with, no privilege escalation, every capability dropped, read-only root filesystem with emptyDir
volumes for /tmp and caches, seccomp RuntimeDefault, requests and limits on every container (GPU
in limits, requests equal), and no service account token unless the pod calls the Kubernetes API.
Secrets reach containers as environment variables from Secret references, never as values; the
resolved runtime config is mounted read-only at `/etc/mlc/`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mlc.compiler.resolve.resolved import RUNTIME_UID, ResolvedSpec, Resources
from mlc.runtime.contract import (
    COMPLETION_INDEX_FIELD,
    COMPLETION_INDEX_VARIABLE,
    CONFIG_DIR,
    CONFIG_PATH,
    CONFIG_VARIABLE,
)

CACHE_DIR = "/var/cache/mlc"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"


def completion_index_env() -> dict[str, Any]:
    """`JOB_COMPLETION_INDEX` from the downward API, so `$(JOB_COMPLETION_INDEX)` expands."""
    return {
        "name": COMPLETION_INDEX_VARIABLE,
        "valueFrom": {"fieldRef": {"fieldPath": COMPLETION_INDEX_FIELD}},
    }


@dataclass(frozen=True)
class ContainerSpec:
    """The parts of a container that differ between workloads."""

    name: str
    image: str
    command: list[str]
    resources: Resources
    ports: list[dict[str, Any]] = field(default_factory=list)
    env: list[dict[str, Any]] = field(default_factory=list)
    probes: dict[str, Any] = field(default_factory=dict)  # probes and lifecycle hooks
    shared_memory: bool = False  # /dev/shm for torch DataLoader workers and NCCL
    uses_data: bool = False  # a job that reads or writes data: the spec's volumes are mounted
    secret_mounts: list[tuple[str, str, str]] = field(default_factory=list)  # (volume, Secret, mount path), read-only


def gpu_placement(products: tuple[str, ...]) -> dict[str, Any]:
    """nodeSelector on the one product label, or node affinity (`In`) when a type has variants."""
    if len(products) == 1:
        return {"nodeSelector": {GPU_PRODUCT_LABEL: products[0]}}
    term = {"matchExpressions": [{"key": GPU_PRODUCT_LABEL, "operator": "In", "values": list(products)}]}
    return {
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}
    }


def resource_requirements(resources: Resources) -> dict[str, Any]:
    """requests == limits for CPU and memory; GPUs in both (Kubernetes requires them equal)."""
    amounts: dict[str, Any] = {"cpu": resources.cpu, "memory": resources.memory}
    if resources.gpus:
        amounts[GPU_RESOURCE] = str(resources.gpus)
    return {"requests": dict(amounts), "limits": dict(amounts)}


def secret_env(resolved: ResolvedSpec) -> list[dict[str, Any]]:
    """One env var per `secrets:` entry, read from its Kubernetes Secret (sorted by name)."""
    return [
        {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.k8s, "key": ref.key}}}
        for name, ref in sorted(resolved.spec.secrets.items())
    ]


def base_env() -> list[dict[str, Any]]:
    """Environment every container gets: a writable HOME and caches on the emptyDir volumes."""
    return [
        {"name": "HOME", "value": "/tmp"},
        {"name": "XDG_CACHE_HOME", "value": CACHE_DIR},
        {"name": CONFIG_VARIABLE, "value": CONFIG_PATH},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
    ]


def container_security_context() -> dict[str, Any]:
    """The container-level half of the pod policy."""
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": RUNTIME_UID,
        "runAsGroup": RUNTIME_UID,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security_context() -> dict[str, Any]:
    """The pod-level half of the pod policy; fsGroup makes emptyDirs writable by the UID."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUNTIME_UID,
        "runAsGroup": RUNTIME_UID,
        "fsGroup": RUNTIME_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _volumes(resolved: ResolvedSpec, spec: ContainerSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes: list[dict[str, Any]] = [
        {"name": "runtime-config", "configMap": {"name": resolved.names.runtime_config}},
        {"name": "tmp", "emptyDir": {}},
        {"name": "cache", "emptyDir": {}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "runtime-config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "cache", "mountPath": CACHE_DIR},
    ]
    if spec.shared_memory:
        volumes.append({"name": "dshm", "emptyDir": {"medium": "Memory"}})
        mounts.append({"name": "dshm", "mountPath": "/dev/shm"})
    for volume in resolved.volumes if spec.uses_data else ():
        claim: dict[str, Any] = {"claimName": volume.claim}
        mount: dict[str, Any] = {"name": volume.name, "mountPath": volume.mount_path}
        if volume.read_only:
            claim["readOnly"] = True
            mount["readOnly"] = True
        volumes.append({"name": volume.name, "persistentVolumeClaim": claim})
        mounts.append(mount)
    for volume, secret, path in spec.secret_mounts:
        # 0440 and fsGroup: readable by the runtime's group only; updated in place when the Secret changes.
        volumes.append({"name": volume, "secret": {"secretName": secret, "defaultMode": 0o440}})
        mounts.append({"name": volume, "mountPath": path, "readOnly": True})
    return volumes, mounts


def container(resolved: ResolvedSpec, spec: ContainerSpec, volume_mounts: list[dict[str, Any]]) -> dict[str, Any]:
    """A container of the pod template, with the policy, env and mounts applied."""
    body: dict[str, Any] = {
        "name": spec.name,
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "command": spec.command,
    }
    if spec.ports:
        body["ports"] = spec.ports
    body["env"] = [*base_env(), *spec.env, *secret_env(resolved)]
    body["resources"] = resource_requirements(spec.resources)
    body.update(spec.probes)
    body["securityContext"] = container_security_context()
    body["volumeMounts"] = volume_mounts
    return body


# The service account's credentials, as the kubelet projects them when it automounts: a
# short-lived token it rotates, the cluster's CA and the namespace, where the clients look.
_NAMESPACE_ITEM = {"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}
API_ACCESS_VOLUME: dict[str, Any] = {
    "name": "kube-api-access",
    "projected": {
        "defaultMode": 0o440,  # fsGroup: readable by the runtime's group only
        "sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [_NAMESPACE_ITEM]}},
        ],
    },
}
API_ACCESS_MOUNT: dict[str, Any] = {
    "name": "kube-api-access",
    "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
    "readOnly": True,
}


def pod_spec(
    resolved: ResolvedSpec,
    spec: ContainerSpec,
    *,
    restart_policy: str,
    service_account: str | None = None,
    extra: dict[str, Any] | None = None,
    tolerations: Sequence[dict[str, Any]] = (),
    then: ContainerSpec | None = None,
) -> dict[str, Any]:
    """A hardened pod spec around one container.

    `service_account` names the one pod allowed to call the Kubernetes API: its token is mounted
    into the container that calls it (`then` when given, else `spec`) and no other; every other
    pod runs without a token. `extra` adds fields such as `subdomain` or
    `terminationGracePeriodSeconds`. With `then`, `spec` runs first, as the init container, and
    `then` after it succeeds (a pod's one way to run two steps in order), with the same volumes.
    """
    volumes, mounts = _volumes(resolved, spec)
    body: dict[str, Any] = {"restartPolicy": restart_policy}
    api_mounts = mounts
    if service_account is not None:
        # The token goes to the one container that calls the API (with `then`, the step after
        # training, which pins a version; the training code never sees it), mounted as the
        # kubelet would mount it for the whole pod: automounting gives it to every container.
        body["serviceAccountName"] = service_account
        volumes = [*volumes, API_ACCESS_VOLUME]
        api_mounts = [*mounts, API_ACCESS_MOUNT]
    body["automountServiceAccountToken"] = False
    body["enableServiceLinks"] = False  # no env var per Service in the namespace
    body.update(extra or {})
    body["securityContext"] = pod_security_context()
    all_tolerations = list(tolerations)
    if spec.resources.gpus:
        if spec.resources.gpu_products:
            body.update(gpu_placement(spec.resources.gpu_products))
        all_tolerations.append({"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"})
    if all_tolerations:
        body["tolerations"] = all_tolerations
    if then is None:
        body["containers"] = [container(resolved, spec, api_mounts)]
    else:
        body["initContainers"] = [container(resolved, spec, mounts)]
        body["containers"] = [container(resolved, then, api_mounts)]
    body["volumes"] = volumes
    return body
