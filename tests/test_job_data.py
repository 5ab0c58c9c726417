"""Environments in a cluster: jobs reach their data (remote or on a declared volume), each
environment deploys to a namespace of its own, and `mlc run` keeps the base's local paths."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from mlc.compiler.pipeline import compile_spec_file, resolve_spec_file
from spec_fixtures import run_mlc
from test_validate import BASE, CLUSTER_BASE

DRIFT = "monitor:\n  drift:\n    current: {uri: data/live/}\n"
CONTRACT = "  contract:\n    target: y\n    features:\n      x: {type: float}\n"


def lines(spec: Path) -> list[str]:
    return [d.render() for d in resolve_spec_file(spec, "mlproject.yaml").diagnostics]


def test_a_local_path_in_an_environment_is_refused_at_its_line_with_the_fix(project) -> None:
    spec = project(BASE + "environments:\n  staging: {}\n")
    found = lines(spec)
    assert [line.splitlines()[0] for line in found] == [
        "mlproject.yaml:8:16: error: data.train.uri: 'data/train.csv' is a local path, but this environment's jobs "
        "run in a cluster, where a job's working directory holds only the image's code ('src/'), read-only: it "
        "cannot read it there (in environment 'staging')",
        "mlproject.yaml:9:15: error: data.eval.uri: 'data/eval.csv' is a local path, but this environment's jobs "
        "run in a cluster, where a job's working directory holds only the image's code ('src/'), read-only: it "
        "cannot read it there (in environment 'staging')",
    ]
    assert (
        "hint: give this environment a remote URI, e.g. `environments.staging.data.train.uri: s3://<bucket>/data/train.csv`"
        in found[0]
    )
    assert "`volumes: {data: {claim: <pvc>, path: data/}}`" in found[0]


def test_an_overlay_with_remote_uris_is_valid_and_the_base_keeps_its_local_paths(project, tmp_path: Path) -> None:
    overlay = "environments:\n  staging:\n    data: {train: {uri: s3://b/train.csv}, eval: {uri: s3://b/eval.csv}}\n"
    spec = project(BASE + overlay)
    assert lines(spec) == []
    (staging,) = resolve_spec_file(spec).resolved
    assert staging.spec.data.datasets()["train"].uri == "s3://b/train.csv"
    _, out, _ = run_mlc("run", "train", "--print-config", cwd=spec.parent)
    local = json.loads(out)
    assert (local["environment"], local["data"]["train"]["uri"]) == ("local", "data/train.csv")
    staged = json.loads(run_mlc("run", "train", "--env", "staging", "--print-config", cwd=spec.parent)[1])
    assert (staged["environment"], staged["data"]["train"]["uri"]) == ("staging", "s3://b/train.csv")


def test_outputs_and_drift_data_must_be_reachable_too(project) -> None:
    text = (
        CLUSTER_BASE.replace("  eval: {uri: s3://demo/eval.csv}\n", "  eval: {uri: s3://demo/eval.csv}\n" + CONTRACT)
        + "  checkpoint: {uri: checkpoints/}\n"
        + "serve:\n  batch: {schedule: '0 * * * *', input: s3://b/in/, output: scored/}\n"
        + DRIFT
        + "environments:\n  production: {}\n"
    )
    fields = [line.split(": error: ")[1].split(":")[0] for line in lines(project(text)) if ": error: " in line]
    assert fields == ["train.checkpoint.uri", "serve.batch.output", "monitor.drift.current.uri"]


def test_a_volume_holds_local_paths_and_the_job_pods_mount_it(project) -> None:
    volume = "volumes:\n  data: {claim: demo-data, path: data/}\n"
    text = BASE.replace("\ndata:\n", "\n" + volume + "data:\n", 1) + "  checkpoint: {uri: data/checkpoints/}\n"
    spec = project(text + "environments:\n  staging: {}\n")
    compiled = compile_spec_file(spec)
    assert compiled.ok, [d.render() for d in compiled.result.diagnostics]
    (job,) = [
        doc
        for artifact in compiled.artifacts
        if artifact.path.startswith("deploy/staging/job-")
        for doc in yaml.safe_load_all(artifact.content)
    ]
    pod = job["spec"]["template"]["spec"]
    assert {"name": "data-data", "persistentVolumeClaim": {"claimName": "demo-data"}} in pod["volumes"]
    mounts = [m for container in pod.get("initContainers", []) + pod["containers"] for m in container["volumeMounts"]]
    # The image's working directory is its code folder: `data/...` resolves under the mount.
    assert {"name": "data-data", "mountPath": "/opt/mlc/src/data"} in mounts


def test_a_read_only_volume_refuses_what_jobs_write(project) -> None:
    volume = "volumes:\n  data: {claim: demo-data, path: data/, read_only: true}\n"
    text = BASE.replace("\ndata:\n", "\n" + volume + "data:\n", 1) + "  checkpoint: {uri: data/checkpoints/}\n"
    found = lines(project(text + "environments:\n  staging: {}\n"))
    assert [line.splitlines()[0] for line in found] == [
        "mlproject.yaml:14:21: error: train.checkpoint.uri: jobs write to 'data/checkpoints/', but volume 'data' "
        "holding it is mounted read-only (in environment 'staging')"
    ]


def test_overlapping_volumes_are_refused(project) -> None:
    volumes = "volumes:\n  a: {claim: a, path: data/}\n  b: {claim: b, path: data/live}\n"
    found = lines(project(CLUSTER_BASE.replace("\ndata:\n", "\n" + volumes + "data:\n", 1)))
    assert [line.splitlines()[0] for line in found] == [
        "mlproject.yaml:9:23: error: volumes.b.path: 'data/live' overlaps the folder of volume 'a'"
    ]


def test_a_spec_without_environments_is_local_unless_gitops_deploys_it(project) -> None:
    assert lines(project(BASE)) == []
    deployed = BASE + "gitops: {engine: argocd, repo: 'https://github.com/acme/demo.git'}\n"
    found = [line.splitlines()[0] for line in lines(project(deployed))]
    assert found[0] == (
        "mlproject.yaml:8:16: error: data.train.uri: 'data/train.csv' is a local path, but argocd deploys the "
        "compiled jobs (deploy/default/) to a cluster, where a job's working directory holds only the image's "
        "code ('src/'), read-only: it cannot read it there"
    )


def test_each_environment_gets_a_namespace_of_its_own(project) -> None:
    spec = project(
        CLUSTER_BASE.replace("  name: demo\n", "  name: demo\n  namespace: ml-demo\n")
        + "environments:\n  staging: {}\n  production: {}\n  canary:\n    metadata: {namespace: ml-canary}\n"
    )
    resolved = resolve_spec_file(spec).resolved
    assert [(r.environment, r.namespace) for r in resolved] == [
        ("staging", "ml-demo-staging"),
        ("production", "ml-demo-production"),
        ("canary", "ml-canary"),
    ]
    compiled = compile_spec_file(spec)
    namespaces: dict[str, set[str]] = {}
    for artifact in compiled.artifacts:
        folder = artifact.path.split("/")[1]
        if artifact.path.startswith("deploy/") and folder in ("staging", "production"):
            for doc in yaml.safe_load_all(artifact.content):
                if doc["kind"] != "Kustomization":
                    namespaces.setdefault(folder, set()).add(doc["metadata"].get("namespace"))
    assert namespaces == {"staging": {"ml-demo-staging"}, "production": {"ml-demo-production"}}


def test_two_environments_in_one_namespace_are_refused(project) -> None:
    spec = project(
        CLUSTER_BASE
        + "environments:\n  staging:\n    metadata: {namespace: shared}\n  production:\n    metadata: {namespace: shared}\n"
    )
    found = lines(spec)
    assert [line.splitlines()[0] for line in found] == [
        "mlproject.yaml:16:27: error: environments.production.metadata.namespace: environments 'staging' and "
        "'production' would both deploy to namespace 'shared', where their resources (same names) would "
        "overwrite each other"
    ]


def test_an_environment_named_local_is_refused(project) -> None:
    found = lines(project(CLUSTER_BASE + "environments:\n  local: {}\n"))
    assert found[0].startswith("mlproject.yaml:13:3: error: environments.local: environment 'local' is the name")
