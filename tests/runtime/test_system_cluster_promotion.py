"""The cluster's sequence, played with the compiled pods on a real `mlflow server` and moto's S3:
the serving pod starts first and waits; the training Job trains and its gate promotes; serving
picks the champion up; a retraining on broken data fails its gate and changes nothing; a good
retraining is promoted and the served version changes, without restarting the server.

Each pod runs as the kubelet would run it: the container's `command` as compiled, its `env`
with `secretKeyRef`s resolved from stand-in Secrets, the ConfigMap's runtime config (read-only,
as the pod mounts it), in a read-only copy of the project code the image holds (`src/`, its
WORKDIR; the Dockerfile's `.dockerignore` passes only `src/` and the lock, which the build
installs), with a writable HOME (the pod's /tmp emptyDir). Read-only is real: a bind mount with
`ro` in a mount namespace of the pod's own when the tests run as root (who ignores file modes),
file modes otherwise. The data is where staging names it, in the bucket: nothing local exists.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import os
import shutil
import signal
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from object_store import BUCKET, CHURN_DATA, ObjectStore, churn_bucket
from object_store import SECRET as STORE_SECRET
from real_services import TrackingServer, mlflow_server, wait_for
from served_project import RUNTIME_CLI, free_port, get, post, runtime_env

from mlc.compiler.pipeline import compile_spec_file
from mlc.runtime.contract import CONFIG_PATH

REPO = Path(__file__).resolve().parents[2]
ENVIRONMENT = "staging"
MODEL = "churn-classifier"
TOKEN_SECRET = {"mlflow-token": {"token": "unused-by-a-server-without-auth"}}
ROW = {"tenure_months": 3, "monthly_charges": 95.5, "support_calls": 4, "plan": "basic", "region": "north"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingServer]:
    folder = tmp_path_factory.mktemp("mlflow")
    with mlflow_server(folder / "server", f"sqlite:///{folder}/mlflow.db", basic_auth=False) as started:
        yield started


@pytest.fixture(scope="module")
def bucket() -> Iterator[ObjectStore]:
    with churn_bucket() as store:
        yield store


def _read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _writable(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


@pytest.fixture(scope="module")
def cluster(server: TrackingServer, bucket: ObjectStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The churn example compiled for `server`; the staging manifests; the image's read-only copy."""
    work = tmp_path_factory.mktemp("cluster")
    project = work / "churn"
    shutil.copytree(REPO / "examples" / "churn", project)
    spec_path = project / "mlproject.yaml"
    spec = spec_path.read_text()
    spec = spec.replace(
        "registry:\n  model: churn-classifier\n", f"registry:\n  model: {MODEL}\n  tracking_uri: {server.url}\n"
    )
    spec = spec.replace("    epochs: 20\n", "    epochs: 2\n")
    spec_path.write_text(spec)
    compiled = compile_spec_file(spec_path)
    assert compiled.ok, [d.render() for d in compiled.result.diagnostics]
    documents = [
        document
        for artifact in compiled.artifacts
        if artifact.path.startswith(f"deploy/{ENVIRONMENT}/")
        for document in yaml.safe_load_all(artifact.content)
        if document
    ]
    ignore = next(
        a for a in compiled.artifacts if a.path == "deploy/docker/train.Dockerfile.dockerignore"
    ).content.decode()
    allowed = [line for line in ignore.splitlines() if line.startswith("!")]
    assert allowed == ["!requirements.lock", "!src", "!wheels/mlc-0.1.0-py3-none-any.whl"]
    # What the image holds: the lock and the mlc wheel (installed into the venv at build) and src/
    # (the WORKDIR), nothing else.
    image = work / "image"
    shutil.copytree(project / "src", image / "opt/mlc/src", ignore=shutil.ignore_patterns("__pycache__"))
    (config_map,) = [d for d in documents if d["kind"] == "ConfigMap"]
    mounted = work / "etc-mlc"
    mounted.mkdir()
    (mounted / "runtime-config.json").write_text(config_map["data"]["runtime-config.json"])
    _read_only(image)
    _read_only(mounted)
    try:
        yield {"documents": documents, "image": image, "config": mounted / "runtime-config.json", "work": work}
    finally:
        _writable(image)
        _writable(mounted)


