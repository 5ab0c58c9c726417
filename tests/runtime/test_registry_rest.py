"""A server's model from a real MLflow tracking server over its REST API, without importing MLflow.

The toy model is registered again through a real `mlflow server` (basic auth on, artifacts
proxied: its download URI is `mlflow-artifacts:/...`, what a cluster's tracking server records).
`fetch_model` must bring exactly the files MLflow's own client downloads, in a process that never
imports MLflow; where the REST path does not apply or fails, MLflow's client answers as before.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from real_services import TrackingServer, mlflow_server
from served_project import post, running_server, toy_rows, tracking_uri, train_served_project

from mlc.runtime.serve import registry_rest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PROXIED = "toy-proxied"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, TrackingServer]]:
    """The toy project trained locally, its champion registered again through a tracking server."""
    root = tmp_path_factory.mktemp("rest")
    config = train_served_project(root)
    mlflow.set_tracking_uri(tracking_uri(root))
    local_model = Path(mlflow.artifacts.download_artifacts("models:/toy-model@champion", dst_path=str(root / "m")))
    with mlflow_server(root / "server", "sqlite:///" + str(root / "server.db"), basic_auth=True) as server:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        os.environ.update(server.environment())
        try:
            client = MlflowClient(tracking_uri=server.url)
            experiment = client.create_experiment("proxied")
            run = client.create_run(experiment)
            client.log_artifacts(run.info.run_id, str(local_model), "model")
            client.create_registered_model(PROXIED)
            version = client.create_model_version(PROXIED, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
            client.set_registered_model_alias(PROXIED, "champion", version.version)
            assert client.get_model_version_download_uri(PROXIED, version.version).startswith("mlflow-artifacts:/")
        finally:
            os.environ.clear()
            os.environ.update(environ)
        yield root, config, server


def fetch_in_a_new_process(uri: str, dest: Path, environ: dict[str, str]) -> dict:
    """`fetch_model` in a fresh interpreter: what it fetched and whether MLflow was imported."""
    code = (
        "import json, logging, sys; from pathlib import Path\n"
        "logging.basicConfig(level=logging.DEBUG)\n"
        "from mlc.runtime.serve.model_fetch import fetch_model\n"
        f"info = fetch_model({uri!r}, Path({str(dest)!r}))\n"
        "print(json.dumps({'info': info.to_dict(), 'mlflow': 'mlflow' in sys.modules}))\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run(
        [sys.executable, "-c", code], env=clean | environ, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]) | {"log": done.stderr[:3000]}


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_fetch_from_a_tracking_server_is_mlflows_download_without_mlflow(registry, tmp_path: Path) -> None:
    _, _, server = registry
    fetched = fetch_in_a_new_process(f"models:/{PROXIED}@champion", tmp_path / "rest", server.environment())
    assert fetched.pop("mlflow") is False, fetched["log"]
    fetched.pop("log")
    assert fetched["info"] == {
        "model": PROXIED,
        "version": "1",
        "alias": "champion",
        "run_id": fetched["info"]["run_id"],
        "uri": str(tmp_path / "rest"),
    }
    assert fetched["info"]["run_id"]

    # MLflow's client, same version, same credentials: the same files, byte for byte.
    with pytest.MonkeyPatch.context() as patch:
        for name, value in server.environment().items():
            patch.setenv(name, value)
        mlflow.set_tracking_uri(server.url)
        want = Path(mlflow.artifacts.download_artifacts(f"models:/{PROXIED}/1", dst_path=str(tmp_path / "mlflow")))
    got = tree(tmp_path / "rest")
    assert got.pop("mlc-model.json")
    assert got == tree(want)
    assert any("/" in name for name in got), "nested folders are listed and fetched"


def test_a_server_starts_on_a_proxied_model_and_predicts(registry) -> None:
    root, config, server = registry
    served = json.loads(config.read_text()) | {"tracking_uri": server.url}
    (config.parent / "served-rest.json").write_text(json.dumps(served))
    with running_server(
        root, config.parent / "served-rest.json", "--model-uri", f"models:/{PROXIED}@champion", **server.environment()
    ) as running:
        status, body = post(running.url + "/invocations", json.dumps({"dataframe_records": toy_rows(4, seed=2)}))
        assert status == 200, body
        assert len(body["predictions"]) == 4
        assert f"loaded {PROXIED} version 1" in running.log()


def test_what_the_rest_path_does_not_cover_goes_to_mlflow(registry, tmp_path: Path) -> None:
    _, _, server = registry
    # A setting only MLflow's client implements: MLflow fetches (and is imported), same result.
    insecure = server.environment() | {"MLFLOW_TRACKING_INSECURE_TLS": "true"}
    fetched = fetch_in_a_new_process(f"models:/{PROXIED}@champion", tmp_path / "insecure", insecure)
    assert fetched["mlflow"] is True and fetched["info"]["version"] == "1"
    # An unknown alias: the REST answer is an error, so MLflow's client gives its own message.
    code = (
        "from pathlib import Path\nfrom mlc.runtime.serve.model_fetch import fetch_model\n"
        f"fetch_model('models:/{PROXIED}@nope', Path({str(tmp_path / 'nope')!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | server.environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    # MLflow's client answers (an alias naming nothing: a server would wait for it), with the choices.
    said = done.stderr.strip().splitlines()[-1]
    assert said == (
        "mlc.runtime.serve.served_model.NoVersionYet: models:/toy-proxied@nope: "
        "toy-proxied has no alias 'nope'; its aliases: champion (version 1)"
    )
    assert not [p for p in (tmp_path / "nope").rglob("*") if p.is_file()], "nothing half-written"


def test_the_rest_path_applies_only_where_it_means_what_mlflow_does() -> None:
    assert registry_rest.applies("https://mlflow.example.com", {})
    assert not registry_rest.applies("sqlite:///mlflow.db", {})
    assert not registry_rest.applies("databricks", {})
    for setting in registry_rest.MLFLOW_ONLY_SETTINGS:
        assert not registry_rest.applies("https://mlflow.example.com", {setting: "1"}), setting
    with pytest.raises(registry_rest.NotHandled):
        registry_rest._safe_relative("model", "../../etc/passwd")
    with pytest.raises(registry_rest.NotHandled):
        registry_rest._safe_relative("", "/etc/passwd")
    assert registry_rest._safe_relative("model", "data/weights.pt") == "model/data/weights.pt"
