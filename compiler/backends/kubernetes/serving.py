"""Online serving: Deployment, Service, PodDisruptionBudget, NetworkPolicy, autoscaler, canary.

`engine: runtime` serves the registered model with `mlc-runtime serve` (API, `/metrics`, `/v2/health/live`
liveness and `/ready` readiness on `serve.port`). `engine: vllm` runs vLLM's OpenAI-compatible
server for `serve.llm`. Who owns the replica count is resolved (`Serving.replica_owner`): when
an autoscaler does, the workload has no `spec.replicas` (GitOps would otherwise reset it on
every sync). A canary rollout is an Argo Rollout that references the Deployment (`workloadRef`)
and analyses the canary's error rate and latency with Prometheus. Its pods serve the model
version the Deployment's pod template pins (`served_version_env`), so a newly promoted version
is a new template: it reaches the canary pods first and the analysis judges it (by the canary's
pod-template hash, which the pinned version is part of).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from mlc.compiler.backends.kubernetes.images import image_reference
from mlc.compiler.backends.kubernetes.objects import manifest, object_meta, selector_labels
from mlc.compiler.backends.kubernetes.pod import (
    CACHE_DIR,
    ContainerSpec,
    pod_spec,
)
from mlc.compiler.backends.kubernetes.queries import (
    PROMETHEUS_URL,
    error_rate_query,
    in_flight_query,
    latency_p95_ms_query,
    serving_selector,
)
from mlc.compiler.resolve.resolved import ResolvedSpec, Serving
from mlc.runtime.contract import (
    API_KEYS_DIR,
    CONFIG_PATH,
    SERVED_VERSION_ANNOTATION,
    SERVED_VERSION_FIELD,
    SERVED_VERSION_VARIABLE,
    SERVER_PATHS,
    duration_seconds,
    job_arguments,
)

if TYPE_CHECKING:  # the verbatim section, for values copied as written
    from mlc.compiler.load.spec import Serve

COMPONENT = "serving"
PORT_NAME = "http"
METRICS_PORT_NAME = "metrics"  # with `serve.access`: /metrics and readiness details, for monitoring only
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set by the API server on every namespace
# Endpoints are removed before SIGTERM reaches the server (preStop), then in-flight requests
# get the rest of the grace period to finish.
PRESTOP_SECONDS = 10
TERMINATION_GRACE_SECONDS = 45
VLLM_STARTUP_SECONDS = 1800  # a model download on first start
KEDA_POLLING_SECONDS = 15
KEDA_COOLDOWN_SECONDS = 300
KEDA_FALLBACK_FAILURES = 3
CANARY_HASH_ARG = "canary-hash"
CANARY_HASH_LABEL = "rollouts-pod-template-hash"
ANALYSIS_INTERVAL = "1m"
ANALYSIS_WINDOW = "2m"
ANALYSIS_FAILURE_LIMIT = 2
VLLM_WAITING_METRIC = "vllm:num_requests_waiting"


def serve_section(resolved: ResolvedSpec) -> Serve:
    """The environment's `serve` section (callers emit serving resources only when there is one)."""
    assert resolved.spec.serve is not None  # callers check
    return resolved.spec.serve


def serving(resolved: ResolvedSpec) -> Serving:
    """The environment's resolved serving facts (callers emit serving resources only when there are)."""
    assert resolved.serving is not None  # callers check
    return resolved.serving


def is_canary(resolved: ResolvedSpec) -> bool:
    """Whether serving rolls out through an Argo Rollout canary (engine runtime only)."""
    return resolved.serving is not None and resolved.serving.canary


def scale_target(resolved: ResolvedSpec) -> tuple[str, str, str]:
    """(apiVersion, kind, name) of the workload that owns the serving pods."""
    if is_canary(resolved):
        return ("argoproj.io/v1alpha1", "Rollout", resolved.names.serving)
    return ("apps/v1", "Deployment", resolved.names.serving)