@functools.cache
def _can_mount() -> bool:
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False)
    return probe.returncode == 0


def _in_image(command: list[str], *read_only: Path) -> list[str]:
    """`command` with `read_only` folders mounted read-only (as root; modes do the job otherwise)."""
    if os.geteuid() != 0:
        return command
    if shutil.which("unshare") is None or not _can_mount():
        pytest.skip("running as root, which ignores file modes, and no mount namespace to mount read-only in")
    mounts = " && ".join(f'mount --bind -o ro "{folder}" "{folder}"' for folder in read_only)
    return ["unshare", "--mount", "sh", "-c", f'{mounts} && exec "$@"', "sh", *command]


def _pod(documents: list[dict[str, Any]], kind: str, name_prefix: str) -> dict[str, Any]:
    (document,) = [d for d in documents if d["kind"] == kind and d["metadata"]["name"].startswith(name_prefix)]
    spec = document["spec"]
    return (spec.get("jobTemplate", {}).get("spec") or spec)["template"]["spec"]


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    """In the order the kubelet runs them: init containers one after another, then the containers."""
    return [*pod.get("initContainers", []), *pod["containers"]]


def _environment(container: dict[str, Any], bucket: ObjectStore, home: Path) -> dict[str, str]:
    secrets = {STORE_SECRET: bucket.secret(), **TOKEN_SECRET}
    environ = {}
    for variable in container.get("env", []):
        if "value" in variable:
            environ[variable["name"]] = variable["value"]
        else:
            reference = variable["valueFrom"]["secretKeyRef"]
            environ[variable["name"]] = secrets[reference["name"]][reference["key"]]
    # The image's ENV (PYTHONPATH=/opt/mlc/src) and the pod's emptyDirs, here; the store's endpoint
    # is what a pod pointed at an S3-compatible store gets.
    home.mkdir(parents=True, exist_ok=True)
    environ |= {"HOME": str(home), "TMPDIR": str(home), "XDG_CACHE_HOME": str(home / "cache")}
    return runtime_env(**environ, **bucket.environment())


def _command(container: dict[str, Any], config: Path, **replace: str) -> list[str]:
    command = container["command"]
    assert command[0] == "mlc-runtime", command
    return [*RUNTIME_CLI, *[replace.get(part, str(config) if part == CONFIG_PATH else part) for part in command[1:]]]


def run_pod(cluster: dict, bucket: ObjectStore, pod: dict[str, Any]) -> list[subprocess.CompletedProcess[str]]:
    """Each container in turn, in the image's read-only WORKDIR; stops at the first that fails."""
    done = []
    for container in _containers(pod):
        finished = subprocess.run(
            _in_image(_command(container, cluster["config"]), cluster["image"], cluster["config"].parent),
            cwd=cluster["image"] / "opt/mlc/src",
            env=_environment(container, bucket, cluster["work"] / "pod-tmp"),
            capture_output=True,
            text=True,
            timeout=600,
        )
        done.append(finished)
        if finished.returncode != 0:
            break
    return done


def aliases(server: TrackingServer) -> dict[str, int]:
    from mlflow import MlflowClient

    return {a: int(v) for a, v in MlflowClient(server.url).get_registered_model(MODEL).aliases.items()}


def _upload_train(bucket: ObjectStore, text: str) -> None:
    bucket.client.put_object(Bucket=BUCKET, Key="churn/train.csv", Body=text.encode())


def _labels_flipped(text: str) -> str:
    """The training data with every label inverted: a model trained on it ranks churners last."""
    rows = list(csv.DictReader(io.StringIO(text)))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "churned": str(1 - int(row["churned"]))})
    return out.getvalue()


@contextlib.contextmanager
def serving_pod(cluster: dict, bucket: ObjectStore) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    (container,) = _pod(cluster["documents"], "Deployment", "churn-serve")["containers"]
    port = free_port()
    command = _command(container, cluster["config"], **{container["command"][-1]: str(port)})
    assert command[-2] == "--port"
    log = cluster["work"] / "serve.log"
    environ = _environment(container, bucket, cluster["work"] / "serve-tmp") | {"MLC_SERVE_WATCH_SECONDS": "1"}
    with log.open("w") as sink:
        process = subprocess.Popen(
            _in_image(command, cluster["image"], cluster["config"].parent),
            cwd=cluster["image"] / "opt/mlc/src",
            env=environ,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}", process, log
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def _ready(url: str) -> tuple[int, dict[str, Any]]:
    try:
        status, body = get(url + "/ready", timeout=2)
    except OSError:
        return 0, {}
    return status, json.loads(body)


