"""Reference profiles stored with MLflow model versions.

Training logs the profile of its training data as the artifact
``reference_profile/profile.json`` of the run that produced the model version; ``drift
--model models:/<name>@<alias>`` (or ``models:/<name>/<version>``) reads it back from that
version's run. Uses the usual MLflow environment (``MLFLOW_TRACKING_URI``, ...).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlc.runtime.drift.profile import ProfileError, dumps_profile, read_profile

ARTIFACT_DIR = "reference_profile"
ARTIFACT_PATH = f"{ARTIFACT_DIR}/profile.json"
_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


def log_reference_profile(profile: Mapping[str, Any]) -> None:
    """Log `profile` into the active MLflow run at `reference_profile/profile.json`."""
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "profile.json"
        path.write_text(dumps_profile(profile))
        mlflow.log_artifact(str(path), artifact_path=ARTIFACT_DIR)


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """(name, alias, version) of `models:/<name>@<alias>` or `models:/<name>/<version>`."""
    match = _MODEL_URI.match(uri)
    if not match:
        raise ProfileError(f"--model must look like models:/<name>@<alias>, got {uri!r}")
    return match["name"], match["alias"], match["version"]


def load_model_profile(uri: str, tracking_uri: str | None = None) -> dict[str, Any]:
    """Download and read the reference profile of the model version that `uri` names."""
    import mlflow
    from mlflow.exceptions import MlflowException

    name, alias, version = parse_model_uri(uri)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    try:
        model_version = (
            client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
        )
        with tempfile.TemporaryDirectory() as tmp:
            local = client.download_artifacts(model_version.run_id, ARTIFACT_PATH, tmp)
            return read_profile(local)
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
