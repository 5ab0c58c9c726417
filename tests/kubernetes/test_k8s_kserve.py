"""KServe serving: the InferenceService (RawDeployment, MLflow format, the champion from the
registry) and the ClusterStorageContainer that fetches `models:/<model>@champion` for it.

The shared folder has no schema for ClusterStorageContainer (serving.kserve.io/v1alpha1), so
its shape is checked here against a small schema written from KServe's CRD (`spec.container`,
`spec.supportedUriFormats`, optional `spec.workloadType`), whose container is Kubernetes' own
strict Container schema (1.33, from kubernetes-validate's package data).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource

from k8s_cases import reference_spec
from k8s_validators import KUBERNETES_VERSION

KSERVE_CASES = ("kserve", "kserve-cpu-gpu")
MODEL_URI = "models:/churn-classifier@champion"


def _docs(case, kind):
    return [(path, doc) for path, doc in case.resources() if doc["kind"] == kind]


def _one(case, kind, env):
    (doc,) = [doc for path, doc in _docs(case, kind) if f"/{env}/" in path]
    return doc


def _storage_container_schema() -> tuple[dict, Registry]:
    try:
        package = resources.files("kubernetes_validate")
    except ModuleNotFoundError:
        pytest.skip("kubernetes-validate not installed (its Container schema is reused)")
    folder = package / "kubernetes-json-schema" / f"v{KUBERNETES_VERSION}-local-strict"
    definitions = Resource.from_contents(json.loads((folder / "_definitions.json").read_text(encoding="utf-8")))
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        # Under kubernetes.io/api/ so `/api/_definitions.json` refs resolve as in kubernetes-validate.
        "$id": "https://kubernetes.io/api/mlc-test/clusterstoragecontainer",
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "serving.kserve.io/v1alpha1"},
            "kind": {"const": "ClusterStorageContainer"},
            "metadata": {
                "type": "object",
                "required": ["name"],
                "not": {"required": ["namespace"]},  # cluster-scoped
            },
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["container", "supportedUriFormats"],
                "properties": {
                    "container": {"$ref": "/api/_definitions.json#/$defs/io.k8s.api.core.v1.Container"},
                    "supportedUriFormats": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "minProperties": 1,
                            "maxProperties": 1,
                            "properties": {"prefix": {"type": "string"}, "regex": {"type": "string"}},
                        },
                    },
                    "workloadType": {"enum": ["initContainer", "localModelDownloadJob"]},
                },
            },
        },
    }
    return schema, definitions @ Registry()


def test_every_kserve_environment_emits_the_service_and_its_storage_container(rendered):
    for name in KSERVE_CASES:
        case = rendered[name]
        services = _docs(case, "InferenceService")
        containers = _docs(case, "ClusterStorageContainer")
        assert services and len(services) == len(containers), name
        # KServe creates the Deployment, Service and HPA itself.
        assert not _docs(case, "Deployment") and not _docs(case, "HorizontalPodAutoscaler")
        assert not _docs(case, "ScaledObject") and not _docs(case, "Rollout")


def test_storage_container_has_the_shape_kserve_accepts(rendered):
    schema, registry = _storage_container_schema()
    validator = jsonschema.Draft202012Validator(schema, registry=registry)
    checked, failures = 0, []
    for name in KSERVE_CASES:
        for path, doc in _docs(rendered[name], "ClusterStorageContainer"):
            checked += 1
            failures.extend(f"{name}:{path}: {e.message}" for e in validator.iter_errors(doc))
    assert checked and not failures, "\n".join(failures)


def test_the_shape_check_rejects_a_broken_storage_container(rendered):
    schema, registry = _storage_container_schema()
    validator = jsonschema.Draft202012Validator(schema, registry=registry)
    (_, doc), *_ = _docs(rendered["kserve"], "ClusterStorageContainer")
    broken = {**doc, "spec": {**doc["spec"], "container": {**doc["spec"]["container"], "comand": []}}}
    assert list(validator.iter_errors(broken))


def test_inference_service_serves_the_champion_in_raw_deployment_mode(rendered):
    service = _one(rendered["kserve"], "InferenceService", "production")
    annotations = service["metadata"]["annotations"]
    assert annotations["serving.kserve.io/deploymentMode"] == "RawDeployment"
    model = service["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "mlflow"}
    assert model["storageUri"] == MODEL_URI
    assert model["resources"]["requests"] == model["resources"]["limits"] == {"cpu": "2", "memory": "4Gi"}
    assert "canaryTrafficPercent" not in service["spec"]["predictor"]


def test_exactly_one_storage_container_claims_the_model_uri(rendered):
    for name in KSERVE_CASES:
        case = rendered[name]
        for path, service in _docs(case, "InferenceService"):
            folder = path.rsplit("/", 1)[0]
            uri = service["spec"]["predictor"]["model"]["storageUri"]
            claims = [
                fmt["prefix"]
                for other_path, doc in _docs(case, "ClusterStorageContainer")
                if other_path.startswith(f"{folder}/")
                for fmt in doc["spec"]["supportedUriFormats"]
                if uri.startswith(fmt["prefix"])
            ]
            assert claims == ["models:/churn-classifier@"], (name, path)


def test_storage_initializer_runs_fetch_model_from_the_serve_image(rendered):
    container = _one(rendered["kserve"], "ClusterStorageContainer", "production")["spec"]["container"]
    assert container["name"] == "storage-initializer"  # KServe finds its init container by name
    assert container["image"].startswith("ghcr.io/acme/churn-serve:")
    env = {e["name"]: e for e in container["env"]}
    # The spec's tracking server, whatever it is: the initializer reaches the same registry as training.
    assert env["MLFLOW_TRACKING_URI"]["value"] == reference_spec()["registry"]["tracking_uri"]
    assert env["MLFLOW_TRACKING_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "mlflow-token"
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True and context["runAsNonRoot"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}


def test_kserve_arguments_reach_fetch_model_intact(rendered, tmp_path):
    """KServe appends [source URI, destination] to the command: run it with a stand-in."""
    container = _one(rendered["kserve"], "ClusterStorageContainer", "production")["spec"]["container"]
    stand_in = tmp_path / "mlc-runtime"
    stand_in.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n', encoding="utf-8")
    stand_in.chmod(stand_in.stat().st_mode | stat.S_IXUSR)
    uri = "models:/churn classifier@champion;touch pwned"  # spaces and shell syntax stay data
    run = subprocess.run(
        [*container["command"], uri, "/mnt/models"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"},
        cwd=tmp_path,
    )
    assert run.stdout.splitlines() == ["fetch-model", "--uri", uri, "--dest", "/mnt/models"]
    assert not Path(tmp_path / "pwned").exists()


def test_replicas_are_fixed_without_autoscaling(rendered):
    predictor = _one(rendered["kserve"], "InferenceService", "production")["spec"]["predictor"]
    assert predictor["minReplicas"] == predictor["maxReplicas"] == 3
    assert "scaleMetric" not in predictor


def test_cpu_autoscaling_is_kserves_hpa(rendered):
    service = _one(rendered["kserve-cpu-gpu"], "InferenceService", "default")
    predictor = service["spec"]["predictor"]
    assert service["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "hpa"
    assert predictor["scaleMetric"] == "cpu" and predictor["scaleTarget"] == 60
    assert predictor["minReplicas"] == 1  # min 0: RawDeployment cannot scale to zero
    assert predictor["maxReplicas"] == 4


def test_gpu_predictor_is_placed_and_tolerates_the_gpu_taint(rendered):
    predictor = _one(rendered["kserve-cpu-gpu"], "InferenceService", "default")["spec"]["predictor"]
    assert predictor["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert predictor["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-L4"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in predictor["tolerations"]


def test_pdb_and_network_policy_select_the_predictor_pods(rendered):
    case = rendered["kserve"]
    pod_labels = _one(case, "InferenceService", "production")["spec"]["predictor"]["labels"]
    pdb = _one(case, "PodDisruptionBudget", "production")
    (policy,) = [
        doc
        for path, doc in _docs(case, "NetworkPolicy")
        if "/production/" in path and doc["metadata"]["labels"]["app.kubernetes.io/component"] == "serving"
    ]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert ports == {8080, 8082}


def test_kserve_is_monitored_on_mlserver_metrics(rendered):
    case = rendered["kserve"]
    monitor = _one(case, "PodMonitor", "production")
    predictor = _one(case, "InferenceService", "production")["spec"]["predictor"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= predictor["labels"].items()
    assert monitor["spec"]["podMetricsEndpoints"] == [{"portNumber": 8082, "path": "/metrics", "interval": "30s"}]
    assert not _docs(case, "ServiceMonitor") or all(
        "pushgateway" in doc["metadata"]["name"] for _, doc in _docs(case, "ServiceMonitor")
    )
    rules = _one(case, "PrometheusRule", "production")["spec"]["groups"][0]["rules"]
    exprs = {rule["alert"]: rule["expr"] for rule in rules}
    latency = next(e for name, e in exprs.items() if name.endswith("LatencyP95High"))
    errors = next(e for name, e in exprs.items() if name.endswith("ErrorRateHigh"))
    job = f'job="{monitor["metadata"]["namespace"]}/{monitor["metadata"]["name"]}"'
    assert "rest_server_requests_duration_seconds_bucket" in latency and job in latency
    assert "rest_server_requests{" in errors and 'status_code=~"5.."' in errors and job in errors
