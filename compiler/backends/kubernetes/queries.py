"""PromQL over the runtime's metrics, shared by autoscalers, canary analysis and alerts.

Serving metrics are scraped by the ServiceMonitor, so they carry `namespace` and `service`
labels; drift metrics are pushed to the Pushgateway under job `mlc-drift` with the grouping key
`project`, `environment` and scraped with `honorLabels`, so they keep those labels; the feedback
job's live metrics the same way under job `mlc-feedback`.
"""

from __future__ import annotations

from mlc.compiler.resolve.resolved import ResolvedSpec
from mlc.runtime.contract import DRIFT_PUSH_JOB, FEEDBACK_PUSH_JOB, QUERIED_METRICS, STATUS_LABEL

# In-cluster Prometheus (Prometheus Operator's governing Service); KEDA and Argo Rollouts query it.
PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090"
RATE_WINDOW = "5m"
VLLM_LATENCY_HISTOGRAM = "vllm:e2e_request_latency_seconds"
# KServe's MLflow runtime is MLServer: its REST server exports these (prefix `rest_server`).
MLSERVER_REQUESTS = "rest_server_requests"
MLSERVER_LATENCY_HISTOGRAM = "rest_server_requests_duration_seconds"


def _labels(pairs: dict[str, str], extra: str = "") -> str:
    body = ",".join(f'{key}="{value}"' for key, value in pairs.items())
    return "{" + body + (("," + extra) if extra else "") + "}"


def _engine(resolved: ResolvedSpec) -> str | None:
    return resolved.serving.engine if resolved.serving is not None else None


def serving_selector(resolved: ResolvedSpec, extra: str = "") -> str:
    """The serving pods' series (plus `extra` matchers).

    A ServiceMonitor labels them `service`; KServe's predictor pods are scraped by a PodMonitor,
    whose `job` label is `<namespace>/<PodMonitor name>`.
    """
    if _engine(resolved) == "kserve":
        job = f"{resolved.namespace}/{resolved.names.serving}"
        return _labels({"namespace": resolved.namespace, "job": job}, extra)
    return _labels({"namespace": resolved.namespace, "service": resolved.names.serving}, extra)


def requests_counter(resolved: ResolvedSpec) -> tuple[str, str]:
    """The request counter of the serving engine and the name of its status-code label."""
    if _engine(resolved) == "kserve":
        return MLSERVER_REQUESTS, "status_code"
    return QUERIED_METRICS["requests_total"], STATUS_LABEL


def drift_selector(resolved: ResolvedSpec, extra: str = "") -> str:
    """The labels of the drift job's pushed metrics."""
    return _labels({"job": DRIFT_PUSH_JOB, **resolved.drift_grouping}, extra)


def feedback_selector(resolved: ResolvedSpec, extra: str = "") -> str:
    """The labels of the feedback job's pushed metrics (the drift job's grouping, its own job)."""
    return _labels({"job": FEEDBACK_PUSH_JOB, **resolved.drift_grouping}, extra)


def in_flight_query(resolved: ResolvedSpec) -> str:
    """Requests being served right now, summed over pods (what KEDA divides by its target)."""
    return f"sum({QUERIED_METRICS['requests_in_flight']}{serving_selector(resolved)})"


def error_rate_query(resolved: ResolvedSpec, extra: str = "", window: str = RATE_WINDOW) -> str:
    """Share of requests answered with a 5xx over `window`."""
    total, status = requests_counter(resolved)
    server_error = f'{status}=~"5.."'
    errors = f"sum(rate({total}{serving_selector(resolved, _join(extra, server_error))}[{window}]))"
    requests = f"sum(rate({total}{serving_selector(resolved, extra)}[{window}]))"
    return f"{errors} / {requests}"


def latency_histogram(resolved: ResolvedSpec) -> str:
    """The request-latency histogram of the serving engine (vLLM and MLServer export their own)."""
    if _engine(resolved) == "vllm":
        return VLLM_LATENCY_HISTOGRAM
    if _engine(resolved) == "kserve":
        return MLSERVER_LATENCY_HISTOGRAM
    return QUERIED_METRICS["request_duration_seconds"]


def latency_p95_ms_query(resolved: ResolvedSpec, extra: str = "", window: str = RATE_WINDOW) -> str:
    """p95 request latency in milliseconds over `window`."""
    buckets = f"{latency_histogram(resolved)}_bucket{serving_selector(resolved, extra)}"
    return f"histogram_quantile(0.95, sum by (le) (rate({buckets}[{window}]))) * 1000"


def _join(*matchers: str) -> str:
    return ",".join(m for m in matchers if m)
