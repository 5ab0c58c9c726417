"""Serving manifests: Deployment, probes, autoscalers, canary, vLLM, Argo CD ignoreDifferences."""

from __future__ import annotations

import re

from mlc.compiler.compat import serving_images


def _docs(case, kind, env=None):
    return [doc for path, doc in case.resources() if doc["kind"] == kind and (env is None or f"/{env}/" in path)]


def _serving_policy(case, env):
    """The serving pods' NetworkPolicy (the job pods have their own)."""
    (policy,) = [
        doc
        for doc in _docs(case, "NetworkPolicy", env)
        if doc["metadata"]["labels"]["app.kubernetes.io/component"] == "serving"
    ]
    return policy


def test_autoscaled_deployment_has_no_replicas_and_probes(rendered):
    (deployment,) = _docs(rendered["churn"], "Deployment", "production")
    assert "replicas" not in deployment["spec"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    # Liveness and startup ask whether the process serves, not whether the model is loaded:
    # a slow model download must not restart the pod.
    assert container["startupProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["command"][:2] == ["mlc-runtime", "serve"]
    prestop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > prestop


def test_keda_never_scales_to_min_on_a_prometheus_outage(rendered):
    (scaled,) = _docs(rendered["churn"], "ScaledObject", "production")
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["ignoreNullValues"] == "false"
    assert "mlc_requests_in_flight" in trigger["metadata"]["query"]
    assert trigger["metadata"]["threshold"] == "8"
    fallback = scaled["spec"]["fallback"]
    assert fallback["replicas"] > scaled["spec"]["minReplicaCount"]
    assert scaled["spec"]["minReplicaCount"] == 3 and scaled["spec"]["maxReplicaCount"] == 30
    # canary in production: KEDA scales the Rollout, which owns the pods
    assert scaled["spec"]["scaleTargetRef"]["kind"] == "Rollout"
    (staging,) = _docs(rendered["churn"], "ScaledObject", "staging")
    assert staging["spec"]["scaleTargetRef"]["kind"] == "Deployment"


def test_cpu_autoscale_is_an_hpa(rendered):
    (hpa,) = _docs(rendered["cpu-autoscale-flux"], "HorizontalPodAutoscaler")
    metric = hpa["spec"]["metrics"][0]["resource"]
    assert metric["name"] == "cpu" and metric["target"]["averageUtilization"] == 70
    assert not _docs(rendered["cpu-autoscale-flux"], "ScaledObject")


def test_canary_rollout_references_the_deployment_and_analyses(rendered):
    (rollout,) = _docs(rendered["churn"], "Rollout", "production")
    assert rollout["spec"]["workloadRef"]["kind"] == "Deployment"
    canary = rollout["spec"]["strategy"]["canary"]
    assert canary["steps"] == [
        {"setWeight": 10},
        {"pause": {"duration": "600s"}},
        {"setWeight": 50},
        {"pause": {"duration": "600s"}},
    ]
    (template,) = _docs(rendered["churn"], "AnalysisTemplate", "production")
    assert canary["analysis"]["templates"] == [{"templateName": template["metadata"]["name"]}]
    conditions = {m["name"]: m["successCondition"] for m in template["spec"]["metrics"]}
    assert conditions["error-rate"].endswith("<= 0.02")
    assert conditions["latency-p95-ms"].endswith("<= 120")
    assert all("{{args.canary-hash}}" in m["provider"]["prometheus"]["query"] for m in template["spec"]["metrics"])
    assert not _docs(rendered["churn"], "Rollout", "staging")  # staging rolls


def _named(case, kind, env, name):
    (doc,) = [doc for doc in _docs(case, kind, env) if doc["metadata"]["name"] == name]
    return doc


def test_a_canarys_pods_serve_the_version_the_promoting_gate_pins(rendered):
    """Production canaries: its serving pods read the pinned version from their template's
    annotation, and the training pods' gate may patch exactly that Deployment. Staging rolls: its
    servers follow the alias and its training pods have no API token."""
    case = rendered["churn"]
    (container,) = _named(case, "Deployment", "production", "churn-serve")["spec"]["template"]["spec"]["containers"]
    pinned = [v for v in container["env"] if v["name"] == "MLC_SERVE_MODEL_VERSION"]
    assert pinned == [
        {
            "name": "MLC_SERVE_MODEL_VERSION",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['mlc.dev/model-version']"}},
        }
    ]
    trained = [
        doc
        for kind in ("Job", "CronJob")
        for doc in _docs(case, kind, "production")
        if doc["metadata"]["labels"]["app.kubernetes.io/component"] == "training"
    ]
    assert sorted(doc["kind"] for doc in trained) == ["CronJob", "Job"]  # the first training, and retraining
    for training in trained:
        kind, spec = training["kind"], training["spec"]
        pod = (spec["jobTemplate"]["spec"] if kind == "CronJob" else spec)["template"]["spec"]
        assert (pod["serviceAccountName"], pod["automountServiceAccountToken"]) == ("churn-promote", False)
        assert pod["containers"][0]["command"][1:2] == ["gate"]  # the gate, after training, pins what it promotes
        # Its token is the gate's alone: the training code, in the init container, never sees it.
        mounts = {
            c["name"]: {m["mountPath"] for m in c["volumeMounts"]} for c in [*pod["initContainers"], *pod["containers"]]
        }
        token_folder = "/var/run/secrets/kubernetes.io/serviceaccount"
        assert token_folder in mounts["gate"] and token_folder not in mounts["train"]
    role = _named(case, "Role", "production", "churn-promote")
    assert role["rules"] == [
        {"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["churn-serve"], "verbs": ["patch"]}
    ]
    binding = _named(case, "RoleBinding", "production", "churn-promote")
    assert binding["roleRef"]["name"] == "churn-promote"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "churn-promote", "namespace": "ml-churn-production"}
    ]
    (config_map,) = _docs(case, "ConfigMap", "production")
    assert '"pinned_deployment": "churn-serve"' in config_map["data"]["runtime-config.json"]

    (staging,) = _docs(case, "Deployment", "staging")
    assert not [
        v
        for v in staging["spec"]["template"]["spec"]["containers"][0]["env"]
        if "valueFrom" in v and "fieldRef" in v["valueFrom"]
    ]
    for staging_job in _docs(case, "Job", "staging"):
        assert "serviceAccountName" not in staging_job["spec"]["template"]["spec"]
    assert not [doc for doc in _docs(case, "Role", "staging") if doc["metadata"]["name"] == "churn-promote"]
    (staging_config,) = _docs(case, "ConfigMap", "staging")
    assert "pinned_deployment" not in staging_config["data"]["runtime-config.json"]


def test_service_pdb_and_network_policy_select_the_serving_pods(rendered):
    (deployment,) = _docs(rendered["churn"], "Deployment", "staging")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    (service,) = [s for s in _docs(rendered["churn"], "Service", "staging")]
    (pdb,) = _docs(rendered["churn"], "PodDisruptionBudget", "staging")
    policy = _serving_policy(rendered["churn"], "staging")
    assert service["spec"]["selector"].items() <= labels.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["spec"]["ingress"] == [{"ports": [{"port": 8080, "protocol": "TCP"}]}]


def test_vllm_serves_the_pinned_revision_on_gpus_and_scales_on_its_queue(rendered):
    case = rendered["llm-chat"]
    (deployment,) = _docs(case, "Deployment", "production")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "--revision=a09a35458c702b33eeacc393d103063234e8bc28" in container["command"]
    assert "--tensor-parallel-size=1" in container["command"]
    assert "--max-model-len=8192" in container["command"]
    pinned = serving_images().vllm
    assert container["image"] == f"{pinned.repository}:{pinned.tag}@{pinned.digest}"
    assert re.fullmatch(r"docker\.io/vllm/vllm-openai:v[0-9.]+@sha256:[0-9a-f]{64}", container["image"])
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    (scaled,) = _docs(case, "ScaledObject", "production")
    assert "vllm:num_requests_waiting" in scaled["spec"]["triggers"][0]["metadata"]["query"]
    assert scaled["spec"]["triggers"][0]["metadata"]["threshold"] == "4"


def test_argocd_ignores_replicas_where_autoscaled_and_the_canarys_pinned_version(rendered):
    (application,) = rendered["churn"].documents["deploy/clusters/production.yaml"]
    ignored = {(d["kind"], d["name"]): d["jsonPointers"] for d in application["spec"]["ignoreDifferences"]}
    assert ignored == {
        ("Rollout", "churn-serve"): ["/spec/replicas"],
        # What the gate's promotion patches (`runtime/serving_pin.py`): selfHeal must not undo it.
        ("Deployment", "churn-serve"): ["/spec/replicas", "/spec/template/metadata/annotations/mlc.dev~1model-version"],
    }
    sync = application["spec"]["syncPolicy"]
    assert sync["automated"] == {"prune": True, "selfHeal": True}
    assert {"ServerSideApply=true", "CreateNamespace=true"} <= set(sync["syncOptions"])
    assert application["spec"]["source"]["path"] == "deploy/production"


def test_flux_syncs_each_environment_folder(rendered):
    source, sync = rendered["llm-chat"].documents["deploy/clusters/production.yaml"]
    assert source["kind"] == "GitRepository" and sync["kind"] == "Kustomization"
    assert sync["spec"]["path"] == "./deploy/production" and sync["spec"]["prune"] is True
    assert sync["spec"]["sourceRef"] == {
        "kind": "GitRepository",
        "name": source["metadata"]["name"],
    }


def test_batch_inference_is_an_indexed_cronjob_scoring_one_shard_per_index(rendered):
    (cronjob,) = [
        c for c in _docs(rendered["reference"], "CronJob", "production") if c["metadata"]["name"] == "churn-batch"
    ]
    job = cronjob["spec"]["jobTemplate"]["spec"]
    assert job["completionMode"] == "Indexed" and job["parallelism"] == job["completions"] == 8
    command = job["template"]["spec"]["containers"][0]["command"]
    assert command[:2] == ["mlc-runtime", "batch"]
    assert command[-4:] == ["--shard", "$(JOB_COMPLETION_INDEX)", "--shards", "8"]
    assert cronjob["spec"]["schedule"] == "0 * * * *"


def test_serve_access_admits_only_the_callers_and_monitoring(rendered):
    case = rendered["access"]
    for env in ("staging", "production"):
        policy = _serving_policy(case, env)
        namespace = policy["metadata"]["namespace"]

        def peer(ns, **pods):
            selected = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
            return {**selected, "podSelector": {"matchLabels": pods}} if pods else selected

        assert policy["spec"]["ingress"] == [
            {
                "ports": [{"port": 8080, "protocol": "TCP"}],
                "from": [
                    peer("web", app="checkout"),
                    peer("ingress-nginx", **{"app.kubernetes.io/name": "ingress-nginx"}),
                    peer(namespace, app="batch-client"),  # no namespace: the project's own
                ],
            },
            {"from": [peer("monitoring")], "ports": [{"port": 9090, "protocol": "TCP"}]},
        ]
        (deployment,) = _docs(case, "Deployment", env)
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["ports"] == [
            {"name": "http", "containerPort": 8080, "protocol": "TCP"},
            {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
        ]
        assert {"name": "api-keys", "mountPath": "/etc/mlc-api-keys", "readOnly": True} in container["volumeMounts"]
        assert {"name": "api-keys", "secret": {"secretName": "churn-api-keys", "defaultMode": 0o440}} in pod["volumes"]
        (service,) = _docs(case, "Service", env)
        assert [p["name"] for p in service["spec"]["ports"]] == ["http", "metrics"]
        (monitor,) = [m for m in _docs(case, "ServiceMonitor", env) if m["metadata"]["name"].endswith("-serve")]
        assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
        # The runtime config the pod mounts tells the server the same, in the contract's shape.
        from mlc.runtime.contract.config import Access, RateLimit, RuntimeConfig

        (config_map,) = _docs(case, "ConfigMap", env)
        config = RuntimeConfig.model_validate_json(next(iter(config_map["data"].values())))
        assert config.serve.access == Access(
            metrics_port=9090,
            api_keys_dir="/etc/mlc-api-keys",
            rate_limit=RateLimit(requests_per_second=50.5, burst=51),
            audit="requests",
        )


def test_without_serve_access_nothing_changes(rendered):
    policy = _serving_policy(rendered["reference"], "production")
    assert policy["spec"]["ingress"] == [{"ports": [{"port": 8080, "protocol": "TCP"}]}]
    (config_map,) = _docs(rendered["reference"], "ConfigMap", "production")
    assert '"access"' not in next(iter(config_map["data"].values()))
