"""The contract between the compiler and the runtime, defined once.

The runtime owns this package and the compiler imports it; the runtime never imports the
compiler. This module imports the standard library only (the `mlc` and `mlc-runtime` command
lines read it at start-up); `contract.config`, the config's shape, adds pydantic. Neither
imports the runtime's heavy dependencies (torch, mlflow, scipy, pyarrow).

What both sides must agree on, and nothing else:

- the runtime config: its typed shape (`contract.config.RuntimeConfig`) and `FORMAT_VERSION`.
  The compiler builds one per environment and writes it (the ConfigMap every pod mounts, or the
  file `mlc run` writes); the runtime reads it and never re-resolves the spec;
- how a job is invoked (`JOBS`, `job_arguments`), where the config lives in a pod, the
  variables the runtime reads;
- the exit codes of `mlc-runtime` (`ExitCode`);
- the registry's aliases;
- the names and labels of the metrics the runtime exports, which compiled alerts, autoscalers
  and canary analyses query;
- every default the runtime applies when the spec leaves a value out (drift thresholds,
  serving port, local state).

Compatibility, as dbt versions its artifacts: adding a defaulted field is compatible (an older
runtime ignores it, a newer one fills the default); renaming or retyping one bumps
`FORMAT_VERSION`, and a runtime refuses a config of another version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

FORMAT_VERSION = 1

# --- how jobs are run ------------------------------------------------------------------------

# The `mlc-runtime` subcommands the compiled artifacts and `mlc run` invoke.
JOBS = ("validate-data", "train", "gate", "rollback", "serve", "drift", "feedback", "batch")
Job = Literal["validate-data", "train", "gate", "rollback", "serve", "drift", "feedback", "batch"]

CONFIG_DIR = "/etc/mlc"  # where pods mount the runtime config (read-only)
CONFIG_FILE = "runtime-config.json"
CONFIG_PATH = f"{CONFIG_DIR}/{CONFIG_FILE}"
CONFIG_VARIABLE = "MLC_RUNTIME_CONFIG"  # `--config` defaults to it
# An Indexed Job's pod index (the downward API exposes it under this name; `batch --shard` reads it).
COMPLETION_INDEX_VARIABLE = "JOB_COMPLETION_INDEX"
COMPLETION_INDEX_FIELD = "metadata.annotations['batch.kubernetes.io/job-completion-index']"
# Where `mlc run` keeps local state: the runtime config and MLflow's sqlite store, relative to the spec's folder.
LOCAL_STATE_DIR = ".mlc"
LOCAL_TRACKING_URI = f"sqlite:///{LOCAL_STATE_DIR}/mlflow.db"


def local_config_path(environment: str) -> str:
    """Where `mlc run` writes an environment's runtime config, relative to the spec's folder."""
    return f"{LOCAL_STATE_DIR}/{environment}/{CONFIG_FILE}"


def job_arguments(job: str, config_path: str, port: int | None = None) -> list[str]:
    """`mlc-runtime` arguments of one job, as every place that runs it (pods, `mlc run`) passes them.

    Placement-specific flags come on top: the Pushgateway in the cluster, the shard of a batch pod.
    """
    if job not in JOBS:
        raise ValueError(f"unknown job {job!r}; jobs: {', '.join(JOBS)}")
    arguments = [job, "--config", config_path]
    if job == "serve" and port is not None:
        arguments += ["--port", str(port)]
    return arguments


# The model server's HTTP paths the compiled probes, scrape configs and clients use.
SERVER_PATHS = {
    "invocations": "/invocations",
    "live": "/v2/health/live",  # 200 whenever the process serves: liveness and startup
    "ready": "/ready",  # 200 once the model is loaded and warmed up: readiness
    "metrics": "/metrics",
}

# Who may call the model (`serve.access`). The prediction port answers callers; `/metrics` and
# the readiness details move to the metrics port, which the NetworkPolicy opens to the
# monitoring namespace only. API keys come from a Secret mounted whole at API_KEYS_DIR: each of
# its keys is a file, its name the caller's name (in the audit log), its content the API key.
DEFAULT_METRICS_PORT = 9090
API_KEYS_DIR = "/etc/mlc-api-keys"
API_KEY_HEADER = "x-api-key"  # or `Authorization: Bearer <key>`
AuditLevel = Literal["off", "requests", "payloads"]
AUDIT_LEVEL: AuditLevel = "requests"  # one line per request: caller, model version, status; no payload
DEFAULT_MONITORING_NAMESPACE = "monitoring"

# What one request may cost the model server (`serve.limits`): the spec's defaults and the
# server's are these, and the spec accepts values within SERVE_LIMIT_RANGES (int32 throughout).
# A body past max_body_bytes gets 413 before it is read; more rows, columns or JSON nesting
# than allowed get 400 before the body is parsed into columns; a connection whose headers take
# longer than header_timeout is closed, a body slower than body_timeout gets 408.
SERVE_MAX_BODY_BYTES = 8 * 1024 * 1024
SERVE_MAX_ROWS = 100_000
SERVE_MAX_COLUMNS = 1024  # arrow's CSV reader takes seconds on the event loop for 100,000 names
SERVE_MAX_DEPTH = 32  # the scoring formats nest 3-5 deep; a feature value is never a deep object
SERVE_HEADER_TIMEOUT = "10s"
SERVE_BODY_TIMEOUT = "30s"
# (least, most) of each limit. Depth 4 is the least a scoring document nests
# (`{"dataframe_split": {"data": [[...]]}}`); the timeouts are in seconds.
SERVE_LIMIT_RANGES = {
    "max_body_bytes": (1024, 1024 * 1024 * 1024),
    "max_rows": (1, 10_000_000),
    "max_columns": (1, 65_536),
    "max_depth": (4, 1000),
    "header_timeout": (1, 3600),
    "body_timeout": (1, 3600),
}

# --- durations and the checkpoint cadence -------------------------------------------------------

_DURATION = re.compile(r"(?:[0-9]+[smhd])+")
_DURATION_PART = re.compile(r"([0-9]+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_STEPS = re.compile(r"([1-9][0-9]*)steps")


def duration_seconds(text: str) -> int:
    """Seconds in a duration like `90s`, `30m`, `2h`, `7d` or `1h30m`; ValueError otherwise."""
    if not _DURATION.fullmatch(text):
        raise ValueError(f"must be a duration such as '90m', '2h' or '7d', got '{text}'")
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


@dataclass(frozen=True)
class CheckpointCadence:
    """When training saves its resume point (`train.checkpoint.every`): at each epoch's end,
    every N steps, or every so many seconds. A stop request (SIGTERM) always saves."""

    steps: int | None = None
    seconds: int | None = None

    @property
    def per_epoch(self) -> bool:
        return self.steps is None and self.seconds is None


def checkpoint_cadence(every: str) -> CheckpointCadence:
    """`epoch`, `<N>steps` or a duration, as data; ValueError with a valid form otherwise."""
    if every == "epoch":
        return CheckpointCadence()
    if steps := _STEPS.fullmatch(every):
        return CheckpointCadence(steps=int(steps.group(1)))
    try:
        seconds = duration_seconds(every)
    except ValueError:
        seconds = 0
    if seconds <= 0:
        raise ValueError(f"must be 'epoch', '<N>steps' (e.g. '500steps') or a duration (e.g. '30m'), got '{every}'")
    return CheckpointCadence(seconds=seconds)


# --- exit codes ------------------------------------------------------------------------------


class ExitCode(IntEnum):
    """What `mlc-runtime` commands exit with (each command's docstring says which apply)."""

    OK = 0
    FAILED = 1  # a verdict against: drift found, gate failed, data violations, training failed
    ERROR = 2  # no verdict possible (unreadable data, unreachable registry): fail closed
    CONFIG_ERROR = 78  # sysexits EX_CONFIG: the runtime config is unusable; Jobs fail at once on it
    PREEMPTED = 143  # 128 + SIGTERM: training stopped after checkpointing


# --- the model registry -----------------------------------------------------------------------

CHALLENGER_ALIAS = "challenger"
CHAMPION_ALIAS = "champion"
PREVIOUS_ALIAS = "previous"


def champion_model_uri(registered_model: str, alias: str = CHAMPION_ALIAS) -> str:
    """`models:/<registered model>@<alias>`: what serving, batch, drift and KServe load."""
    return f"models:/{registered_model}@{alias}"


def version_model_uri(registered_model: str, version: str) -> str:
    """`models:/<registered model>/<version>`: one version, which never moves."""
    return f"models:/{registered_model}/{version}"


# A canary rollout judges new model versions: its serving pods do not follow the champion alias,
# they serve the version their pod template pins in this annotation (read through the downward
# API into SERVED_VERSION_VARIABLE). Promotion (`gate --promote`, `rollback`) moves the alias and
# then patches the annotation of the serving Deployment the runtime config names
# (`serve.pinned_deployment`): the changed template is a new canary, analysed like any change.
# Empty (a Deployment no promotion has pinned yet): the server follows the alias.
SERVED_VERSION_ANNOTATION = "mlc.dev/model-version"
SERVED_VERSION_VARIABLE = "MLC_SERVE_MODEL_VERSION"
SERVED_VERSION_FIELD = f"metadata.annotations['{SERVED_VERSION_ANNOTATION}']"


# --- the tracking server's HTTP client ----------------------------------------------------------

# MLflow's own client defaults (7 retries with exponential backoff, 120 s a request) make a job
# against an unreachable tracking server wait about 4 minutes (16 for one that accepts and never
# answers) before it says anything. The runtime bounds them unless the user set the variables
# (the spec's `registry.timeout` / `registry.retries` reach it through the runtime config):
# about 3 s for a closed port, 3 x timeout (+ 3 s of backoff) for a server that hangs.
TRACKING_TIMEOUT_SECONDS = 15  # one HTTP request to the tracking server
TRACKING_RETRIES = 2  # retries after the first attempt (connection errors, timeouts, 429/5xx)
TRACKING_BACKOFF_FACTOR = 1  # seconds, doubled at each retry (urllib3's backoff_factor)
TRACKING_MAX_RETRIES = 10  # MLflow refuses more
TRACKING_MAX_TIMEOUT_SECONDS = 600  # a longer wait is a hang, not patience
TRACKING_TIMEOUT_VARIABLE = "MLFLOW_HTTP_REQUEST_TIMEOUT"
TRACKING_RETRIES_VARIABLE = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
TRACKING_BACKOFF_VARIABLE = "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"

# --- the prediction log --------------------------------------------------------------------------
# What `serve` and `batch` write and `drift` and `feedback` read: Parquet files under
# `monitor.prediction_log.uri`, partitioned by the hour of their rows' timestamps (UTC), as
# `<uri>/date=YYYY-MM-DD/hour=HH/<file>.parquet`. One row per predicted row:

LOG_REQUEST_ID = "request_id"  # the X-Request-ID answered (batch: the input file), the labels' join key
LOG_ROW = "row"  # the row's position in its request (or input file), from 0
LOG_TIMESTAMP = "timestamp"  # when it was answered: timestamp[ms, UTC]
LOG_MODEL = "model"  # the registered model's name
LOG_MODEL_VERSION = "model_version"  # its version: what the feedback job scores live
LOG_SOURCE = "source"  # the endpoint that answered (`/invocations`, `/v2/models/m/infer`) or `batch`
LOG_INPUTS = "inputs"  # struct: the checked feature values, by feature name
LOG_OUTPUTS = "outputs"  # struct: the model's output columns (`prediction`, `probability`, ...)
LOG_PARTITION = "date={date}/hour={hour:02d}"  # below the log's URI, of the rows' UTC hour
LOG_SOURCE_BATCH = "batch"
REQUEST_ID_HEADER = "X-Request-ID"  # taken from the caller when usable, else generated; always answered

# --- retraining started by a monitor ----------------------------------------------------------------
# The drift and feedback jobs start the retraining CronJob's Job with these variables set; training
# records them as tags of its MLflow run and model version, so a new version links to its trigger.

RETRAIN_TRIGGER_VARIABLE = "MLC_RETRAIN_TRIGGER"  # drift | feedback
RETRAIN_TRIGGER_RUN_VARIABLE = "MLC_RETRAIN_TRIGGER_RUN"  # the triggering check's MLflow run id
RetrainTrigger = Literal["drift", "feedback"]
MONITOR_EXPERIMENT_SUFFIX = "-monitoring"  # the experiment of the checks' MLflow runs: <project>-monitoring

# --- metrics ---------------------------------------------------------------------------------

DRIFT_PUSH_JOB = "mlc-drift"  # the Pushgateway `job` of the drift check's metrics
FEEDBACK_PUSH_JOB = "mlc-feedback"  # the Pushgateway `job` of the feedback job's live metrics
STATUS_LABEL = "code"  # the HTTP status label of the server's request metrics
FEATURE_LABEL = "feature"  # the feature label of the drift check's per-feature metrics
OUTPUT_LABEL = "output"  # the output-column label of the prediction histogram and prediction drift
METRIC_LABEL = "metric"  # the evaluation-metric label of the live quality metrics

# What the compiled alerts, KEDA triggers and canary analyses query (written into every runtime
# config as `metrics.names`, role -> name).
QUERIED_METRICS = {
    "requests_in_flight": "mlc_requests_in_flight",
    "request_duration_seconds": "mlc_request_duration_seconds",
    "requests_total": "mlc_requests_total",
    "prediction_psi": "mlc_prediction_psi",
    "drift_feature_psi": "mlc_drift_feature_psi",
    "drift_feature_drifted": "mlc_drift_feature_drifted",
    "drift_dataset_drifted": "mlc_drift_dataset_drifted",
    "drift_share": "mlc_drift_share",
    "drift_last_success_timestamp_seconds": "mlc_drift_last_success_timestamp_seconds",
    "drift_rows": "mlc_drift_rows",
    "prediction_drifted": "mlc_prediction_drifted",
    "live_metric": "mlc_live_metric",
    "live_labelled_rows": "mlc_live_labelled_rows",
    "live_label_share": "mlc_live_label_share",
    "live_predictions": "mlc_live_predictions",
    "feedback_last_success_timestamp_seconds": "mlc_feedback_last_success_timestamp_seconds",
    # 1 while the served version is the registry's champion, 0 while it is not (a pinned server:
    # a canary's stable pods mid-rollout, or every pod after an aborted canary).
    "model_is_champion": "mlc_model_is_champion",
}
# Everything the model server exports besides the queried ones.
SERVER_METRICS = {
    "requests_in_flight": QUERIED_METRICS["requests_in_flight"],
    "request_duration_seconds": QUERIED_METRICS["request_duration_seconds"],
    "requests_total": QUERIED_METRICS["requests_total"],
    "predictions": "mlc_predictions",
    "model_info": "mlc_model_info",
    "model_is_champion": QUERIED_METRICS["model_is_champion"],
    "model_calls_total": "mlc_model_calls_total",
    "batch_rows": "mlc_batch_rows",
    "queue_seconds": "mlc_request_queue_seconds",
    "request_log_dropped_total": "mlc_request_log_dropped_total",
    "audit_log_dropped_total": "mlc_audit_log_dropped_total",
    "request_log_written_total": "mlc_request_log_written_total",
}

# --- evaluation metrics ----------------------------------------------------------------------

Task = Literal["binary", "multiclass", "regression"]
TASKS: tuple[Task, ...] = ("binary", "multiclass", "regression")
LATENCY_METRICS = frozenset({"latency_p50_ms", "latency_p95_ms"})  # measured by the gate, any task
# What the gate computes, per task of the target (`mlc.runtime.metrics`).
TASK_METRICS: dict[str, frozenset[str]] = {
    "binary": frozenset({"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"}),
    "multiclass": frozenset({"accuracy", "precision", "recall", "f1", "log_loss"}),  # and top<k>_accuracy
    "regression": frozenset({"mae", "rmse", "r2", "mape"}),
}
TOP_K_ACCURACY = re.compile(r"top([1-9][0-9]*)_accuracy")  # multiclass: the truth among the k likeliest
LOWER_IS_BETTER = frozenset({"log_loss", "mae", "rmse", "mape", *LATENCY_METRICS})


def metric_tasks(name: str) -> tuple[Task, ...]:
    """The tasks a metric applies to, in `TASKS` order; empty for a metric mlc does not compute."""
    if name in LATENCY_METRICS:
        return TASKS
    if TOP_K_ACCURACY.fullmatch(name):
        return ("multiclass",)
    return tuple(task for task in TASKS if name in TASK_METRICS[task])


def metric_is_higher_better(name: str) -> bool:
    """Whether a bigger value of the metric means a better model."""
    return name not in LOWER_IS_BETTER


def known_metrics() -> list[str]:
    """Every metric name, as messages list them (`top<k>_accuracy` stands for its family)."""
    names = {*LATENCY_METRICS, *(name for names in TASK_METRICS.values() for name in names)}
    return [*sorted(names), "top<k>_accuracy"]


# --- defaults the runtime applies ----------------------------------------------------------------

DEFAULT_SERVE_PORT = 8080
DRIFT_PSI_THRESHOLD = 0.2  # a feature drifts at PSI >= this
DRIFT_SHARE_THRESHOLD = 0.3  # the dataset drifts when this share of its features drifted
DRIFT_FDR = 0.05  # false discovery rate of the per-feature tests
PREDICTION_LOG_SAMPLE_RATE = 1.0  # share of requests `serve` logs when the spec names a log but no rate
FEEDBACK_MIN_ROWS = 200  # labelled rows before a live metric is alerted on
FEEDBACK_MAX_DELAY = "7d"  # how late labels may come: the feedback job's window of predictions
DriftMethod = Literal["auto", "psi", "ks", "chi2"]
# What `batch` does with a row that breaks the data contract (as `serve` answers 400 to it):
# `fail` the file (nothing written for it; the job exits 1), or `skip` the row and report it.
BatchInvalidRows = Literal["fail", "skip"]
BATCH_INVALID_ROWS: BatchInvalidRows = "fail"
FeatureType = Literal["float", "int", "bool", "category", "string", "bytes"]
