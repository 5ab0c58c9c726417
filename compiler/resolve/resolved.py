"""`ResolvedSpec`: one environment of a project with every derived value filled in.

The only input of backends. What a backend needs that is not written verbatim in the spec is
a field here, computed once by `resolve.environment`: names, image repositories and
references, the images themselves (`resolve.images`), GPU node labels, who owns the serving
replica count, digests, labels, annotations and defaults. Backends read the validated spec
(`ResolvedSpec.spec`) only for values they copy as written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from mlc.compiler.load.spec import MLProject
from mlc.compiler.resolve.images import ProjectImages
from mlc.compiler.resolve.runtime_install import MlcInstall
from mlc.runtime.contract.config import ServeLimits

# The one non-root UID of every image (`USER`) and pod (`runAsUser`); >= 10000, clear of host users.
RUNTIME_UID = 10001

Engine = Literal["runtime", "kserve", "vllm"]
# Who sets the serving workload's replica count: the manifest (`replicas: min`), KEDA on
# in-flight requests, or a HorizontalPodAutoscaler on CPU (KServe's own, for engine kserve).
ReplicaOwner = Literal["manifest", "keda", "hpa"]


@dataclass(frozen=True)
class ResourceNames:
    """Names of the Kubernetes resources of one environment (all DNS-1123 labels <= 63 chars)."""

    project: str
    training_job: str  # training-digest suffix: Jobs are immutable, a changed training pod is a new Job
    training_workers: str  # the headless Service that gives multi-node training pods hostnames
    retraining: str
    serving: str
    canary_analysis: str  # the AnalysisTemplate a canary runs
    promotion: str  # the training pods' service account when their gate pins the served version (canary)
    drift: str  # the drift CronJob, and the service account that may start retraining
    feedback: str  # the feedback CronJob, and its service account when it may start retraining
    batch: str
    runtime_config: str
    alerts: str  # the PrometheusRule
    storage_container: str  # KServe's ClusterStorageContainer: cluster-scoped, so it names the namespace
    gitops_object: str  # the Argo CD Application / Flux objects of the environment


@dataclass(frozen=True)
class Resources:
    """What one container asks for; limits equal requests (Guaranteed QoS, no CPU surprises)."""

    cpu: str
    memory: str
    gpus: int = 0
    gpu_products: tuple[str, ...] = ()  # `nvidia.com/gpu.product` values; empty: any GPU


@dataclass(frozen=True)
class DataVolume:
    """A PersistentVolumeClaim the job pods mount over a project folder (`volumes:`)."""

    name: str  # the pod's volume name
    claim: str
    mount_path: str  # the folder under the image's working directory, where relative paths find it
    read_only: bool


@dataclass(frozen=True)
class CallerPeers:
    """Pods allowed to call the prediction port: a namespace (resolved), and labels (empty: all its pods)."""

    namespace: str
    pods: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ServingAccess:
    """`serve.access` with its defaults filled in: the NetworkPolicy's peers and the server's checks."""

    callers: tuple[CallerPeers, ...] | None  # None: every pod may call (as without `access`)
    monitoring_namespace: str
    metrics_port: int
    api_keys_secret: str | None
    rate_limit: tuple[float, int] | None  # (requests a second, burst)
    audit: str
    trusted_proxies: tuple[str, ...] = ()  # CIDRs whose X-Forwarded-For names the client


@dataclass(frozen=True)
class Serving:
    """How the environment serves: engine, rollout and who owns the replica count."""

    engine: Engine
    port: int
    resources: Resources
    canary: bool  # an Argo Rollout canary in front of the Deployment, its pods pinned to a version (runtime only)
    replica_owner: ReplicaOwner
    autoscale_target: int  # in-flight requests or CPU percent per replica (0 with no autoscaler)
    tensor_parallel: int  # vLLM's tensor-parallel size (0 for other engines)
    access: ServingAccess | None = None  # `serve.access` (engine runtime only)
    limits: ServeLimits | None = None  # `serve.limits` in seconds and bytes (None: the contract's defaults)
    engine_image: str | None = None  # engine vllm: `serve.llm.image`, else the compat table's, by digest

    @property
    def has_deployment(self) -> bool:
        """Whether mlc emits the Deployment itself (KServe's controller makes its own)."""
        return self.engine in ("runtime", "vllm")


@dataclass(frozen=True)
class ResolvedSpec:
    """One environment of a project, with every derived value filled in."""

    spec: MLProject  # the merged, validated spec of the environment: for values copied as written
    environment: str
    namespace: str
    spec_digest: str  # of the whole file: headers and the lock name it
    training_digest: str  # of what the training pod depends on (`training_inputs`)
    compiler_version: str
    compiler_requirement: MlcInstall  # what CI installs to run `mlc`: the compiler that wrote the workflows
    runtime_requirement: MlcInstall  # what CI installs to run `mlc-runtime` (all the runtime's extras)
    names: ResourceNames
    manifests_folder: str  # `<gitops.path>/<env>`: the folder Argo CD or Flux syncs, relative to the spec's
    images: ProjectImages  # per project: the same for every environment
    train_image: str | None  # repository without tag; digests are pinned at apply time
    serve_image: str | None
    train_image_ref: str | None  # `<repository>:<placeholder tag>` until `mlc apply --image` pins it
    serve_image_ref: str | None
    train_gpu: bool
    serve_gpu: bool
    train_resources: Resources | None  # None when the project does not train
    serving: Serving | None  # None when the project does not serve
    registered_model: str
    champion_uri: str  # `models:/<registered model>@champion`
    tracking_uri: str
    ci_tracking_uri: str  # what CI's smoke training and gate use: the server, or a store on the runner
    ci_runs_on: str | tuple[str, ...]  # the workflows' `runs-on`
    ci_model_runs_on: str | tuple[str, ...]  # the PR's model check's (`ci.model_check.runner`, else the above)
    pushgateway: str
    labels: dict[str, str]
    annotations: dict[str, str]
    retrains_on_drift: bool  # the drift job starts the retraining CronJob (needs it, and a Role)
    drift_grouping: dict[str, str]  # Pushgateway grouping key besides `job` (the feedback job's too)
    volumes: tuple[DataVolume, ...] = ()  # mounted in the pods of jobs that read or write data
    retrains_on_degrade: bool = False  # the feedback job starts the retraining CronJob (needs it, and a Role)
    # The drift job's current data: the prediction log's window (the default) or files named in the spec.
    drift_current_uri: str | None = None
    drift_reads_log: bool = False
    feedback_label_column: str | None = None  # monitor.feedback.labels.label_column, else the contract's target
    requirements_hashed: bool = False  # the lock pins --hash entries: pip must --require-hashes
    runtime_wheel_sha256: str | None = None  # of the mlc wheel in the repository (`MlcInstall`)
    runtime_index_hashes: tuple[str, ...] = ()  # mlc.runtime.lock's, for an install from an index
    base_image_digests: Mapping[str, str] = field(default_factory=dict)  # tag -> digest, mlc.images.lock
    # The spec's folder relative to the git top level (POSIX; "." at the top or outside git).
    repository_folder: str = "."

    @property
    def monitors_retrain(self) -> bool:
        """Whether a monitor (drift, or degraded live quality) starts the retraining CronJob."""
        return self.retrains_on_drift or self.retrains_on_degrade

    @property
    def pinned_deployment(self) -> str | None:
        """The serving Deployment whose pod template pins the served version (a canary rollout:
        promotion patches it), or None when servers follow the champion alias."""
        if self.serving is None or not self.serving.canary:
            return None
        return self.names.serving

    @property
    def pins_serving(self) -> bool:
        """Whether the training pods' gate pins the version it promotes (it needs a service account)."""
        return self.pinned_deployment is not None and self.spec.train is not None and self.spec.evaluate is not None

    @property
    def name(self) -> str:
        """The project name."""
        return self.spec.metadata.name

    @property
    def autoscale_target(self) -> int:
        """Requests in flight or CPU percent per replica (0 when the project does not serve)."""
        return self.serving.autoscale_target if self.serving is not None else 0

    @property
    def tensor_parallel(self) -> int:
        """vLLM's tensor-parallel size (0 unless the project serves an LLM)."""
        return self.serving.tensor_parallel if self.serving is not None else 0
