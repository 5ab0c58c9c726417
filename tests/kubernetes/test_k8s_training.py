"""Training manifests: GPU placement, spot, multi-node, JobSet, Kueue, retraining CronJob."""

from __future__ import annotations

import copy
import json

import yaml

from k8s_cases import _compile, _write_project, reference_spec
from mlc.runtime.contract import ExitCode


def _only(case, kind, component=None):
    found = [
        doc
        for path, doc in case.resources()
        if doc["kind"] == kind
        and (component is None or doc["metadata"]["labels"]["app.kubernetes.io/component"] == component)
    ]
    return found


def _env(case, env):
    return type(case)(
        case.name,
        case.root,
        case.artifacts,
        {p: d for p, d in case.documents.items() if f"/{env}/" in p},
    )


def test_gpu_job_limits_selects_and_tolerates_the_gpu(rendered):
    (job,) = _only(_env(rendered["churn"], "production"), "Job")
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["initContainers"]  # training; the gate runs after it
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-L4"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert job["spec"]["activeDeadlineSeconds"] == 7200
    assert job["spec"]["backoffLimit"] >= 1
    # git holds the Job: a TTL would delete it, the GitOps engine recreate it, and training rerun
    assert "ttlSecondsAfterFinished" not in job["spec"]
    assert container["command"] == [
        "mlc-runtime",
        "train",
        "--config",
        "/etc/mlc/runtime-config.json",
    ]


def test_gpu_type_with_several_products_uses_node_affinity(rendered):
    (job,) = _only(rendered["multi-node"], "Job")
    pod = job["spec"]["template"]["spec"]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["key"] == "nvidia.com/gpu.product"
    assert "NVIDIA-H100-80GB-HBM3" in terms[0]["matchExpressions"][0]["values"]


