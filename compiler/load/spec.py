"""The mlproject.yaml v1 format as pydantic models (`MLProject` and its sections).

These models describe the file as written: every field of `mlproject.reference.yaml`, with
`extra="forbid"` so a typo is an error, and `strict=True` so YAML values are never coerced
(`"yes"` is not a boolean, `3.10` is not the string "3.10"). Where "unset" must stay distinct
from a default (a value derived from another section), the field is `None` here and `resolve`
fills it in one place. Rules across sections live in `validate`.
"""

from __future__ import annotations

import re
from datetime import date
from itertools import pairwise
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mlc.compiler import __version__
from mlc.compiler.load.values import (
    CheckpointEvery,
    Count,
    Cron,
    DataUri,
    DnsLabel,
    Duration,
    Entrypoint,
    EnvVarName,
    Fraction,
    GitBranch,
    ImageReference,
    IpNetwork,
    LabelKey,
    LabelValue,
    Port,
    PositiveInt,
    ProjectName,
    PythonVersion,
    Quantity,
    RelativePath,
    RunnerLabel,
    SecretName,
    TorchVersion,
)
from mlc.runtime.contract import (
    AUDIT_LEVEL,
    BATCH_INVALID_ROWS,
    DEFAULT_METRICS_PORT,
    DEFAULT_MONITORING_NAMESPACE,
    DEFAULT_SERVE_PORT,
    DRIFT_PSI_THRESHOLD,
    DRIFT_SHARE_THRESHOLD,
    FEEDBACK_MAX_DELAY,
    FEEDBACK_MIN_ROWS,
    PREDICTION_LOG_SAMPLE_RATE,
    SERVE_BODY_TIMEOUT,
    SERVE_HEADER_TIMEOUT,
    SERVE_LIMIT_RANGES,
    SERVE_MAX_BODY_BYTES,
    SERVE_MAX_COLUMNS,
    SERVE_MAX_DEPTH,
    SERVE_MAX_ROWS,
    TRACKING_MAX_RETRIES,
    TRACKING_MAX_TIMEOUT_SECONDS,
    TRACKING_RETRIES,
    TRACKING_TIMEOUT_SECONDS,
    AuditLevel,
    BatchInvalidRows,
    DriftMethod,
    FeatureType,
    Task,
    duration_seconds,
    known_metrics,
    metric_tasks,
)

API_VERSION = "mlc/v1"
# Where the cluster's services are when the spec does not say (Services of the usual charts).
DEFAULT_TRACKING_URI = "http://mlflow.mlflow.svc:5000"
DEFAULT_PUSHGATEWAY = "http://prometheus-pushgateway.monitoring.svc:9091"
# A secret whose name starts so, given to CI (`github:`), sends the pull request's smoke
# training and gate to the tracking server; without one they use a local store on the runner.
TRACKING_SECRET_PREFIX = "MLFLOW_TRACKING_"
# GitHub's hosted runner image: fixed, not ubuntu-latest, so runs do not change under the user.
HOSTED_RUNNER = "ubuntu-24.04"

NUMERIC_TYPES = frozenset({"float", "int"})


