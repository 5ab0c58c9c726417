"""Reference profiles stored with MLflow model versions.

Training logs the profile of its training data as the artifact
``reference_profile/profile.json`` of the run that produced the model version, and the profile of
that model's predictions on the eval set as ``reference_profile/predictions.json``; ``drift
--model models:/<name>@<alias>`` (or ``models:/<name>/<version>``) reads them back from that
version's run. Uses the usual MLflow environment (``MLFLOW_TRACKING_URI``, ...).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlc.runtime.drift.profile import ProfileError, dumps_profile, read_profile

ARTIFACT_DIR = "reference_profile"
ARTIFACT_PATH = f"{ARTIFACT_DIR}/profile.json"
PREDICTIONS_ARTIFACT_PATH = f"{ARTIFACT_DIR}/predictions.json"
_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


def log_reference_profile(profile: Mapping[str, Any], artifact_path: str = ARTIFACT_PATH) -> None:
    """Log `profile` into the active MLflow run (default: `reference_profile/profile.json`)."""
    import mlflow

    folder, _, name = artifact_path.rpartition("/")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(dumps_profile(profile))
        mlflow.log_artifact(str(path), artifact_path=folder)


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """(name, alias, version) of `models:/<name>@<alias>` or `models:/<name>/<version>`."""
    match = _MODEL_URI.match(uri)
    if not match:
        raise ProfileError(f"--model must look like models:/<name>@<alias>, got {uri!r}")
    return match["name"], match["alias"], match["version"]


def load_model_profile(uri: str, tracking_uri: str | None = None) -> dict[str, Any]:
    """Download and read the reference profile of the model version that `uri` names."""
    return load_model_profiles(uri, tracking_uri).features


@dataclass(frozen=True)
class ModelProfiles:
    """The reference profiles of one model version: its training data's, and its eval predictions'."""

    version: str
    run_id: str
    features: dict[str, Any]
    predictions: dict[str, Any] | None  # None: trained before predictions were profiled


def load_model_profiles(uri: str, tracking_uri: str | None = None) -> ModelProfiles:
    """Download and read both reference profiles of the model version that `uri` names."""
    import mlflow
    from mlflow.exceptions import MlflowException

    name, alias, version = parse_model_uri(uri)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    try:
        model_version = (
            client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
        )
        with tempfile.TemporaryDirectory() as tmp:
            features = read_profile(client.download_artifacts(model_version.run_id, ARTIFACT_PATH, tmp))
            try:
                local = client.download_artifacts(model_version.run_id, PREDICTIONS_ARTIFACT_PATH, tmp)
            except (MlflowException, OSError):
                predictions = None  # trained before predictions were profiled: inputs only
            else:
                predictions = read_profile(local)
            return ModelProfiles(str(model_version.version), model_version.run_id, features, predictions)
    except MlflowException as exc:
        from mlc.runtime.errors import is_not_found, is_refusal, tracking_error_line, unreachable_reason
        from mlc.runtime.registry_choices import missing_model_sentence

        message = str(exc.message if hasattr(exc, "message") else exc).splitlines()[0]
        if is_refusal(exc) or unreachable_reason(exc):
            message = tracking_error_line(exc, client.tracking_uri)
        elif is_not_found(exc):
            message = missing_model_sentence(client, name, alias, version) or message
        raise ProfileError(f"cannot load reference profile of {uri}: {message}") from exc
    except OSError as exc:
        raise ProfileError(f"cannot load reference profile of {uri}: {exc}") from exc
