"""The runtime's base exception, and how a tracking server's refusal is said in one line.

Every error `mlc-runtime` reports as one line derives from `MlcRuntimeError`.
"""

from __future__ import annotations

import os

# MLflow's error codes for a request the tracking server refused (HTTP 401 and 403).
UNAUTHENTICATED = "UNAUTHENTICATED"
PERMISSION_DENIED = "PERMISSION_DENIED"
# ...and for a registered model, version or alias that does not exist (yet).
NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})


class MlcRuntimeError(Exception):
    """Base of the runtime's own errors (bad config, unreadable data, no verdict); catch it to
    handle any of them. Anything else reaching the command line is a bug or an outage."""


def is_refusal(error: BaseException) -> bool:
    """Whether `error` is an MLflow exception for a request the tracking server refused (401, 403)."""
    return getattr(error, "error_code", None) in (UNAUTHENTICATED, PERMISSION_DENIED)


def is_not_found(error: BaseException) -> bool:
    """Whether `error` is an MLflow exception saying a model, version or alias does not exist."""
    return getattr(error, "error_code", None) in NOT_FOUND_CODES


def tracking_error_line(error: BaseException, tracking_uri: str) -> str:
    """An MLflow error in one line; a refusal says which credentials the runtime sent and where they come from.

    MLflow reads `MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD` (basic auth) or
    `MLFLOW_TRACKING_TOKEN`; a compiled pod gets them from the spec's `secrets:`.
    """
    code = getattr(error, "error_code", None)
    if code == UNAUTHENTICATED:
        sent = (
            f"user {os.environ['MLFLOW_TRACKING_USERNAME']!r}"
            if os.environ.get("MLFLOW_TRACKING_USERNAME")
            else "a token"
            if os.environ.get("MLFLOW_TRACKING_TOKEN")
            else "no credentials"
        )
        return (
            f"the tracking server {tracking_uri} did not accept {sent} (401): set MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN); a pod gets them from `secrets:` in mlproject.yaml"
        )
    if code == PERMISSION_DENIED:
        user = os.environ.get("MLFLOW_TRACKING_USERNAME") or "this user"
        return (
            f"the tracking server {tracking_uri} denied {user!r} (403): give it access to the project's experiment "
            "and registered model (MLflow permissions), or use the credentials (MLFLOW_TRACKING_USERNAME) that have it"
        )
    text = str(getattr(error, "message", None) or error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"