class Section(BaseModel):
    """Base of every spec section: unknown keys are errors, values are never coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=False)


class Metadata(Section):
    name: ProjectName = Field(description="DNS-1123 label, 1-40 chars; prefixes every generated resource")
    namespace: DnsLabel | None = Field(None, description="Kubernetes namespace (default: the project name)")
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)


class Framework(Section):
    torch: TorchVersion | None = Field(None, description="drives the CUDA base image and torch wheel index")


class Code(Section):
    python: PythonVersion = "3.11"
    requirements: RelativePath = Field("requirements.lock", description="fully pinned (==) requirements")
    source: RelativePath = "src/"
    framework: Framework = Field(default_factory=Framework)


class ImageSpec(Section):
    gpu: bool | None = Field(None, description="CUDA base image; default: the section's resources.gpus > 0")
    system_packages: list[str] = Field(default_factory=list)
    base: ImageReference | None = Field(None, description="override the base image; production requires @sha256:")
    apt_snapshot: str | None = Field(
        None,
        description="a day (YYYY-MM-DD): apt reads the distribution's archive as it was then (snapshot.debian.org, "
        "snapshot.ubuntu.com), so every system package resolves to that day's version, with or without one written",
    )

    @field_validator("apt_snapshot")
    @classmethod
    def _a_day(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            valid = re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) is not None and bool(date.fromisoformat(value))
        except ValueError:
            valid = False
        if not valid:
            raise ValueError("must be a day written YYYY-MM-DD, e.g. '2026-11-30'")
        return value

    @field_validator("system_packages")
    @classmethod
    def _debian_package_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not re.fullmatch(r"[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?", name):
                raise ValueError(f"'{name}' is not a Debian package name (e.g. 'libgomp1' or 'curl=7.88.1-10')")
        return names


# Where `mlc vendor` writes the running compiler's own wheel, and where images and CI look for it
# unless `images.runtime` says otherwise: outside `gitops.path`, which image builds ignore.
DEFAULT_RUNTIME_WHEEL_FOLDER = "wheels"


def runtime_wheel_name(version: str) -> str:
    """The file name of mlc's pure-Python wheel at `version` (PEP 427)."""
    return f"mlc-{version}-py3-none-any.whl"


