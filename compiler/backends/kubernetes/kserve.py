"""`serve.engine: kserve`: a KServe InferenceService in Standard (RawDeployment) mode.

KServe serves the champion through its MLflow model format (MLServer), so no Knative is needed
and the Deployment, Service and HPA are KServe's own. KServe cannot read an MLflow registry alias
(`models:/<model>@champion`), so the environment also gets a ClusterStorageContainer: KServe
matches the `storageUri` prefix to it and runs its container as the storage initializer (an init
container), passing the source URI and the destination folder as its two arguments. That
container is the project's serve image running `mlc-runtime fetch-model`.

Where the ClusterStorageContainer lives: in the environment's folder, not in `clusters/`. It
carries the serve image (pinned by `mlc apply --image` with the rest of the folder) and the
environment's tracking URI, so it must change and be pruned together with the InferenceService
that needs it; `clusters/` only holds the objects bootstrapped once per cluster. It is
cluster-scoped, so its name carries the namespace, and its URI prefix is the registered model's
alias prefix (`models:/<model>@`), not `models:/`: another project's initializer never claims it.
"""

from __future__ import annotations

from typing import Any

from mlc.compiler.backends.kubernetes.images import image_reference
from mlc.compiler.backends.kubernetes.objects import manifest, object_meta, selector_labels
from mlc.compiler.backends.kubernetes.pod import (
    CACHE_DIR,
    GPU_RESOURCE,
    container_security_context,
    gpu_placement,
    pod_security_context,
    resource_requirements,
    secret_env,
)
from mlc.compiler.backends.kubernetes.serving import emit_disruption_budget, serve_section, serving
from mlc.compiler.resolve.resolved import ResolvedSpec, Resources

COMPONENT = "serving"
MODEL_FORMAT = "mlflow"
DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
# Standard mode (called RawDeployment before KServe 0.15): a plain Deployment, no Knative.
DEPLOYMENT_MODE = "RawDeployment"
AUTOSCALER_CLASS_ANNOTATION = "serving.kserve.io/autoscalerClass"
# KServe recognises its storage initializer by this container name.
STORAGE_INITIALIZER = "storage-initializer"
# The initializer only downloads; requests == limits like every mlc container.
STORAGE_INITIALIZER_RESOURCES = Resources(cpu="1", memory="1Gi")
# MLServer's HTTP and metrics ports in KServe's `kserve-mlserver` ServingRuntime.
MLSERVER_HTTP_PORT = 8080
MLSERVER_METRICS_PORT = 8082
# KServe appends [source URI, destination folder] to the initializer's command: under `sh -c`
# they arrive as $0 and $1, quoted, so a model name never becomes shell syntax.
FETCH_MODEL_SCRIPT = 'exec mlc-runtime fetch-model --uri "$0" --dest "$1"'


def is_kserve(resolved: ResolvedSpec) -> bool:
    """Whether the environment serves through KServe."""
    return resolved.serving is not None and resolved.serving.engine == "kserve"


def model_uri_prefix(resolved: ResolvedSpec) -> str:
    """`models:/<registered model>@`: the URIs this project's storage initializer owns."""
    return f"models:/{resolved.registered_model}@"


def emit_storage_container(resolved: ResolvedSpec) -> dict[str, Any]:
    """The ClusterStorageContainer that fetches `models:/<model>@<alias>` into the predictor.

    Only the destination folder is writable (read-only root filesystem): `fetch-model` stages
    its download there.
    """
    env = [
        {"name": "MLFLOW_TRACKING_URI", "value": resolved.tracking_uri},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
        *secret_env(resolved),  # the Secrets of the predictor's namespace (registry, artifact store)
    ]
    container = {
        "name": STORAGE_INITIALIZER,
        "image": image_reference(resolved, "serve"),
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", FETCH_MODEL_SCRIPT],
        "env": env,
        "resources": resource_requirements(STORAGE_INITIALIZER_RESOURCES),
        "securityContext": container_security_context(),
    }
    return manifest(
        "serving.kserve.io/v1alpha1",
        "ClusterStorageContainer",
        object_meta(resolved, resolved.names.storage_container, COMPONENT, namespaced=False),
        spec={
            "container": container,
            "supportedUriFormats": [{"prefix": model_uri_prefix(resolved)}],
        },
    )