def fields_owned_elsewhere(resolved: ResolvedSpec) -> dict[tuple[str, str, str], list[str]]:
    """(group, kind, name) -> JSON pointers of the serving fields a controller other than GitOps
    sets: the replicas an autoscaler (or Argo Rollouts) owns, and the version a canary's
    promotion pins in the Deployment's pod template."""
    fields: dict[tuple[str, str, str], list[str]] = {
        workload: ["/spec/replicas"] for workload in autoscaled_workloads(resolved)
    }
    if is_canary(resolved):
        pointer = "/spec/template/metadata/annotations/" + SERVED_VERSION_ANNOTATION.replace("~", "~0").replace(
            "/", "~1"
        )
        fields.setdefault(("apps", "Deployment", resolved.names.serving), []).append(pointer)
    return dict(sorted(fields.items()))


def autoscaled_workloads(resolved: ResolvedSpec) -> list[tuple[str, str, str]]:
    """(group, kind, name) of each workload whose replicas a controller other than GitOps owns."""
    if resolved.serving is None or not resolved.serving.has_deployment:
        return []
    workloads = []
    if is_canary(resolved):
        # Argo Rollouts scales the referenced Deployment down as the Rollout takes over.
        workloads.append(("apps", "Deployment", resolved.names.serving))
    if resolved.serving.replica_owner != "manifest":
        api_version, kind, name = scale_target(resolved)
        workloads.append((api_version.rpartition("/")[0], kind, name))
    return sorted(set(workloads))