class RuntimeSource(Section):
    """Where the images and the CI workflows get the mlc runtime they `pip install`."""

    wheel: RelativePath | None = Field(
        None,
        description=f"a wheel of mlc in the repository, installed with its sha256 checked (default, when "
        f"index_url is unset: {DEFAULT_RUNTIME_WHEEL_FOLDER}/mlc-<version>-py3-none-any.whl, written by `mlc vendor`)",
    )
    index_url: str | None = Field(
        None,
        description="install mlc==<version> from this package index instead; a private index's login comes "
        "from the pip.conf BuildKit secret (images) and a ~/.netrc entry on the runner (CI), never from the spec",
    )
    version: str | None = Field(None, description="the mlc release to install: the compiler's own (the default)")

    @field_validator("wheel")
    @classmethod
    def _wheel_of_mlc(cls, value: str | None) -> str | None:
        if value is None:
            return value
        name = value.rsplit("/", 1)[-1]
        if not re.fullmatch(r"[A-Za-z0-9._/-]+", value) or not re.fullmatch(r"mlc-[^-]+-py3-none-any\.whl", name):
            raise ValueError(
                "must be the path of an mlc wheel, e.g. "
                f"'{DEFAULT_RUNTIME_WHEEL_FOLDER}/{runtime_wheel_name(__version__)}' (letters, digits, '._/-'; "
                "`mlc vendor` writes it)"
            )
        version = name.split("-")[1]
        if version != __version__:
            raise ValueError(
                f"is a wheel of mlc {version}, but this compiler is {__version__}: images must run the runtime "
                f"of the compiler that wrote their config; run `mlc vendor` and name "
                f"'{runtime_wheel_name(__version__)}'"
            )
        return value

    @field_validator("index_url")
    @classmethod
    def _index_without_credentials(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not re.fullmatch(r"https?://[^\s\"'`$\\]+", value):
            raise ValueError("must be an http(s) URL of a package index, e.g. 'https://pypi.example.com/simple'")
        if "@" in value.split("://", 1)[1].split("/", 1)[0]:
            raise ValueError(
                "has credentials in it: the spec is committed and the URL lands in Dockerfiles and workflows; "
                "write the URL without them and pass a pip.conf with the login as the BuildKit secret "
                "`pip.conf` (the Dockerfile mounts it) and, for CI, a ~/.netrc entry for the index's host on "
                "the runner (pip reads it; the workflow sets PIP_INDEX_URL to the URL without a login)"
            )
        return value

    @field_validator("version")
    @classmethod
    def _the_compilers_version(cls, value: str | None) -> str | None:
        if value is not None and value != __version__:
            raise ValueError(
                f"is not this compiler's version ({__version__}): the runtime reads the config the compiler "
                f"writes, so images install the same release; write '{__version__}' or leave it out"
            )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> RuntimeSource:
        if self.wheel is not None and self.index_url is not None:
            raise ValueError("name either wheel (a file in the repository) or index_url (a package index), not both")
        return self

    def wheel_path(self) -> str | None:
        """The wheel images and CI install (relative to the spec's folder), None from an index."""
        if self.index_url is not None:
            return None
        return self.wheel or f"{DEFAULT_RUNTIME_WHEEL_FOLDER}/{runtime_wheel_name(__version__)}"


class Images(Section):
    registry: str | None = Field(None, description="<registry>/<name>-train and <registry>/<name>-serve")
    train: ImageSpec = Field(default_factory=ImageSpec)
    serve: ImageSpec = Field(default_factory=ImageSpec)
    runtime: RuntimeSource = Field(default_factory=RuntimeSource)

    @field_validator("registry")
    @classmethod
    def _registry_form(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)*", value):
            raise ValueError("must be a registry and path without tag, e.g. 'ghcr.io/acme'")
        return value


class Dataset(Section):
    uri: DataUri = Field(description="file, directory, glob, or s3:// gs:// URI")
    format: Literal["parquet", "csv"] | None = Field(None, description="default: from the file extension")


class Feature(Section):
    type: FeatureType
    min: float | None = None
    max: float | None = None
    nullable: bool = False
    values: list[str | int] | None = Field(None, description="closed category set (category only)")

    @model_validator(mode="after")
    def _bounds_fit_type(self) -> Feature:
        numeric = self.type in NUMERIC_TYPES
        if not numeric and (self.min is not None or self.max is not None):
            raise ValueError(f"min/max apply only to numeric features (float, int), not '{self.type}'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) must not exceed max ({self.max:g})")
        if self.values is not None and self.type != "category":
            raise ValueError(f"values apply only to category features, not '{self.type}'")
        if self.values is not None and len(set(self.values)) != len(self.values):
            raise ValueError("values must not repeat")
        return self


class Contract(Section):
    target: str | None = None
    task: Task | None = Field(
        None,
        description="binary | multiclass | regression; checks evaluate.metrics against it (default: inferred "
        "from the training labels: 0/1 or booleans binary, numbers regression, anything else multiclass)",
    )
    features: dict[str, Feature] = Field(default_factory=dict)
    ids: list[str] = Field(
        default_factory=list,
        description="columns that identify a row (e.g. customer_id): never fed to the model; batch writes them "
        "beside each prediction and serve echoes them in its response, so scores join back",
    )


class Data(Section):
    """Named datasets plus the data contract. `train` and `eval` are conventional names."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)
    __pydantic_extra__: dict[str, Dataset] = Field(init=False)  # type: ignore[assignment]

    train: Dataset | None = None
    eval: Dataset | None = None
    contract: Contract | None = None

    def datasets(self) -> dict[str, Dataset]:
        """Every named dataset (train, eval and any others), in file order."""
        named = {k: v for k, v in (("train", self.train), ("eval", self.eval)) if v is not None}
        return {**named, **(self.__pydantic_extra__ or {})}


class TrainResources(Section):
    gpus: Count = 0
    gpu_type: str | None = Field(None, description="nodeSelector nvidia.com/gpu.product; ignored when gpus is 0")
    cpu: Quantity = "2"
    memory: Quantity = "8Gi"


class Distributed(Section):
    nodes: PositiveInt = 1
    backend: Literal["job", "jobset"] = "job"


class Checkpoint(Section):
    uri: DataUri | None = None
    every: CheckpointEvery = "epoch"


class Train(Section):
    entrypoint: Entrypoint
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int = Field(0, ge=0, le=2**32 - 1)  # numpy's and torch's seed range
    resources: TrainResources = Field(default_factory=TrainResources)
    distributed: Distributed = Field(default_factory=Distributed)
    queue: DnsLabel | None = Field(None, description="Kueue LocalQueue name")
    spot: bool = False
    checkpoint: Checkpoint = Field(default_factory=Checkpoint)
    timeout: Duration = "24h"
    schedule: Cron | None = Field(None, description="periodic retraining CronJob")


class Registry(Section):
    tracking_uri: str | None = Field(None, description="default http://mlflow.mlflow.svc:5000")
    model: str | None = Field(None, description="registered model name (default: the project name)")
    timeout: Duration | None = Field(
        None,
        description=f"longest wait for one request to the tracking server, e.g. '30s' "
        f"(default {TRACKING_TIMEOUT_SECONDS}s; at most {TRACKING_MAX_TIMEOUT_SECONDS}s)",
    )
    retries: int | None = Field(
        None,
        ge=0,
        le=TRACKING_MAX_RETRIES,
        description=f"retries of a failed request to the tracking server (default {TRACKING_RETRIES})",
    )

    @field_validator("timeout")
    @classmethod
    def _timeout_bound(cls, value: str | None) -> str | None:
        if value is not None and duration_seconds(value) > TRACKING_MAX_TIMEOUT_SECONDS:
            raise ValueError(f"must be at most {TRACKING_MAX_TIMEOUT_SECONDS}s (e.g. '30s'), got '{value}'")
        return value

    @field_validator("model")
    @classmethod
    def _model_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", value):
            raise ValueError("must be 1-100 letters, digits, '.', '_' or '-', e.g. 'churn-classifier'")
        return value


class Gate(Section):
    metric: str
    min: float | None = None
    max: float | None = None
    max_drop: float | None = Field(None, ge=0)
    max_rise: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _one_bound(self) -> Gate:
        bounds = [k for k in ("min", "max", "max_drop", "max_rise") if getattr(self, k) is not None]
        if len(bounds) != 1:
            raise ValueError(
                f"a gate needs exactly one of min, max, max_drop, max_rise (got {', '.join(bounds) or 'none'}), "
                "e.g. {metric: f1, min: 0.8}"
            )
        return self


class Evaluate(Section):
    dataset: str = "eval"
    metrics: list[str] = Field(default_factory=lambda: ["accuracy"])
    gates: list[Gate] = Field(default_factory=list)
    first_model: Literal["allow", "block"] = "allow"

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, names: list[str]) -> list[str]:
        for name in names:
            if not metric_tasks(name):
                hint = " (ranking metrics need a ranking task, which mlc does not train yet)" if "ndcg" in name else ""
                raise ValueError(f"unknown metric '{name}'{hint}; known: {', '.join(known_metrics())}")
        if len(set(names)) != len(names):
            raise ValueError("metrics must not repeat")
        return names


class Replicas(Section):
    min: Count = 1
    max: PositiveInt = 1

    @model_validator(mode="after")
    def _ordered(self) -> Replicas:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max}), e.g. {{min: 2, max: 10}}")
        return self


class Autoscale(Section):
    on: Literal["queue_depth", "cpu", "none"] = "none"
    target: PositiveInt | None = Field(
        None, description="in-flight requests per replica, or CPU percent (default 8 / 70)"
    )


class ServeResources(Section):
    cpu: Quantity = "1"
    memory: Quantity = "2Gi"
    gpus: Count = 0
    gpu_type: str | None = None


class AbortIf(Section):
    error_rate: Fraction | None = None
    latency_p95_ms: float | None = Field(None, gt=0)


class Rollout(Section):
    strategy: Literal["canary", "rolling"] = "rolling"
    steps: list[int] = Field(default_factory=lambda: [10, 50, 100])
    pause: Duration = "5m"
    abort_if: AbortIf = Field(default_factory=AbortIf)

    @field_validator("steps")
    @classmethod
    def _increasing_percentages(cls, steps: list[int]) -> list[int]:
        if not steps or any(not 0 < s <= 100 for s in steps):
            raise ValueError("steps must be traffic percentages between 1 and 100, e.g. [10, 50, 100]")
        if any(b <= a for a, b in pairwise(steps)):
            raise ValueError(f"steps must increase, e.g. [10, 50, 100], got {steps}")
        return steps


class LLM(Section):
    model: str = Field(description="model repository, e.g. Qwen/Qwen2.5-7B-Instruct")
    revision: str = Field(description="the commit sha of the model repository (pinned)")
    max_model_len: PositiveInt | None = None
    tensor_parallel: PositiveInt | None = Field(None, description="default: serve.resources.gpus")
    image: ImageReference | None = Field(
        None,
        description="the vLLM OpenAI-compatible server image (default: the compatibility table's, pinned by "
        "digest); production environments need it by digest",
    )

    @field_validator("revision")
    @classmethod
    def _commit_sha(cls, value: str) -> str:
        if not re.fullmatch(r"[0-9a-f]{40}", value):
            raise ValueError(
                "must be the 40-hex commit sha of the model repository, so a re-upload cannot change "
                "what is served (a branch or tag like 'main' moves)"
            )
        return value


class Batch(Section):
    schedule: Cron
    input: DataUri
    output: DataUri
    parallelism: PositiveInt = 1
    invalid_rows: BatchInvalidRows = Field(
        BATCH_INVALID_ROWS,
        description="a row breaking the data contract (serve answers it 400): fail its file, or skip and report it",
    )


class Caller(Section):
    """Pods allowed to call the prediction port: a namespace, pods by label, or both."""

    namespace: DnsLabel | None = Field(None, description="the callers' namespace (default: the project's)")
    pods: dict[LabelKey, LabelValue] | None = Field(
        None, description="only pods with these labels (default: every pod of the namespace)"
    )

    @model_validator(mode="after")
    def _names_someone(self) -> Caller:
        if self.namespace is None and not self.pods:
            raise ValueError(
                "a caller needs `namespace`, `pods` or both, e.g. {namespace: web, pods: {app: checkout}} "
                "(an ingress controller: its namespace and pod labels)"
            )
        return self


class RateLimit(Section):
    requests_per_second: float = Field(gt=0, le=1_000_000, description="per client (API key, else address)")
    burst: int | None = Field(None, ge=1, le=1_000_000, description="requests at once (default: 1 s worth)")


class ApiKeys(Section):
    k8s: DnsLabel = Field(description="a Kubernetes Secret: each of its keys is a caller's name, its value a key")


class Access(Section):
    """Who may call the model (engine runtime): the NetworkPolicy and what the server checks."""

    callers: list[Caller] | None = Field(
        None, description="who may reach the prediction port (default: every pod, as without `access`)"
    )
    monitoring_namespace: DnsLabel = Field(
        DEFAULT_MONITORING_NAMESPACE, description="the only namespace that reaches /metrics (Prometheus)"
    )
    metrics_port: Port = Field(DEFAULT_METRICS_PORT, description="/metrics and readiness details, for monitoring")
    api_keys: ApiKeys | None = Field(None, description="require an API key from this Secret (several at once rotate)")
    rate_limit: RateLimit | None = None
    audit: AuditLevel = Field(AUDIT_LEVEL, description="off | requests (a line per request) | payloads (with bodies)")
    trusted_proxies: list[IpNetwork] = Field(
        default_factory=list,
        max_length=256,
        description="CIDRs of the ingress or load balancer in front: from them the client is the rightmost "
        "X-Forwarded-For address that is not a trusted proxy (default: none, the peer address is the client)",
    )


def _limit(name: str, default: int, description: str) -> Any:
    least, most = SERVE_LIMIT_RANGES[name]
    return Field(default, ge=least, le=most, description=f"{description} ({least} to {most})")


class Limits(Section):
    """What one request may cost the model server (engine runtime); beyond, it is refused."""

    max_body_bytes: int = _limit("max_body_bytes", SERVE_MAX_BODY_BYTES, "largest request body; 413 beyond")
    max_rows: int = _limit("max_rows", SERVE_MAX_ROWS, "most rows in one request; 400 beyond")
    max_columns: int = _limit("max_columns", SERVE_MAX_COLUMNS, "most columns in one request; 400 beyond")
    max_depth: int = _limit("max_depth", SERVE_MAX_DEPTH, "deepest JSON nesting; 400 beyond")
    header_timeout: Duration = Field(
        SERVE_HEADER_TIMEOUT, description="a connection's time to send a request's headers; closed beyond (1s to 1h)"
    )
    body_timeout: Duration = Field(
        SERVE_BODY_TIMEOUT, description="a request's time to send its body after its headers; 408 beyond (1s to 1h)"
    )

    @field_validator("header_timeout", "body_timeout")
    @classmethod
    def _within_range(cls, value: str, info: Any) -> str:
        least, most = SERVE_LIMIT_RANGES[info.field_name]
        if not least <= duration_seconds(value) <= most:
            raise ValueError(f"must be between {least}s and {most // 3600}h, e.g. '30s'")
        return value


class Serve(Section):
    engine: Literal["runtime", "kserve", "vllm"] = "runtime"
    port: Port = DEFAULT_SERVE_PORT
    replicas: Replicas = Field(default_factory=Replicas)
    autoscale: Autoscale = Field(default_factory=Autoscale)
    resources: ServeResources = Field(default_factory=ServeResources)
    rollout: Rollout = Field(default_factory=Rollout)
    llm: LLM | None = None
    batch: Batch | None = None
    access: Access | None = None
    limits: Limits | None = Field(None, description="request limits of the model server (default: safe ones)")


class CurrentData(Section):
    uri: DataUri | None = Field(
        None,
        description="files of recent production inputs (a folder or glob: those written in the window); "
        "default: the prediction log, whose rows of the window are read",
    )
    window: Duration = "24h"


class DriftThreshold(Section):
    # The runtime's defaults (the contract's): a check run without a config decides the same.
    psi: float = Field(DRIFT_PSI_THRESHOLD, gt=0)
    share: Fraction = DRIFT_SHARE_THRESHOLD


class Drift(Section):
    schedule: Cron = "0 * * * *"
    current: CurrentData = Field(default_factory=CurrentData)
    method: DriftMethod = "auto"
    threshold: DriftThreshold = Field(default_factory=DriftThreshold)
    on_drift: Literal["alert", "retrain"] = "alert"


class Alerts(Section):
    latency_p95_ms: float | None = Field(None, gt=0)
    error_rate: Fraction | None = None
    prediction_psi: float | None = Field(
        None, gt=0, description="the PSI of the model's outputs (logged vs eval set at training) that alerts"
    )


class PredictionLog(Section):
    uri: DataUri = Field(description="folder the model server and batch write sampled predictions to (Parquet)")
    sample_rate: Fraction = Field(PREDICTION_LOG_SAMPLE_RATE, description="share of requests logged")


class Labels(Section):
    uri: DataUri = Field(description="file, folder or glob where ground-truth labels arrive")
    id_column: str = Field("request_id", min_length=1, description="the request id the server answered")
    label_column: str | None = Field(None, min_length=1, description="default: data.contract.target")
    max_delay: Duration = Field(FEEDBACK_MAX_DELAY, description="how late a label may come")


class Feedback(Section):
    schedule: Cron = "0 * * * *"
    labels: Labels
    min_rows: PositiveInt = Field(FEEDBACK_MIN_ROWS, description="labelled rows before a live metric may alert")
    on_degrade: Literal["alert", "retrain"] = "alert"


class Monitor(Section):
    prediction_log: PredictionLog | None = None
    drift: Drift | None = None
    feedback: Feedback | None = None
    alerts: Alerts = Field(default_factory=Alerts)
    pushgateway: str | None = Field(None, description="default http://prometheus-pushgateway.monitoring.svc:9091")


class Volume(Section):
    """A PersistentVolumeClaim holding a folder of the project: the compiled job pods mount it
    where the folder is in their working directory, so a relative path under `path` means the
    same file locally (the folder itself) and in the cluster (the claim)."""

    claim: DnsLabel = Field(description="name of the PersistentVolumeClaim (in the environment's namespace)")
    path: RelativePath = Field(description="the folder it holds, relative to mlproject.yaml, e.g. 'data/'")
    read_only: bool = Field(False, description="mount it read-only: jobs may read, not write, under `path`")


class SecretRef(Section):
    """Where a secret lives: a Kubernetes Secret key, and optionally a GitHub Actions secret."""

    k8s: DnsLabel = Field(description="name of the Kubernetes Secret")
    key: str = Field(description="key inside the Secret")
    github: EnvVarName | None = Field(None, description="name of the GitHub Actions secret")


class GitOps(Section):
    engine: Literal["argocd", "flux", "none"] = "none"
    repo: str | None = Field(None, description="required for argocd and flux")
    path: RelativePath = Field("deploy", description="where the compiled artifacts go, relative to the spec")
    branch: GitBranch = "main"

    @field_validator("path")
    @classmethod
    def _outside_tool_folders(cls, value: str) -> str:
        parts = [part for part in value.replace("\\", "/").split("/") if part not in ("", ".")]
        if ".git" in parts or (parts and parts[0] in (".github", ".mlc")):
            raise ValueError(
                "must not be inside .git, .github (the repository's workflows) or .mlc (local state), e.g. 'deploy'"
            )
        if not parts:
            raise ValueError("must name a folder beside the spec, e.g. 'deploy'")
        return value


PullRequestJob = Literal["validate", "plan", "data_tests", "smoke_train", "gate"]


class Bot(Section):
    commit: bool = False
    comment: bool = False


class SelfHostedRunner(Section):
    self_hosted: list[RunnerLabel] = Field(
        min_length=1, description="labels of your runners (e.g. inside the cluster), besides `self-hosted`"
    )


class ModelCheck(Section):
    """How the pull request's model check trains the PR's and the base branch's code."""

    training: Literal["smoke", "full"] = Field(
        "smoke",
        description="smoke: a small sample on the CPU, relative gates decide; full: the spec's training as the "
        "cluster runs it, every gate decides",
    )
    runner: Literal["hosted"] | SelfHostedRunner | None = Field(
        None, description="where the model check's jobs run, e.g. {self_hosted: [gpu]} (default: ci.runner)"
    )


class CI(Section):
    provider: Literal["github"] = "github"
    pull_request: list[PullRequestJob] = Field(default_factory=lambda: ["validate", "plan"])
    bot: Bot = Field(default_factory=Bot)
    runner: Literal["hosted"] | SelfHostedRunner = Field(
        "hosted", description=f"hosted (GitHub's {HOSTED_RUNNER}) or {{self_hosted: [labels]}} (runners you run)"
    )
    model_check: ModelCheck = Field(default_factory=ModelCheck)


class MLProject(Section):
    """A whole mlproject.yaml (one environment's view once overlays are merged)."""

    api_version: Literal["mlc/v1"] = Field(alias="apiVersion")
    kind: Literal["MLProject"]
    metadata: Metadata
    code: Code = Field(default_factory=Code)
    images: Images = Field(default_factory=Images)
    data: Data = Field(default_factory=Data)
    train: Train | None = None
    registry: Registry = Field(default_factory=Registry)
    evaluate: Evaluate | None = None
    serve: Serve | None = None
    monitor: Monitor | None = None
    secrets: dict[SecretName, SecretRef] = Field(default_factory=dict)
    volumes: dict[DnsLabel, Volume] = Field(
        default_factory=dict,
        description="claims the job pods mount over project folders (data a cluster's jobs read or write)",
    )
    environments: dict[DnsLabel, dict[str, Any]] = Field(
        default_factory=dict, description="overlays deep-merged over the base, one output folder each"
    )
    gitops: GitOps = Field(default_factory=GitOps)
    ci: CI = Field(default_factory=CI)

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=False)

    @property
    def ci_uses_tracking_server(self) -> bool:
        """Whether the pull request's smoke training and gate talk to the tracking server: the
        spec gives CI a tracking secret (`secrets.MLFLOW_TRACKING_*` with a `github:` name)."""
        return any(name.startswith(TRACKING_SECRET_PREFIX) and ref.github for name, ref in self.secrets.items())

    def builds_image(self, role: Literal["train", "serve"]) -> bool:
        """Whether the project builds the `role` image: the training image when it trains; the
        serve image for the runtime's model server, or for KServe's storage initializer
        (`mlc-runtime fetch-model` resolves the registry alias). The one place this is decided:
        validate requires `images.registry` exactly when it is true, resolve names the images."""
        if role == "train":
            return self.train is not None
        return self.serve is not None and self.serve.engine in ("runtime", "kserve")