def _scaling(resolved: ResolvedSpec) -> tuple[dict[str, str], dict[str, Any]]:
    """(annotations, predictor fields): KServe's HPA on CPU, or a fixed replica count."""
    serve = serve_section(resolved)
    minimum = max(serve.replicas.min, 1)  # RawDeployment does not scale to zero
    if serving(resolved).replica_owner == "hpa":
        return (
            {AUTOSCALER_CLASS_ANNOTATION: "hpa"},
            {
                "minReplicas": minimum,
                "maxReplicas": serve.replicas.max,
                "scaleMetric": "cpu",
                "scaleTarget": serving(resolved).autoscale_target,
            },
        )
    # `autoscale.on: none`: min == max pins the replica count (KServe's HPA then never acts).
    return ({}, {"minReplicas": minimum, "maxReplicas": minimum})


def _predictor(resolved: ResolvedSpec, scaling: dict[str, Any]) -> dict[str, Any]:
    resources = serving(resolved).resources
    predictor: dict[str, Any] = {**scaling}
    # The serving selector labels on KServe's pods: the PDB and NetworkPolicy select them.
    predictor["labels"] = selector_labels(resolved, COMPONENT)
    predictor["automountServiceAccountToken"] = False
    predictor["enableServiceLinks"] = False
    predictor["securityContext"] = pod_security_context()
    if resources.gpus:
        if resources.gpu_products:
            predictor.update(gpu_placement(resources.gpu_products))
        predictor["tolerations"] = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    predictor["model"] = {
        "modelFormat": {"name": MODEL_FORMAT},
        "storageUri": resolved.champion_uri,
        "env": [
            {"name": "HOME", "value": "/tmp"},
            {"name": "XDG_CACHE_HOME", "value": CACHE_DIR},
        ],
        "resources": resource_requirements(resources),
        "securityContext": container_security_context(),
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "cache", "mountPath": CACHE_DIR},
        ],
    }
    predictor["volumes"] = [{"name": "tmp", "emptyDir": {}}, {"name": "cache", "emptyDir": {}}]
    return predictor


def emit_inference_service(resolved: ResolvedSpec) -> dict[str, Any]:
    """The InferenceService serving the registry's champion (explicit RawDeployment mode)."""
    scaling_annotations, scaling = _scaling(resolved)
    annotations = {DEPLOYMENT_MODE_ANNOTATION: DEPLOYMENT_MODE, **scaling_annotations}
    return manifest(
        "serving.kserve.io/v1beta1",
        "InferenceService",
        object_meta(resolved, resolved.names.serving, COMPONENT, annotations=annotations),
        spec={"predictor": _predictor(resolved, scaling)},
    )


def emit_network_policy(resolved: ResolvedSpec) -> dict[str, Any]:
    """Ingress to MLServer's HTTP and metrics ports only."""
    return manifest(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        object_meta(resolved, resolved.names.serving, COMPONENT),
        spec={
            "podSelector": {"matchLabels": selector_labels(resolved, COMPONENT)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "ports": [
                        {"port": MLSERVER_HTTP_PORT, "protocol": "TCP"},
                        {"port": MLSERVER_METRICS_PORT, "protocol": "TCP"},
                    ]
                }
            ],
        },
    )


def emit_kserve(resolved: ResolvedSpec) -> list[dict[str, Any]]:
    """Every KServe resource of one environment (none unless `serve.engine` is kserve)."""
    if not is_kserve(resolved):
        return []
    return [
        emit_inference_service(resolved),
        emit_storage_container(resolved),
        emit_disruption_budget(resolved),
        emit_network_policy(resolved),
    ]