def _http_probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": PORT_NAME},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _lifecycle() -> dict[str, Any]:
    return {"lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SECONDS}}}}


def serving_ports(resolved: ResolvedSpec) -> list[tuple[str, int]]:
    """(name, port) of the server: the API (and, without `serve.access`, its metrics), then the metrics port."""
    ports = [(PORT_NAME, serve_section(resolved).port)]
    access = serving(resolved).access
    if access is not None:
        ports.append((METRICS_PORT_NAME, access.metrics_port))
    return ports


def served_version_env() -> dict[str, Any]:
    """A canary's pods serve the version their template pins (an annotation the gate that promotes
    patches, `runtime/serving_pin.py`): a new version is a new pod template, so the Rollout
    canaries it. Empty until the first promotion pins one: the server follows the alias then."""
    return {"name": SERVED_VERSION_VARIABLE, "valueFrom": {"fieldRef": {"fieldPath": SERVED_VERSION_FIELD}}}


def runtime_container(resolved: ResolvedSpec) -> ContainerSpec:
    """`mlc-runtime serve`: model API, liveness and readiness on one port; metrics there too, or,
    with `serve.access`, on the metrics port (the config says which)."""
    serve = serve_section(resolved)
    access = serving(resolved).access
    secrets = [("api-keys", access.api_keys_secret, API_KEYS_DIR)] if access and access.api_keys_secret else []
    return ContainerSpec(
        name="serve",
        image=image_reference(resolved, "serve"),
        command=["mlc-runtime", *job_arguments("serve", CONFIG_PATH, serve.port)],
        resources=serving(resolved).resources,
        ports=[{"name": name, "containerPort": port, "protocol": "TCP"} for name, port in serving_ports(resolved)],
        secret_mounts=secrets,
        env=[served_version_env()] if is_canary(resolved) else [],
        probes={
            # Liveness is the process serving, not the model loaded: a large model downloading
            # must not get the pod restarted; readiness holds traffic back until it is warm.
            "startupProbe": _http_probe(SERVER_PATHS["live"], 5, 60),
            "livenessProbe": _http_probe(SERVER_PATHS["live"], 10, 3),
            "readinessProbe": _http_probe(SERVER_PATHS["ready"], 5, 2),
            **_lifecycle(),
        },
    )


def vllm_container(resolved: ResolvedSpec) -> ContainerSpec:
    """vLLM's OpenAI-compatible server for `serve.llm`, the model revision pinned."""
    serve = serve_section(resolved)
    llm = serve.llm
    assert llm is not None  # validate requires it for engine vllm
    command = [
        "python3",
        "-m",
        "vllm.entrypoints.openai.api_server",
        f"--model={llm.model}",
        f"--revision={llm.revision}",
        f"--served-model-name={llm.model}",
        "--host=0.0.0.0",
        f"--port={serve.port}",
        f"--tensor-parallel-size={serving(resolved).tensor_parallel}",
        f"--download-dir={CACHE_DIR}/huggingface",
    ]
    if llm.max_model_len:
        command.append(f"--max-model-len={llm.max_model_len}")
    return ContainerSpec(
        name="vllm",
        image=image_reference(resolved, "vllm"),
        command=command,
        resources=serving(resolved).resources,
        ports=[{"name": PORT_NAME, "containerPort": serve.port, "protocol": "TCP"}],
        env=[
            {"name": "HF_HOME", "value": f"{CACHE_DIR}/huggingface"},
            {"name": "VLLM_NO_USAGE_STATS", "value": "1"},
        ],
        probes={
            "startupProbe": _http_probe("/health", 10, VLLM_STARTUP_SECONDS // 10),
            "livenessProbe": _http_probe("/health", 10, 3),
            "readinessProbe": _http_probe("/health", 5, 2),
            **_lifecycle(),
        },
        shared_memory=True,  # NCCL between tensor-parallel workers
    )


def emit_deployment(resolved: ResolvedSpec) -> dict[str, Any]:
    """The serving Deployment; no `replicas` when an autoscaler owns it."""
    serve = serve_section(resolved)
    container = vllm_container(resolved) if serving(resolved).engine == "vllm" else runtime_container(resolved)
    spec: dict[str, Any] = {}
    if serving(resolved).replica_owner == "manifest" and not is_canary(resolved):
        spec["replicas"] = serve.replicas.min
    spec["revisionHistoryLimit"] = 5
    spec["selector"] = {"matchLabels": selector_labels(resolved, COMPONENT)}
    spec["strategy"] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
    }
    spec["template"] = {
        "metadata": {"labels": selector_labels(resolved, COMPONENT)},
        "spec": pod_spec(
            resolved,
            container,
            restart_policy="Always",
            extra={"terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS},
        ),
    }
    return manifest("apps/v1", "Deployment", object_meta(resolved, resolved.names.serving, COMPONENT), spec=spec)


def emit_service(resolved: ResolvedSpec) -> dict[str, Any]:
    """ClusterIP Service in front of the serving pods (also the ServiceMonitor's target)."""
    return manifest(
        "v1",
        "Service",
        object_meta(resolved, resolved.names.serving, COMPONENT),
        spec={
            "type": "ClusterIP",
            "selector": selector_labels(resolved, COMPONENT),
            "ports": [
                {"name": name, "port": number, "targetPort": name, "protocol": "TCP"}
                for name, number in serving_ports(resolved)
            ],
        },
    )


def emit_disruption_budget(resolved: ResolvedSpec) -> dict[str, Any]:
    """At most one serving pod evicted at a time (a min-1 service can still be drained)."""
    return manifest(
        "policy/v1",
        "PodDisruptionBudget",
        object_meta(resolved, resolved.names.serving, COMPONENT),
        spec={
            "maxUnavailable": 1,
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
            "selector": {"matchLabels": selector_labels(resolved, COMPONENT)},
        },
    )


def _peer(namespace: str, pods: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """A NetworkPolicy peer: the pods of one namespace, all of them or those with the labels."""
    peer: dict[str, Any] = {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}}}
    if pods:
        peer["podSelector"] = {"matchLabels": dict(pods)}
    return peer


def network_policy_ingress(resolved: ResolvedSpec) -> list[dict[str, Any]]:
    """Who reaches which port. Without `serve.access`: the serving port (API and `/metrics`) from
    any pod. With it: the serving port from the named callers only (any pod when none are named),
    the metrics port from the monitoring namespace only."""
    port = serve_section(resolved).port
    access = serving(resolved).access
    if access is None:
        return [{"ports": [{"port": port, "protocol": "TCP"}]}]
    api: dict[str, Any] = {"ports": [{"port": port, "protocol": "TCP"}]}
    if access.callers is not None:
        api["from"] = [_peer(caller.namespace, caller.pods) for caller in access.callers]
    monitoring = {
        "from": [_peer(access.monitoring_namespace, ())],
        "ports": [{"port": access.metrics_port, "protocol": "TCP"}],
    }
    return [api, monitoring]


def emit_network_policy(resolved: ResolvedSpec) -> dict[str, Any]:
    """Ingress to the server's ports only, from whom `network_policy_ingress` says; nothing else."""
    return manifest(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        object_meta(resolved, resolved.names.serving, COMPONENT),
        spec={
            "podSelector": {"matchLabels": selector_labels(resolved, COMPONENT)},
            "policyTypes": ["Ingress"],
            "ingress": network_policy_ingress(resolved),
        },
    )


def fallback_replicas(serve: Serve) -> int:
    """Replicas KEDA holds while Prometheus cannot answer: mid-range, never the minimum."""
    return max(serve.replicas.min, math.ceil((serve.replicas.min + serve.replicas.max) / 2), 1)


def emit_scaled_object(resolved: ResolvedSpec) -> dict[str, Any]:
    """KEDA ScaledObject on in-flight requests (vLLM: its waiting queue).

    `ignoreNullValues: "false"` makes an empty Prometheus answer an error, and the `fallback`
    then holds a safe replica count: a Prometheus outage never scales to the minimum.
    """
    serve = serve_section(resolved)
    api_version, kind, name = scale_target(resolved)
    if serving(resolved).engine == "vllm":
        query = f"sum({VLLM_WAITING_METRIC}{serving_selector(resolved)})"
    else:
        query = in_flight_query(resolved)
    return manifest(
        "keda.sh/v1alpha1",
        "ScaledObject",
        object_meta(resolved, resolved.names.serving, COMPONENT),
        spec={
            "scaleTargetRef": {"apiVersion": api_version, "kind": kind, "name": name},
            "pollingInterval": KEDA_POLLING_SECONDS,
            "cooldownPeriod": KEDA_COOLDOWN_SECONDS,
            "minReplicaCount": serve.replicas.min,
            "maxReplicaCount": serve.replicas.max,
            "fallback": {
                "failureThreshold": KEDA_FALLBACK_FAILURES,
                "replicas": fallback_replicas(serve),
            },
            "triggers": [
                {
                    "type": "prometheus",
                    "metricType": "AverageValue",
                    "metadata": {
                        "serverAddress": PROMETHEUS_URL,
                        "query": query,
                        "threshold": str(serving(resolved).autoscale_target),
                        "ignoreNullValues": "false",
                    },
                }
            ],
        },
    )


def emit_cpu_autoscaler(resolved: ResolvedSpec) -> dict[str, Any]:
    """HPA (autoscaling/v2) on CPU utilisation."""
    serve = serve_section(resolved)
    api_version, kind, name = scale_target(resolved)
    return manifest(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        object_meta(resolved, resolved.names.serving, COMPONENT),
        spec={
            "scaleTargetRef": {"apiVersion": api_version, "kind": kind, "name": name},
            "minReplicas": max(serve.replicas.min, 1),
            "maxReplicas": serve.replicas.max,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": serving(resolved).autoscale_target,
                        },
                    },
                }
            ],
        },
    )


