"""The model's lifecycle on a real MLflow tracking server: train -> gate -> promote -> serve
`models:/...@champion` -> drift with the champion's logged profile -> rollback.

The server is `mlflow server` started here with MLflow's basic-auth app, once on sqlite and once
on PostgreSQL (started here too), artifacts proxied through it. The churn example is compiled
with the server's URI in `registry.tracking_uri` and the credentials in `secrets:`; every
command runs with the runtime config the compiled ConfigMap holds and the environment the
compiled pod spec gives it, its `secretKeyRef`s resolved from a stand-in Secret, as the
kubelet would. One epoch of training keeps each run short.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from object_store import SECRET as STORE_SECRET
from object_store import ObjectStore, churn_bucket
from real_services import TrackingServer, mlflow_server, postgresql, wait_for
from served_project import RUNTIME_CLI, free_port, get, post, runtime_env

from mlc.compiler.pipeline import compile_spec_file
from mlc.runtime.contract import job_arguments

REPO = Path(__file__).resolve().parents[2]
ENVIRONMENT = "staging"
MODEL = "churn-classifier"
SECRET = "mlflow-auth"  # the Kubernetes Secret the spec's `secrets:` names


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingServer]:
    """`mlflow server --app-name basic-auth` on this backend, for the module's tests of that backend."""
    folder = tmp_path_factory.mktemp(f"mlflow-{request.param}")
    with contextlib.ExitStack() as stack:
        backend = f"sqlite:///{folder}/mlflow.db" if request.param == "sqlite" else stack.enter_context(postgresql())
        yield stack.enter_context(mlflow_server(folder / "server", backend, basic_auth=True))


@pytest.fixture(scope="module")
def bucket() -> Iterator[ObjectStore]:
    """The example's data where staging reads it: s3://acme-ml/churn/ on moto's S3 server."""
    with churn_bucket() as store:
        yield store


