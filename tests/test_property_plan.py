"""What validate accepts, plan compiles: valid specs drawn across every section, engine, rollout,
autoscaler, environment and GitOps engine go through the whole pipeline without a traceback.

A drawn spec the validator refuses is a finding too: either the drawing or the validator is
wrong, and the test shows the diagnostics (each must be positioned at a line). Every valid draw
is compiled and planned through the public API, and its manifests, workflows and Dockerfiles
exist for every environment.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlc.compiler as mlc
from spec_fixtures import make_project

POSITIONED = re.compile(r"^mlproject\.yaml:\d+:\d+: (error|warning): ")
CRONS = st.sampled_from(["0 3 * * 1", "*/30 * * * *", "@daily", "15 2-5/2 * * MON-FRI", "0 0 1 JAN,JUL *"])
GPU_TYPES = st.sampled_from(["nvidia-l4", "nvidia-a100-80gb", "nvidia-h100-80gb", "nvidia-t4"])
METRICS = {
    "binary": ["accuracy", "f1", "roc_auc", "log_loss", "latency_p95_ms"],
    "multiclass": ["accuracy", "f1", "top3_accuracy", "log_loss"],
    "regression": ["mae", "rmse", "r2", "latency_p50_ms"],
}


@st.composite
def train_sections(draw: st.DrawFn) -> dict[str, Any]:
    gpus = draw(st.sampled_from([0, 0, 1, 2]))
    nodes = draw(st.integers(1, 3))
    train: dict[str, Any] = {
        "entrypoint": "demo.model:train",
        "params": draw(st.dictionaries(st.sampled_from(["lr", "epochs", "batch_size"]), st.integers(1, 100))),
        "seed": draw(st.integers(0, 2**31 - 1)),
        "resources": {"gpus": gpus, "cpu": draw(st.sampled_from([1, "500m", 4])), "memory": "8Gi"},
        "distributed": {"nodes": nodes, "backend": draw(st.sampled_from(["job", "jobset"]))},
        "timeout": draw(st.sampled_from(["30m", "6h", "1d"])),
    }
    if gpus:
        train["resources"]["gpu_type"] = draw(GPU_TYPES)
    if draw(st.booleans()):
        train["spot"] = True
        train["checkpoint"] = {"uri": "s3://bucket/ckpt/", "every": draw(st.sampled_from(["epoch", "100steps", "30m"]))}
    if draw(st.booleans()):
        train["schedule"] = draw(CRONS)
    if draw(st.booleans()):
        train["queue"] = "gpu-team-a"
    return train


@st.composite
def serve_sections(draw: st.DrawFn, trains: bool) -> dict[str, Any]:
    engines = ["runtime", "kserve", "vllm"] if trains else ["vllm", "kserve"]
    engine = draw(st.sampled_from(engines))
    low = draw(st.integers(0 if engine == "runtime" else 1, 3))
    serve: dict[str, Any] = {"engine": engine, "port": draw(st.sampled_from([8080, 8000, 9000]))}
    serve["replicas"] = {"min": low, "max": low + draw(st.integers(0, 5)) or 1}
    if engine == "vllm":
        gpus = draw(st.integers(1, 2))
        serve["llm"] = {"model": "Qwen/Qwen2.5-7B-Instruct", "revision": "a" * 40, "tensor_parallel": gpus}
        serve["resources"] = {"gpus": gpus, "gpu_type": "nvidia-l4", "cpu": 8, "memory": "32Gi"}
        serve["autoscale"] = {"on": draw(st.sampled_from(["queue_depth", "none"]))}
    elif engine == "kserve":
        serve["autoscale"] = {"on": draw(st.sampled_from(["cpu", "none"]))}
    else:
        serve["autoscale"] = {"on": draw(st.sampled_from(["queue_depth", "cpu", "none"]))}
        if draw(st.booleans()):
            serve["autoscale"]["target"] = draw(st.integers(1, 90))
        strategy = draw(st.sampled_from(["rolling", "canary"]))
        serve["rollout"] = {"strategy": strategy}
        if strategy == "canary":
            serve["rollout"] |= {"steps": [10, 50, 100], "pause": "5m", "abort_if": {"error_rate": 0.02}}
        if draw(st.booleans()):
            serve["batch"] = {"schedule": draw(CRONS), "input": "s3://b/in/", "output": "s3://b/out/"}
            serve["batch"]["parallelism"] = draw(st.integers(1, 4))
    return serve


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    trains = draw(st.booleans())
    serves = draw(st.booleans()) or not trains
    task = draw(st.sampled_from(sorted(METRICS)))
    spec: dict[str, Any] = {
        "apiVersion": "mlc/v1",
        "kind": "MLProject",
        "metadata": {"name": draw(st.sampled_from(["demo", "churn-model", "a"])), "labels": {"team": "ml"}},
        "images": {"registry": "ghcr.io/acme"},
        "data": {
            "train": {"uri": "s3://bucket/train/", "format": "parquet"},
            "eval": {"uri": "s3://bucket/eval.parquet"},
            "contract": {
                "target": "label",
                "task": task,
                "features": {"x": {"type": "float", "min": 0}, "plan": {"type": "category", "values": ["a", "b"]}},
            },
        },
    }
    if trains:
        spec["train"] = draw(train_sections())
        spec["evaluate"] = {"metrics": METRICS[task], "gates": [{"metric": METRICS[task][0], "min": 0.1}]}
        if task == "regression":
            spec["evaluate"]["gates"] = [{"metric": "mae", "max": 10.0}]
    if serves:
        spec["serve"] = draw(serve_sections(trains))
    monitor: dict[str, Any] = {"alerts": {}}
    if serves and draw(st.booleans()):
        monitor["alerts"] = {"latency_p95_ms": 150, "error_rate": 0.01}
    builds_an_image = trains or spec["serve"]["engine"] == "kserve"  # the drift check runs in it
    if builds_an_image and draw(st.booleans()):
        on_drift = draw(st.sampled_from(["alert", "retrain"])) if trains else "alert"
        monitor["drift"] = {"schedule": draw(CRONS), "current": {"uri": "s3://bucket/live/"}, "on_drift": on_drift}
    spec["monitor"] = monitor
    engine = draw(st.sampled_from(["none", "argocd", "flux"]))
    spec["gitops"] = {"engine": engine, "path": draw(st.sampled_from(["deploy", "k8s/out"]))}
    if engine != "none":
        spec["gitops"]["repo"] = "https://github.com/acme/demo.git"
    jobs = ["validate", "plan"]
    if trains:
        jobs += draw(st.sampled_from([[], ["data_tests"], ["smoke_train"], ["data_tests", "smoke_train", "gate"]]))
    spec["ci"] = {"pull_request": jobs, "bot": {"commit": draw(st.booleans()), "comment": draw(st.booleans())}}
    environments = draw(st.lists(st.sampled_from(["staging", "production", "dev"]), unique=True, max_size=3))
    spec["environments"] = {}
    for name in environments:
        overlay: dict[str, Any] = {}
        if "serve" in spec and spec["serve"]["engine"] == "runtime" and draw(st.booleans()):
            overlay["serve"] = {"replicas": {"min": 1, "max": 9}}
        if trains and draw(st.booleans()):
            overlay["train"] = {"resources": {"gpus": 0}}
        spec["environments"][name] = overlay
    return spec


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(specs())
def test_what_validate_accepts_plan_compiles(tmp_path_factory, spec: dict[str, Any]) -> None:
    path = make_project(tmp_path_factory.mktemp("drawn"), yaml.safe_dump(spec, sort_keys=False))
    result = mlc.validate_spec(path, display="mlproject.yaml")
    problems = [d.render() for d in result.diagnostics if d.severity is mlc.Severity.ERROR]
    assert all(POSITIONED.match(p) for p in problems), problems
    assert result.ok, f"a drawn spec was refused; the drawing or the validator is wrong:\n{problems}"
    compiled = mlc.compile_spec(path)
    assert compiled.ok
    paths = {artifact.path for artifact in compiled.artifacts}
    for environment in result.resolved:
        assert f"{environment.manifests_folder}/kustomization.yaml" in paths
    assert any(p.startswith(".github/workflows/") for p in paths)
    run = mlc.plan_specs([path])
    assert run.ok, [d.render() for d in run.diagnostics]
    assert {change.action for plan in run.plans for change in plan.changes} == {mlc.Action.CREATE}