def canary_steps(serve: Serve) -> list[dict[str, Any]]:
    """setWeight + pause for every step below 100 (reaching 100 is the promotion itself)."""
    steps: list[dict[str, Any]] = []
    for weight in serve.rollout.steps:
        if weight >= 100:
            break
        steps.extend(
            [
                {"setWeight": weight},
                {"pause": {"duration": f"{duration_seconds(serve.rollout.pause)}s"}},
            ]
        )
    return steps


def emit_rollout(resolved: ResolvedSpec) -> dict[str, Any]:
    """Argo Rollout: the Deployment's pods as a canary, analysed in the background."""
    serve = serve_section(resolved)
    spec: dict[str, Any] = {}
    if serving(resolved).replica_owner == "manifest":
        spec["replicas"] = serve.replicas.min
    spec["revisionHistoryLimit"] = 5
    spec["selector"] = {"matchLabels": selector_labels(resolved, COMPONENT)}
    spec["workloadRef"] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": resolved.names.serving,
        "scaleDown": "progressively",
    }
    spec["strategy"] = {
        "canary": {
            "maxSurge": "25%",
            "maxUnavailable": 0,
            "analysis": {
                "templates": [{"templateName": resolved.names.canary_analysis}],
                "startingStep": 1,
                "args": [{"name": CANARY_HASH_ARG, "valueFrom": {"podTemplateHashValue": "Latest"}}],
            },
            "steps": canary_steps(serve),
        }
    }
    return manifest(
        "argoproj.io/v1alpha1",
        "Rollout",
        object_meta(resolved, resolved.names.serving, COMPONENT),
        spec=spec,
    )