@pytest.fixture(scope="module")
def project(server: TrackingServer, bucket: ObjectStore, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The churn example compiled against `server`: its folder, runtime config, manifests and pod environment."""
    root = tmp_path_factory.mktemp(f"churn-{server.backend}") / "churn"
    shutil.copytree(REPO / "examples" / "churn", root)
    spec = (root / "mlproject.yaml").read_text()
    spec = spec.replace(
        "registry:\n  model: churn-classifier\n", f"registry:\n  model: {MODEL}\n  tracking_uri: {server.url}\n"
    )
    spec = spec.replace("    epochs: 20\n", "    epochs: 1\n")
    token = "  MLFLOW_TRACKING_TOKEN: {k8s: mlflow-token, key: token}\n"
    assert token in spec
    spec = spec.replace(  # MLflow's basic-auth app takes a user and a password, from one Secret
        token,
        f"  MLFLOW_TRACKING_USERNAME: {{k8s: {SECRET}, key: username}}\n"
        f"  MLFLOW_TRACKING_PASSWORD: {{k8s: {SECRET}, key: password}}\n",
    )
    (root / "mlproject.yaml").write_text(spec)
    compiled = compile_spec_file(root / "mlproject.yaml")
    assert compiled.ok, [d.render() for d in compiled.result.diagnostics]
    manifests = {
        artifact.path: [doc for doc in yaml.safe_load_all(artifact.content) if doc]
        for artifact in compiled.artifacts
        if artifact.path.startswith(f"deploy/{ENVIRONMENT}/")
    }
    (config_map,) = [doc for docs in manifests.values() for doc in docs if doc["kind"] == "ConfigMap"]
    config = root / ".mlc" / ENVIRONMENT / "runtime-config.json"
    config.parent.mkdir(parents=True)
    config.write_text(config_map["data"]["runtime-config.json"])
    assert json.loads(config.read_text())["tracking_uri"] == server.url
    assert server.credentials is not None
    secret = {"username": server.credentials[0], "password": server.credentials[1]}
    secrets = {SECRET: secret, STORE_SECRET: bucket.secret()}
    return {"root": root, "config": config, "manifests": manifests, "secrets": secrets, "store": bucket.environment()}


def containers(manifests: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """`kind/name` -> the first container of every workload that runs mlc-runtime."""
    found = {}
    for docs in manifests.values():
        for doc in docs:
            spec = doc.get("spec", {})
            template = spec.get("jobTemplate", {}).get("spec", {}).get("template") or spec.get("template")
            if template and doc["kind"] in ("Job", "CronJob", "Deployment"):
                container = template["spec"]["containers"][0]
                if container.get("command", [""])[0] == "mlc-runtime":
                    found[f"{doc['kind']}/{doc['metadata']['name']}"] = container
    return found


def pod_environment(container: dict[str, Any], secrets: dict[str, dict[str, str]]) -> dict[str, str]:
    """The container's `env` as the kubelet sets it: values as written, `secretKeyRef`s read from `secrets`."""
    environ = {}
    for variable in container.get("env", []):
        if "value" in variable:
            environ[variable["name"]] = variable["value"]
        elif "secretKeyRef" in variable.get("valueFrom", {}):
            reference = variable["valueFrom"]["secretKeyRef"]
            environ[variable["name"]] = secrets[reference["name"]][reference["key"]]
    return environ


def runtime(project: dict[str, Any], job: str, *extra: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`mlc-runtime JOB --config <the ConfigMap's config>` in the project folder, as its pod runs it."""
    return subprocess.run(
        [*RUNTIME_CLI, *job_arguments(job, str(project["config"])), *extra],
        cwd=project["root"],
        env=runtime_env(**project["store"], **env),
        capture_output=True,
        text=True,
        timeout=600,
    )


def pod_env_references(project: dict[str, Any]) -> list[dict[str, Any]]:
    """The training container's `env` entries, as compiled."""
    (training,) = [c for key, c in containers(project["manifests"]).items() if key.startswith("Job/")]
    return training["env"]


def aliases(server: TrackingServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The registered model's aliases -> versions, read with the runtime's credentials."""
    from mlflow import MlflowClient

    for name, value in server.environment().items():
        monkeypatch.setenv(name, value)
    return {
        alias: int(version) for alias, version in MlflowClient(server.url).get_registered_model(MODEL).aliases.items()
    }


def test_the_compiled_pods_get_the_tracking_credentials_from_secrets(project) -> None:
    workloads = containers(project["manifests"])
    assert {"Job", "Deployment", "CronJob"} <= {key.split("/")[0] for key in workloads}
    for key, container in workloads.items():
        references = {
            variable["name"]: variable["valueFrom"]["secretKeyRef"]
            for variable in container.get("env", [])
            if "secretKeyRef" in variable.get("valueFrom", {})
        }
        assert references["MLFLOW_TRACKING_USERNAME"] == {"name": SECRET, "key": "username"}, key
        assert references["MLFLOW_TRACKING_PASSWORD"] == {"name": SECRET, "key": "password"}, key
        assert not [v for v in container.get("env", []) if v["name"].startswith("MLFLOW_TRACKING_") and "value" in v]


def test_train_gate_promote_serve_drift_rollback(project, server, monkeypatch) -> None:
    workloads = containers(project["manifests"])
    (training,) = [c for key, c in workloads.items() if key.startswith("Job/")]
    (serving,) = [c for key, c in workloads.items() if key.startswith("Deployment/")]
    drift_job = workloads["CronJob/churn-drift"]
    env = pod_environment(training, project["secrets"])
    assert "MLFLOW_TRACKING_URI" not in env  # the runtime config alone says where the server is

    first = runtime(project, "train", env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert f"registered {MODEL} version 1 as @challenger" in first.stdout
    gated = runtime(project, "gate", "--promote", env=env)
    assert gated.returncode == 0, gated.stdout + gated.stderr[-3000:]
    assert f"promoted {MODEL} version 1 to @champion" in gated.stdout
    assert aliases(server, monkeypatch) == {"challenger": 1, "champion": 1}

    second = runtime(project, "train", env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    gated = runtime(project, "gate", "--promote", env=env)
    assert gated.returncode == 0, gated.stdout + gated.stderr[-3000:]
    assert f"promoted {MODEL} version 2 to @champion; version 1 is now @previous" in gated.stdout
    assert aliases(server, monkeypatch) == {"challenger": 2, "champion": 2, "previous": 1}

    # The serving pod: models:/churn-classifier@champion, fetched through the server's artifact proxy.
    port = free_port()
    with (project["root"] / "serve.log").open("w") as log:
        process = subprocess.Popen(
            [*RUNTIME_CLI, *job_arguments("serve", str(project["config"]), port), "--host", "127.0.0.1"],
            cwd=project["root"],
            env=runtime_env(**pod_environment(serving, project["secrets"])),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _status(url + "/ready") == 200, 120, "the server to load the champion", process)
        ready = json.loads(get(url + "/ready")[1])
        assert (ready["model"], ready["version"], ready["alias"]) == (MODEL, "2", "champion")
        row = {"tenure_months": 3, "monthly_charges": 95.5, "support_calls": 4, "plan": "basic", "region": "north"}
        status, body = post(url + "/invocations", json.dumps({"dataframe_records": [row]}))
        assert status == 200 and 0 <= body["predictions"][0]["probability"] <= 1
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)

    # The drift CronJob: the champion's reference profile, logged with its run, read through the server.
    drift = runtime(project, "drift", "--on-drift", "none", env=pod_environment(drift_job, project["secrets"]))
    assert drift.returncode == 1, drift.stdout + drift.stderr[-3000:]  # staging's live data is shifted: drift
    assert "1000 current rows vs 4000 reference rows" in drift.stdout

    rolled = runtime(project, "rollback", env=env)
    assert rolled.returncode == 0, rolled.stderr[-3000:]
    assert rolled.stdout.strip() == f"rolled back {MODEL} @champion from version 2 to version 1"
    assert aliases(server, monkeypatch) == {"challenger": 2, "champion": 1}


def _status(url: str) -> int:
    try:
        return get(url, timeout=2)[0]
    except OSError:
        return 0


def test_without_valid_credentials_the_registry_steps_fail_closed_in_one_line(project, server) -> None:
    """No credentials, or a wrong password: one line saying so (not "no challenger"), never a traceback."""
    wrong = {"MLFLOW_TRACKING_USERNAME": "mlc-runtime", "MLFLOW_TRACKING_PASSWORD": "not-the-password"}
    for job, env, code, sent in (
        ("gate", {}, 2, "no credentials"),
        ("rollback", wrong, 2, "user 'mlc-runtime'"),
        ("train", wrong, 1, "user 'mlc-runtime'"),
    ):
        # The object store's credentials are the pod's (training reads its data before registering).
        store = pod_environment(
            {"env": [v for v in pod_env_references(project) if v["name"].startswith("AWS_")]}, project["secrets"]
        )
        done = runtime(project, job, env={**store, **env})
        assert done.returncode == code, (job, done.stderr[-2000:])
        assert "Traceback" not in done.stderr, (job, done.stderr[-2000:])
        assert [line for line in done.stderr.splitlines() if line.startswith("error: ")] == [
            f"error: the tracking server {server.url} did not accept {sent} (401): set MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN); a pod gets them from `secrets:` in mlproject.yaml"
        ], job
