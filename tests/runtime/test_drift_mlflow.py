"""`drift --model models:/<name>@champion` against a real MLflow server started here."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from real_services import mlflow_server

from mlc.runtime.cli import main
from mlc.runtime.drift.mlflow_profile import (
    ARTIFACT_PATH,
    load_model_profile,
    log_reference_profile,
    parse_model_uri,
)
from mlc.runtime.drift.profile import ProfileError, build_profile

mlflow = pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory):
    """URI of an `mlflow server` (sqlite backend, local artifacts) for this module."""
    tmp = tmp_path_factory.mktemp("mlflow")
    with mlflow_server(tmp, f"sqlite:///{tmp / 'mlflow.db'}", basic_auth=False) as server:
        yield server.url


@pytest.fixture
def champion(tracking_uri, monkeypatch, write_parquet, columns):
    """Log a run with a reference profile, register it and alias the version `champion`."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    profile = build_profile(write_parquet(columns(5000, seed=1)))
    with mlflow.start_run() as run:
        log_reference_profile(profile)
        mlflow.log_dict({"model": "stand-in"}, "model/MLmodel.json")
    client = mlflow.MlflowClient(tracking_uri)
    if not client.search_registered_models("name = 'churn'"):  # the server is per module
        client.create_registered_model("churn")
    version = client.create_model_version("churn", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    client.set_registered_model_alias("churn", "champion", version.version)
    return profile


def test_profile_is_read_from_the_champion_model_version(champion, tracking_uri, write_parquet, columns):
    assert load_model_profile("models:/churn@champion", tracking_uri) == champion
    version = mlflow.MlflowClient(tracking_uri).get_model_version_by_alias("churn", "champion")
    assert load_model_profile(f"models:/churn/{version.version}", tracking_uri) == champion
    result = CliRunner().invoke(
        main,
        [
            "drift",
            "--model",
            "models:/churn@champion",
            "--format",
            "json",
            "--data",
            str(write_parquet(columns(2000, seed=2, shift=1.0, shifted=("x0", "x1", "x2")))),
        ],
    )
    assert result.exit_code == 1, result.output
    with pytest.raises(ProfileError, match="cannot load reference profile"):
        load_model_profile("models:/churn@nope", tracking_uri)


def test_runtime_config_names_the_champion_and_tracking_server(
    champion, tracking_uri, monkeypatch, write_parquet, columns, runtime_config
):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # the runtime config alone says where
    config = runtime_config(str(write_parquet(columns(2000, seed=3))), tracking_uri)
    result = CliRunner().invoke(main, ["drift", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "no drift" in result.output


def test_mlflow_tracking_uri_overrides_the_runtime_configs(
    champion, tracking_uri, monkeypatch, write_parquet, columns, runtime_config
):
    """As for every other command: a pod's MLFLOW_TRACKING_URI wins over the config's tracking_uri."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    config = runtime_config(str(write_parquet(columns(2000, seed=3))), "http://127.0.0.1:1")  # nothing there
    result = CliRunner().invoke(main, ["drift", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "no drift" in result.output


def test_model_uri_forms():
    assert parse_model_uri("models:/churn@champion") == ("churn", "champion", None)
    assert parse_model_uri("models:/churn/3") == ("churn", None, "3")
    with pytest.raises(ProfileError):
        parse_model_uri("runs:/abc/model")
    assert ARTIFACT_PATH == "reference_profile/profile.json"
