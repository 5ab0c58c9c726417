"""The runtime config's shape: what the compiler writes and the runtime reads, as pydantic models.

Unknown keys are ignored, so a newer compiler that adds a defaulted field does not break an
older runtime; a renamed or retyped field bumps `FORMAT_VERSION` (in `mlc.runtime.contract`),
and the runtime refuses a config of another version (`mlc.runtime.config`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_serializer

from mlc.runtime.contract import (
    AUDIT_LEVEL,
    BATCH_INVALID_ROWS,
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    DEFAULT_SERVE_PORT,
    DRIFT_PSI_THRESHOLD,
    DRIFT_PUSH_JOB,
    DRIFT_SHARE_THRESHOLD,
    FEEDBACK_MIN_ROWS,
    PREDICTION_LOG_SAMPLE_RATE,
    PREVIOUS_ALIAS,
    SERVE_BODY_TIMEOUT,
    SERVE_HEADER_TIMEOUT,
    SERVE_MAX_BODY_BYTES,
    SERVE_MAX_COLUMNS,
    SERVE_MAX_DEPTH,
    SERVE_MAX_ROWS,
    TRACKING_RETRIES,
    TRACKING_TIMEOUT_SECONDS,
    AuditLevel,
    BatchInvalidRows,
    DriftMethod,
    ExitCode,
    FeatureType,
    Task,
    champion_model_uri,
    duration_seconds,
)
from mlc.runtime.errors import MlcRuntimeError


class ConfigError(MlcRuntimeError):
    """The runtime config cannot be used: missing, not JSON, another format, a missing section."""


class _Section(BaseModel):
    # Unknown keys are ignored: a newer compiler that adds a defaulted field does not break an
    # older runtime (a renamed or retyped field bumps FORMAT_VERSION instead).
    model_config = ConfigDict(extra="ignore", frozen=True)


class Feature(_Section):
    type: FeatureType
    min: float | None = None
    max: float | None = None
    nullable: bool = False
    values: list[str | int] | None = None


class Contract(_Section):
    target: str | None = None
    task: Task | None = None  # None: inferred from the training labels
    features: dict[str, Feature] = {}
    ids: list[str] = []  # row identifiers: passed through beside predictions (batch, serve), never model inputs

    @model_serializer(mode="wrap")
    def _ids_when_named(self, handler: Any) -> dict[str, Any]:
        # Written only when the spec names some: a config without ids keeps its bytes (and digests).
        data = handler(self)
        if not data.get("ids"):
            data.pop("ids", None)
        return data


class Dataset(_Section):
    uri: str
    format: Literal["csv", "parquet"] | None = None


class Checkpoint(_Section):
    uri: str | None = None
    every: str = "epoch"


class Train(_Section):
    entrypoint: str
    params: dict[str, Any] = {}
    seed: int = 0
    checkpoint: Checkpoint = Checkpoint()
    timeout_seconds: int | None = None
    nodes: int = 1
    gpus_per_node: int = 0
    spot: bool = False


class Gate(_Section):
    metric: str
    min: float | None = None
    max: float | None = None
    max_drop: float | None = None
    max_rise: float | None = None

    @model_serializer(mode="wrap")
    def _only_the_bound(self, handler: Any) -> dict[str, Any]:
        # A gate has exactly one bound: written as `{metric, <bound>}`, nothing null beside it.
        return {key: value for key, value in handler(self).items() if value is not None}


class Evaluate(_Section):
    dataset: str
    metrics: list[str] = []
    first_model: Literal["allow", "block"] = "allow"
    gates: list[Gate] = []


class CurrentData(_Section):
    uri: str
    window_seconds: int | None = None
    # The URI is the prediction log (`contract.LOG_*`): the window's rows are read (hour partitions
    # pruned, then a timestamp filter); else a folder or glob of files, those written in the window.
    prediction_log: bool = False


class DriftThreshold(_Section):
    psi: float = DRIFT_PSI_THRESHOLD
    share: float = DRIFT_SHARE_THRESHOLD


class Drift(_Section):
    current: CurrentData
    method: DriftMethod = "auto"
    threshold: DriftThreshold = DriftThreshold()
    on_drift: Literal["alert", "retrain"] = "alert"
    retrain_cronjob: str | None = None
    # The model's outputs in the prediction log's window are checked too (the project logs predictions).
    check_predictions: bool = False
    # The PSI the model's predictions may move before they count as drifted (monitor.alerts.prediction_psi),
    # raised to what the window's row count produces by chance, as for features.
    prediction_psi: float = DRIFT_PSI_THRESHOLD


class PredictionLog(_Section):
    """Where `serve` and `batch` log a sample of their predictions (Parquet, hour partitions)."""

    uri: str
    sample_rate: float = PREDICTION_LOG_SAMPLE_RATE


class Labels(_Section):
    """Where ground truth arrives: files with an id column (the logged request id) and a label column."""

    uri: str
    id_column: str
    label_column: str
    max_delay_seconds: int  # how late a label may come: the window of logged predictions joined


class Feedback(_Section):
    """The feedback job: labels joined to logged predictions, evaluate.metrics computed live."""

    labels: Labels
    min_rows: int = FEEDBACK_MIN_ROWS  # labelled rows before a live metric may count as degraded
    on_degrade: Literal["alert", "retrain"] = "alert"
    retrain_cronjob: str | None = None


class ServeBatch(_Section):
    input: str
    output: str
    parallelism: int = 1
    invalid_rows: BatchInvalidRows = BATCH_INVALID_ROWS


class RateLimit(_Section):
    """A token bucket per client: `requests_per_second` on average, `burst` at once."""

    requests_per_second: float
    burst: int


class Access(_Section):
    """Who may call the model server (`serve.access`): what the server itself enforces."""

    metrics_port: int | None = None  # /metrics and /ready's details there only (None: on the serving port)
    api_keys_dir: str | None = None  # a mounted Secret, one file per key (None: no key needed)
    rate_limit: RateLimit | None = None  # per client: API key name, else the client's address
    audit: AuditLevel = AUDIT_LEVEL
    # Proxies whose X-Forwarded-For is believed (CIDRs): a request from one of them is counted
    # and logged by the rightmost forwarded address that is not itself a trusted proxy.
    trusted_proxies: list[str] = []

    @model_serializer(mode="wrap")
    def _without_unset_proxies(self, handler: Any) -> dict[str, Any]:
        # Written only when the spec names proxies: a spec without them compiles as before.
        written = handler(self)
        if not written.get("trusted_proxies"):
            written.pop("trusted_proxies", None)
        return written


class ServeLimits(_Section):
    """What one request may cost the model server (`serve.limits`): refused beyond (the contract's defaults)."""

    max_body_bytes: int = SERVE_MAX_BODY_BYTES
    max_rows: int = SERVE_MAX_ROWS
    max_columns: int = SERVE_MAX_COLUMNS
    max_depth: int = SERVE_MAX_DEPTH
    header_timeout_seconds: float = duration_seconds(SERVE_HEADER_TIMEOUT)
    body_timeout_seconds: float = duration_seconds(SERVE_BODY_TIMEOUT)


class Serve(_Section):
    engine: str = "runtime"
    port: int = DEFAULT_SERVE_PORT
    batch: ServeBatch | None = None
    access: Access | None = None
    # A canary rollout: the Deployment whose pod template pins the served version
    # (SERVED_VERSION_ANNOTATION), which promotion and rollback patch. None: servers follow the alias.
    pinned_deployment: str | None = None
    limits: ServeLimits | None = None  # None: the contract's defaults

    @model_serializer(mode="wrap")
    def _without_unset_sections(self, handler: Any) -> dict[str, Any]:
        # Written only when the spec has them (`serve.access`, `serve.limits`, a canary's pinned
        # Deployment): a spec without them compiles as before.
        written = handler(self)
        for name in ("access", "pinned_deployment", "limits"):
            if written.get(name) is None:
                written.pop(name, None)
        return written


class Metrics(_Section):
    pushgateway: str | None = None
    push_job: str = DRIFT_PUSH_JOB
    grouping: dict[str, str] = {}  # Pushgateway grouping labels besides `job`
    names: dict[str, str] = {}  # role -> metric name (QUERIED_METRICS)


class Aliases(_Section):
    challenger: str = CHALLENGER_ALIAS
    champion: str = CHAMPION_ALIAS
    previous: str = PREVIOUS_ALIAS


class ExitCodes(_Section):
    config_error: int = int(ExitCode.CONFIG_ERROR)


class TrackingRequests(_Section):
    """How long the runtime waits for the tracking server (`registry.timeout`, `registry.retries`)."""

    request_timeout_seconds: int = TRACKING_TIMEOUT_SECONDS
    retries: int = TRACKING_RETRIES


class RuntimeConfig(_Section):
    """Everything `mlc-runtime` knows of one environment of a project."""

    format_version: int
    project: str
    environment: str
    namespace: str | None = None
    spec_digest: str
    compiler_version: str | None = None
    tracking_uri: str
    # None: the contract's defaults (written only when the spec sets them, so a spec without
    # them compiles to the same config as before they existed).
    tracking_requests: TrackingRequests | None = None
    registered_model: str
    aliases: Aliases = Aliases()
    data: dict[str, Dataset] = {}
    contract: Contract | None = None
    train: Train | None = None
    evaluate: Evaluate | None = None
    serve: Serve | None = None
    drift: Drift | None = None
    prediction_log: PredictionLog | None = None
    feedback: Feedback | None = None
    metrics: Metrics = Metrics()
    exit_codes: ExitCodes = ExitCodes()

    @model_serializer(mode="wrap")
    def _without_unset_sections(self, handler: Any) -> dict[str, Any]:
        written = handler(self)
        if written.get("tracking_requests") is None:
            written.pop("tracking_requests", None)
        return written

    @property
    def champion_uri(self) -> str:
        """`models:/<registered model>@<champion alias>`: what serving, batch and drift load."""
        return champion_model_uri(self.registered_model, self.aliases.champion)

    def dataset(self, name: str) -> Dataset:
        """A named dataset, or a ConfigError naming the ones there are."""
        if name not in self.data:
            known = ", ".join(self.data) or "none"
            raise ConfigError(f"no dataset {name!r} in the runtime config (datasets: {known})")
        return self.data[name]

    def require_contract(self) -> Contract:
        """The data contract, or a ConfigError saying where it comes from."""
        if self.contract is None or not self.contract.features:
            raise ConfigError("the runtime config has no data contract (data.contract.features in mlproject.yaml)")
        return self.contract

    def require_train(self) -> Train:
        """The train section, or a ConfigError."""
        if self.train is None:
            raise ConfigError("the runtime config has no train section (train: in mlproject.yaml)")
        return self.train

    def require_batch(self) -> ServeBatch:
        """The serve.batch section, or a ConfigError."""
        if self.serve is None or self.serve.batch is None:
            raise ConfigError("the runtime config has no serve.batch section (serve.batch: in mlproject.yaml)")
        return self.serve.batch

    def require_evaluate(self) -> Evaluate:
        """The evaluate section, or a ConfigError."""
        if self.evaluate is None:
            raise ConfigError("the runtime config has no evaluate section (evaluate: in mlproject.yaml)")
        return self.evaluate

    def require_feedback(self) -> Feedback:
        """The feedback section, or a ConfigError."""
        if self.feedback is None:
            raise ConfigError("the runtime config has no feedback section (monitor.feedback in mlproject.yaml)")
        return self.feedback

    def require_prediction_log(self) -> PredictionLog:
        """The prediction log section, or a ConfigError."""
        if self.prediction_log is None:
            raise ConfigError("the runtime config has no prediction log (monitor.prediction_log in mlproject.yaml)")
        return self.prediction_log

    def require_drift(self) -> Drift:
        """The drift section, or a ConfigError."""
        if self.drift is None:
            raise ConfigError("the runtime config has no drift section (monitor.drift in mlproject.yaml)")
        return self.drift
