"""How long the runtime waits for the MLflow tracking server: MLflow's HTTP client variables.

MLflow reads `MLFLOW_HTTP_REQUEST_TIMEOUT`, `MLFLOW_HTTP_REQUEST_MAX_RETRIES` and
`MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR` at every request; its defaults wait minutes before a job
can say the server is unreachable. Every command sets them from the runtime config (the spec's
`registry.timeout` and `registry.retries`, else the contract's defaults) before it talks to the
server; a variable the user set wins.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from mlc.runtime.contract import (
    TRACKING_BACKOFF_FACTOR,
    TRACKING_BACKOFF_VARIABLE,
    TRACKING_RETRIES_VARIABLE,
    TRACKING_TIMEOUT_VARIABLE,
)
from mlc.runtime.contract.config import TrackingRequests


def bound_tracking_requests(environ: MutableMapping[str, str], requests: TrackingRequests | None) -> None:
    """Set MLflow's timeout, retries and backoff in `environ` where the user did not."""
    requests = requests or TrackingRequests()
    environ.setdefault(TRACKING_TIMEOUT_VARIABLE, str(requests.request_timeout_seconds))
    environ.setdefault(TRACKING_RETRIES_VARIABLE, str(requests.retries))
    environ.setdefault(TRACKING_BACKOFF_VARIABLE, str(TRACKING_BACKOFF_FACTOR))