def _served_version(url: str) -> str | None:
    status, body = _ready(url)
    return body.get("version") if status == 200 else None


def test_train_gate_promote_and_serving_follows_the_champion(cluster, server, bucket) -> None:
    documents = cluster["documents"]
    job = _pod(documents, "Job", "churn-train-")
    retraining = _pod(documents, "CronJob", "churn-retrain")
    assert [c["name"] for c in _containers(job)] == ["train", "gate"]
    assert retraining == job  # the CronJob's (and drift's and on_degrade's) Jobs are the same pods
    good_data = (CHURN_DATA / "train.csv").read_text()

    with serving_pod(cluster, bucket) as (url, process, log):
        # A fresh registry: no champion. The pod waits, live and not ready, and says why.
        wait_for(lambda: _ready(url)[0] == 503 and _ready(url)[1].get("status") == "waiting", 120, "waiting", process)
        assert get(url + "/v2/health/live")[0] == 200
        assert f"models:/{MODEL}@champion" in _ready(url)[1]["reason"]
        wait_for(lambda: "waiting for a model" in log.read_text(), 30, "the waiting log line", process)
        assert log.read_text().count("waiting for a model") == 1  # one line, not one per check

        # The training Job: train, then its gate promotes the first model (first_model: allow).
        first = run_pod(cluster, bucket, job)
        assert [p.returncode for p in first] == [0, 0], first[-1].stdout + first[-1].stderr[-3000:]
        assert f"promoted {MODEL} version 1 to @champion" in first[1].stdout
        assert aliases(server) == {"challenger": 1, "champion": 1}
        wait_for(lambda: _served_version(url) == "1", 120, "serving version 1", process)
        status, body = post(url + "/invocations", json.dumps({"dataframe_records": [ROW]}))
        assert status == 200 and 0 <= body["predictions"][0]["probability"] <= 1

        # A retraining on broken data (labels flipped): its gate fails, the champion stays.
        _upload_train(bucket, _labels_flipped(good_data))
        broken = run_pod(cluster, bucket, retraining)
        assert [p.returncode for p in broken] == [0, 1], broken[-1].stdout + broken[-1].stderr[-3000:]
        assert "**failed**" in broken[1].stdout and "## Gate failed" in broken[1].stdout
        assert aliases(server) == {"challenger": 2, "champion": 1}

        # A good retraining: promoted, and the running server swaps to it.
        _upload_train(bucket, good_data)
        good = run_pod(cluster, bucket, retraining)
        assert [p.returncode for p in good] == [0, 0], good[-1].stdout + good[-1].stderr[-3000:]
        assert f"promoted {MODEL} version 3 to @champion; version 1 is now @previous" in good[1].stdout
        assert aliases(server) == {"challenger": 3, "champion": 3, "previous": 1}
        wait_for(lambda: _served_version(url) == "3", 120, "serving version 3", process)
        assert process.poll() is None  # the same server: no restart, no crash loop
        metrics = get(url + "/metrics")[1].decode()
        info = [line for line in metrics.splitlines() if line.startswith("mlc_model_info{")]
        assert len(info) == 1 and 'version="3"' in info[0]
        assert post(url + "/invocations", json.dumps({"dataframe_records": [ROW]}))[0] == 200


def test_the_pods_see_the_image_and_the_config_read_only(cluster) -> None:
    """The premise of the test above: a write where the pods run fails, as under readOnlyRootFilesystem."""
    for folder in (cluster["image"] / "opt/mlc/src", cluster["config"].parent):
        probe = subprocess.run(
            _in_image(["touch", str(folder / "written")], cluster["image"], cluster["config"].parent),
            capture_output=True,
            text=True,
        )
        assert probe.returncode != 0
        assert "Read-only file system" in probe.stderr or "Permission denied" in probe.stderr
        assert not (folder / "written").exists()
