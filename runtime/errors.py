"""The runtime's base exception, and how a tracking server's refusal is said in one line.

Every error `mlc-runtime` reports as one line derives from `MlcRuntimeError`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from mlc.runtime.contract import TRACKING_RETRIES_VARIABLE, TRACKING_TIMEOUT_VARIABLE

# MLflow's error codes for a request the tracking server refused (HTTP 401 and 403).
UNAUTHENTICATED = "UNAUTHENTICATED"
PERMISSION_DENIED = "PERMISSION_DENIED"
# ...and for a registered model, version or alias that does not exist (yet).
NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})
# MLflow's HTTP client when its variables are unset (what a message reports then).
MLFLOW_DEFAULT_TIMEOUT = 120
MLFLOW_DEFAULT_RETRIES = 7


class MlcRuntimeError(Exception):
    """Base of the runtime's own errors (bad config, unreadable data, no verdict); catch it to
    handle any of them. Anything else reaching the command line is a bug or an outage."""


def is_refusal(error: BaseException) -> bool:
    """Whether `error` is an MLflow exception for a request the tracking server refused (401, 403)."""
    return getattr(error, "error_code", None) in (UNAUTHENTICATED, PERMISSION_DENIED)


def is_not_found(error: BaseException) -> bool:
    """Whether `error` is an MLflow exception saying a model, version or alias does not exist."""
    return getattr(error, "error_code", None) in NOT_FOUND_CODES


def _causes(error: BaseException) -> list[BaseException]:
    """`error` and the exceptions it was raised from or while handling (MLflow drops `from`)."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain and len(chain) < 20:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _is_requests_error(error: BaseException, name: str) -> bool:
    """Whether `error` is requests' exception class `name` or a subclass (without importing requests)."""
    return any(cls.__name__ == name and cls.__module__.startswith("requests") for cls in type(error).__mro__)


def unreachable_reason(error: BaseException) -> str | None:
    """Why the tracking server could not be reached ("connection refused", "no answer"), or None
    when `error` is not a failure to reach it (a refusal, a missing model, a server error)."""
    for cause in _causes(error):
        text = str(cause)
        if _is_requests_error(cause, "Timeout"):
            return "no answer"
        if _is_requests_error(cause, "ConnectionError"):
            if "timed out" in text:  # a read timeout after the retries comes as a ConnectionError
                return "no answer"
            if "Connection refused" in text:
                return "connection refused"
            if "NameResolution" in text or "Name or service not known" in text or "nodename nor servname" in text:
                return "name not resolved"
            return "connection failed"
    text = str(getattr(error, "message", None) or error)
    if "API request to" in text and "failed with timeout exception" in text:
        return "no answer"
    return None


def request_budget(environ: Mapping[str, str]) -> tuple[int, int]:
    """(timeout seconds, attempts) of MLflow's HTTP client under `environ`, for messages."""
    try:
        timeout = int(environ.get(TRACKING_TIMEOUT_VARIABLE, MLFLOW_DEFAULT_TIMEOUT))
        attempts = int(environ.get(TRACKING_RETRIES_VARIABLE, MLFLOW_DEFAULT_RETRIES)) + 1
    except ValueError:
        return MLFLOW_DEFAULT_TIMEOUT, MLFLOW_DEFAULT_RETRIES + 1
    return timeout, attempts


def tracking_error_line(error: BaseException, tracking_uri: str) -> str:
    """An MLflow error in one line; a refusal says which credentials the runtime sent and where they come from.

    MLflow reads `MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD` (basic auth) or
    `MLFLOW_TRACKING_TOKEN`; a compiled pod gets them from the spec's `secrets:`.
    """
    reason = unreachable_reason(error)
    if reason is not None:
        timeout, attempts = request_budget(os.environ)
        return (
            f"the tracking server is unreachable at {tracking_uri} ({reason}; {attempts} attempt(s), "
            f"{timeout} s each): check the URI (registry.tracking_uri in mlproject.yaml, or MLFLOW_TRACKING_URI), "
            "that the server runs and that this network may reach it "
            "(registry.timeout and registry.retries bound the wait)"
        )
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