def _analysis_metric(name: str, query: str, limit: float) -> dict[str, Any]:
    # A canary with no traffic, or without a single 5xx (no such series for its pods), gives an empty
    # result, and traffic that stopped gives NaN: neither is a failure. Unguarded, Argo Rollouts
    # counts `result[0]` of an empty result as an Error and aborts a healthy canary.
    return {
        "name": name,
        "interval": ANALYSIS_INTERVAL,
        "failureLimit": ANALYSIS_FAILURE_LIMIT,
        "successCondition": f"len(result) == 0 || isNaN(result[0]) || result[0] <= {limit:g}",
        "provider": {"prometheus": {"address": PROMETHEUS_URL, "query": query}},
    }


def emit_analysis_template(resolved: ResolvedSpec) -> dict[str, Any]:
    """The canary's analysis: abort when its error rate or p95 latency passes `abort_if`."""
    serve = serve_section(resolved)
    abort_if = serve.rollout.abort_if
    canary = f'{CANARY_HASH_LABEL.replace("-", "_")}="{{{{args.{CANARY_HASH_ARG}}}}}"'
    metrics = []
    if abort_if.error_rate is not None:
        metrics.append(
            _analysis_metric(
                "error-rate",
                error_rate_query(resolved, canary, ANALYSIS_WINDOW),
                abort_if.error_rate,
            )
        )
    if abort_if.latency_p95_ms is not None:
        metrics.append(
            _analysis_metric(
                "latency-p95-ms",
                latency_p95_ms_query(resolved, canary, ANALYSIS_WINDOW),
                abort_if.latency_p95_ms,
            )
        )
    if not metrics:
        # Without thresholds the canary still needs a health signal: any 5xx burst above 5%.
        metrics.append(_analysis_metric("error-rate", error_rate_query(resolved, canary, ANALYSIS_WINDOW), 0.05))
    return manifest(
        "argoproj.io/v1alpha1",
        "AnalysisTemplate",
        object_meta(resolved, resolved.names.canary_analysis, COMPONENT),
        spec={"args": [{"name": CANARY_HASH_ARG}], "metrics": metrics},
    )


def emit_serving(resolved: ResolvedSpec) -> list[dict[str, Any]]:
    """Every serving resource of one environment (none without `serve`; KServe: its own module)."""
    if resolved.serving is None or not resolved.serving.has_deployment:
        return []
    owner = resolved.serving.replica_owner
    resources = [
        emit_deployment(resolved),
        emit_service(resolved),
        emit_disruption_budget(resolved),
        emit_network_policy(resolved),
    ]
    if owner == "keda":
        resources.append(emit_scaled_object(resolved))
    elif owner == "hpa":
        resources.append(emit_cpu_autoscaler(resolved))
    if is_canary(resolved):
        resources.extend([emit_rollout(resolved), emit_analysis_template(resolved)])
    return resources