def test_cpu_job_has_no_gpu_placement(rendered):
    (job,) = _only(_env(rendered["churn"], "staging"), "Job")
    pod = job["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod and "tolerations" not in pod
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"]


def test_spot_job_ignores_disruptions_and_fails_fast_on_a_bad_config(rendered):
    (job,) = _only(_env(rendered["churn"], "production"), "Job")
    spec = job["spec"]
    assert spec["podReplacementPolicy"] == "Failed"
    rules = spec["podFailurePolicy"]["rules"]
    assert {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    } in rules
    fail = next(r for r in rules if r["action"] == "FailJob")
    config = json.loads(_only(_env(rendered["churn"], "production"), "ConfigMap")[0]["data"]["runtime-config.json"])
    assert fail["onExitCodes"]["values"] == [config["exit_codes"]["config_error"]]
    assert any(t.get("key") == "cloud.google.com/gke-spot" for t in spec["template"]["spec"]["tolerations"])
    assert (
        config["train"]["spot"] is True
        and config["train"]["checkpoint"]["uri"] == "s3://acme-ml/churn/production/checkpoints/"
    )
    (staging_job,) = _only(_env(rendered["churn"], "staging"), "Job")
    assert "podReplacementPolicy" not in staging_job["spec"]


def test_job_name_changes_with_the_training_spec(rendered):
    names = {
        env: _only(_env(rendered["churn"], env), "Job")[0]["metadata"]["name"] for env in ("staging", "production")
    }
    assert names["staging"] != names["production"]
    assert all(name.startswith("churn-train-") for name in names.values())


def test_every_training_pod_gates_and_promotes_what_it_trained(rendered):
    (job,) = _only(_env(rendered["churn"], "production"), "Job")
    pod = job["spec"]["template"]["spec"]
    (train,) = pod["initContainers"]
    (gate,) = pod["containers"]
    assert gate["command"] == ["mlc-runtime", "gate", "--config", "/etc/mlc/runtime-config.json", "--promote"]
    # The same image and volumes, and the service account's token for the gate alone (it pins
    # the version it promotes in the serving Deployment; the training code never sees the token).
    token = {"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": True}
    assert gate["image"] == train["image"] and gate["volumeMounts"] == [*train["volumeMounts"], token]
    assert "nvidia.com/gpu" not in gate["resources"]["limits"]  # scoring the eval set needs no GPU
    gate_rule = next(
        r for r in job["spec"]["podFailurePolicy"]["rules"] if r.get("onExitCodes", {}).get("containerName") == "gate"
    )
    # a verdict against the model fails the Job at once (training again gives the same model);
    # exit 2 (no verdict: the registry unreachable) retries the pod
    assert gate_rule["action"] == "FailJob"
    assert sorted(gate_rule["onExitCodes"]["values"]) == [ExitCode.FAILED, ExitCode.CONFIG_ERROR]


def test_multi_node_is_an_indexed_job_with_a_headless_service_and_torchrun(rendered):
    case = rendered["multi-node"]
    (job,) = _only(case, "Job")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == 4
    pod = spec["template"]["spec"]
    services = [s for s in _only(case, "Service") if s["spec"].get("clusterIP") == "None"]
    (service,) = services
    assert pod["subdomain"] == service["metadata"]["name"]
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["selector"].items() <= spec["template"]["metadata"]["labels"].items()
    command = pod["initContainers"][0]["command"]
    assert command[0] == "torchrun"
    assert "--nnodes=4" in command and "--nproc-per-node=8" in command
    assert "--node-rank=$(JOB_COMPLETION_INDEX)" in command
    assert f"--master-addr=$(MLC_JOB_NAME)-0.{service['metadata']['name']}" in command
    env = {e["name"] for e in pod["initContainers"][0]["env"]}
    assert {"JOB_COMPLETION_INDEX", "MLC_JOB_NAME"} <= env  # $(VAR) expands only declared vars
    # every pod gates; only index 0 (whose rank 0 registered the model) reaches a verdict
    (gate,) = pod["containers"]
    assert gate["command"][-2:] == ["--completion-index", "$(JOB_COMPLETION_INDEX)"]
    assert "JOB_COMPLETION_INDEX" in {e["name"] for e in gate["env"]}


def test_jobset_restarts_the_whole_group(rendered):
    case = rendered["jobset"]
    assert not _only(case, "Job")
    (jobset,) = _only(case, "JobSet")
    assert jobset["apiVersion"] == "jobset.x-k8s.io/v1alpha2"
    assert jobset["spec"]["failurePolicy"]["maxRestarts"] >= 1
    (replicated,) = jobset["spec"]["replicatedJobs"]
    job_spec = replicated["template"]["spec"]
    assert job_spec["completionMode"] == "Indexed" and job_spec["parallelism"] == 4
    assert job_spec["backoffLimit"] == 0
    assert jobset["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-team-a"


def test_queue_label_goes_on_the_job(rendered):
    (job,) = _only(rendered["multi-node"], "Job")
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-team-a"
    assert "kueue.x-k8s.io/queue-name" not in job["spec"]["template"]["metadata"]["labels"]
    (churn_job, _) = _only(rendered["churn"], "Job")
    assert "kueue.x-k8s.io/queue-name" not in churn_job["metadata"]["labels"]


def test_retraining_cronjob_runs_the_training_job_without_overlap(rendered):
    (cronjob,) = [
        c for c in _only(_env(rendered["churn"], "production"), "CronJob") if c["metadata"]["name"] == "churn-retrain"
    ]
    (job,) = _only(_env(rendered["churn"], "production"), "Job")
    assert cronjob["spec"]["schedule"] == "0 3 * * 1"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    template = dict(cronjob["spec"]["jobTemplate"]["spec"])
    # the CronJob's Jobs are not in git: they may expire
    assert template.pop("ttlSecondsAfterFinished") > 0
    assert template == job["spec"]


def test_training_jobs_in_git_are_recreated_by_the_gitops_engine_and_never_expire(rendered):
    argo = {"argocd.argoproj.io/sync-options": "Force=true,Replace=true"}
    flux = {"kustomize.toolkit.fluxcd.io/force": "enabled"}
    cases = {
        "churn": ("Job", argo),
        "jobset": ("JobSet", argo),
        "cpu-autoscale-flux": ("Job", flux),
        "kserve": ("Job", {}),
    }
    for case, (kind, expected) in cases.items():
        workloads = _only(rendered[case], kind)
        assert workloads, case
        for workload in workloads:
            annotations = workload["metadata"]["annotations"]
            engine_annotations = {k: v for k, v in annotations.items() if "argoproj" in k or "fluxcd" in k}
            assert engine_annotations == expected, case
            assert "ttlSecondsAfterFinished" not in workload["spec"], case


def test_runtime_config_is_mounted_and_describes_the_environment(rendered):
    case = _env(rendered["churn"], "production")
    (config_map,) = _only(case, "ConfigMap")
    text = config_map["data"]["runtime-config.json"]
    config = json.loads(text)
    assert text == json.dumps(config, sort_keys=True, indent=2) + "\n"
    assert config["environment"] == "production" and config["project"] == "churn"
    assert config["registered_model"] == "churn-classifier"
    assert config["train"]["entrypoint"] == "churn.model:train" and config["train"]["seed"] == 7
    assert config["contract"]["target"] == "churned"
    (job,) = _only(case, "Job")
    pod = job["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if "configMap" in v)
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]


def _training_job(tmp_path, name, change):
    spec = copy.deepcopy(reference_spec())
    spec.pop("environments")
    change(spec)
    artifacts = _compile(_write_project(tmp_path / name, spec))
    (job,) = [
        doc
        for artifact in artifacts
        for doc in yaml.safe_load_all(artifact.content)
        if doc and doc.get("kind") == "Job"
    ]
    return job


def test_job_name_follows_only_what_the_training_pod_depends_on(tmp_path):
    base = _training_job(tmp_path, "base", lambda spec: None)

    def more_replicas(spec):
        spec["serve"]["replicas"] = {"min": 5, "max": 50}
        spec["monitor"]["alerts"]["latency_p95_ms"] = 300

    def other_params(spec):
        spec["train"]["params"]["lr"] = 0.01

    serving_edit = _training_job(tmp_path, "serving-edit", more_replicas)
    training_edit = _training_job(tmp_path, "training-edit", other_params)
    assert serving_edit["metadata"]["name"] == base["metadata"]["name"]
    # Same name, so the immutable pod template must not change either (image tag included).
    assert serving_edit["spec"] == base["spec"]
    assert training_edit["metadata"]["name"] != base["metadata"]["name"]
