"""Stage 3, resolve: a validated environment -> `ResolvedSpec`, the only input of backends.

Every value a backend needs that is not written verbatim in the spec is derived here, once:
resource names, image names, labels, annotations, digests and defaults that depend on other
sections. Pure: no clock, no environment variables, no file access, so the same spec gives the
same `ResolvedSpec` on every machine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlc.compiler import __version__
from mlc.compiler.load.spec import MLProject
from mlc.compiler.validate.project import ValidatedProject

DEFAULT_ENVIRONMENT = "default"
DEFAULT_TRACKING_URI = "http://mlflow.mlflow.svc:5000"
DEFAULT_PUSHGATEWAY = "http://prometheus-pushgateway.monitoring.svc:9091"
DEFAULT_AUTOSCALE_TARGET = {"queue_depth": 8, "cpu": 70, "none": 0}
ANNOTATION_PREFIX = "mlc.dev"
# The one non-root UID of every image (`USER`) and pod (`runAsUser`); >= 10000, clear of host users.
RUNTIME_UID = 10001


def canonical_digest(data: Any) -> str:
    """sha256 of the canonical JSON of `data` (sorted keys, no whitespace): stable everywhere."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ResourceNames:
    """Names of the Kubernetes resources of one environment (all DNS-1123 labels <= 63 chars)."""

    project: str
    training_job: str  # training-digest suffix: Jobs are immutable, a changed training pod is a new Job
    retraining: str
    serving: str
    drift: str
    batch: str
    runtime_config: str


@dataclass(frozen=True)
class ResolvedSpec:
    """One environment of a project, with every derived value filled in."""

    spec: MLProject
    environment: str
    namespace: str
    spec_digest: str  # of the whole file: headers and the lock name it
    environment_digest: str  # of this environment's merged spec: names that must change with it
    training_digest: str  # of what the training pod depends on (`training_inputs`)
    compiler_version: str
    names: ResourceNames
    train_image: str | None  # repository without tag; digests are pinned at apply time
    serve_image: str | None
    train_gpu: bool
    serve_gpu: bool
    registered_model: str
    tracking_uri: str
    pushgateway: str
    autoscale_target: int
    tensor_parallel: int
    labels: dict[str, str]
    annotations: dict[str, str]
    requirements_hashed: bool = False  # the lock pins --hash entries: pip must --require-hashes
    base_image_digests: Mapping[str, str] = field(default_factory=dict)  # tag -> digest, mlc.images.lock
    # The spec's folder relative to the git top level (POSIX; "." at the top or outside git).
    repository_folder: str = "."
    retrains_on_drift: bool = False  # the drift job starts the retraining CronJob (needs it, and a Role)
    drift_grouping: dict[str, str] = field(default_factory=dict)  # Pushgateway grouping key besides `job`

    @property
    def name(self) -> str:
        """The project name."""
        return self.spec.metadata.name


def edge_inputs(resolved: ResolvedSpec) -> dict[str, Any]:
    """What a resolved spec was given besides the spec's data: facts the pipeline read at the
    edge (`mlc.images.lock`, whether the requirements lock pins hashes, where the spec sits in
    its git repository). The same for every environment of a project.

    Emit's output is a function of the spec's data, these and the compiler build, so plan's
    skip-emit key (`build_fingerprint.inputs_digest`) digests all three. A new field of
    `ResolvedSpec` that does not derive from the spec's data belongs here.
    """
    return {
        "base_image_digests": dict(resolved.base_image_digests),
        "requirements_hashed": resolved.requirements_hashed,
        "repository_folder": resolved.repository_folder,
    }


def training_inputs(spec: MLProject, train_image: str | None) -> dict[str, Any]:
    """Everything the training pod depends on, as data: its digest names the training Job.

    A Job's pod template is immutable, so the Job gets a new name whenever this changes, and
    only then: a serving or monitoring edit must not start a retraining. `train.schedule` is
    left out (it drives the CronJob, which is mutable); the compiler version is in, because a
    new compiler may render a different pod template.
    """
    train = spec.train.model_dump(mode="json", by_alias=True, exclude={"schedule"}) if spec.train else None
    return {
        "compiler_version": __version__,
        "train": train,
        "code": spec.code.model_dump(mode="json", by_alias=True),
        "images": {"registry": spec.images.registry, "train": spec.images.train.model_dump(mode="json", by_alias=True)},
        "data": spec.data.model_dump(mode="json", by_alias=True),  # datasets and the contract
        "registry": spec.registry.model_dump(mode="json", by_alias=True),
        "secrets": {name: ref.model_dump(mode="json", by_alias=True) for name, ref in spec.secrets.items()},
        "train_image": train_image,
    }


def resolve_environment(
    project: ValidatedProject,
    environment: str | None,
    base_image_digests: Mapping[str, str] | None = None,
    repository_folder: str = ".",
) -> ResolvedSpec:
    """Resolve one environment (`None`: the base, used when the spec defines no environments).

    `base_image_digests` (tag -> sha256 digest, read from `mlc.images.lock` by the caller) pins
    base images; `repository_folder` is the spec's folder relative to its git top level (POSIX,
    "." at the top), found by the caller; resolution itself reads no file.
    """
    spec = project.environments[environment] if environment is not None else project.base
    env_name = environment or DEFAULT_ENVIRONMENT
    spec_digest = canonical_digest(project.document.data)
    env_digest = canonical_digest(spec.model_dump(mode="json", by_alias=True))
    name = spec.metadata.name
    train, serve = spec.train, spec.serve

    registry = spec.images.registry
    builds_train = train is not None
    builds_serve = spec.builds_serve_image
    train_gpu = spec.images.train.gpu if spec.images.train.gpu is not None else bool(train and train.resources.gpus)
    serve_gpu = spec.images.serve.gpu if spec.images.serve.gpu is not None else bool(serve and serve.resources.gpus)

    autoscale_target = 0
    tensor_parallel = 0
    if serve is not None:
        autoscale_target = serve.autoscale.target or DEFAULT_AUTOSCALE_TARGET[serve.autoscale.on]
        if serve.llm is not None:
            tensor_parallel = serve.llm.tensor_parallel or max(serve.resources.gpus, 1)

    drift = spec.monitor.drift if spec.monitor is not None else None
    train_image = f"{registry}/{name}-train" if registry and builds_train else None
    training_digest = canonical_digest(training_inputs(spec, train_image))

    labels = {
        **spec.metadata.labels,
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": f"{name}-{env_name}"[:63].rstrip("-"),
        "app.kubernetes.io/part-of": name,
        "app.kubernetes.io/managed-by": "mlc",
        "app.kubernetes.io/version": env_digest[:12],
    }
    annotations = {
        f"{ANNOTATION_PREFIX}/spec-digest": f"sha256:{spec_digest}",
        f"{ANNOTATION_PREFIX}/environment-digest": f"sha256:{env_digest}",
        f"{ANNOTATION_PREFIX}/compiler-version": __version__,
        f"{ANNOTATION_PREFIX}/environment": env_name,
    }
    return ResolvedSpec(
        spec=spec,
        environment=env_name,
        namespace=spec.metadata.namespace or name,
        spec_digest=spec_digest,
        environment_digest=env_digest,
        training_digest=training_digest,
        compiler_version=__version__,
        names=ResourceNames(
            project=name,
            training_job=f"{name}-train-{training_digest[:8]}",
            retraining=f"{name}-retrain",
            serving=f"{name}-serve",
            drift=f"{name}-drift",
            batch=f"{name}-batch",
            runtime_config=f"{name}-runtime-config",
        ),
        train_image=train_image,
        serve_image=f"{registry}/{name}-serve" if registry and builds_serve else None,
        train_gpu=train_gpu,
        serve_gpu=serve_gpu,
        registered_model=spec.registry.model or name,
        tracking_uri=spec.registry.tracking_uri or DEFAULT_TRACKING_URI,
        pushgateway=(spec.monitor.pushgateway if spec.monitor else None) or DEFAULT_PUSHGATEWAY,
        autoscale_target=autoscale_target,
        tensor_parallel=tensor_parallel,
        labels=labels,
        annotations=annotations,
        requirements_hashed=project.requirements_hashed,
        base_image_digests=dict(sorted((base_image_digests or {}).items())),
        repository_folder=repository_folder,
        retrains_on_drift=drift is not None and drift.on_drift == "retrain" and train is not None,
        drift_grouping={"project": name, "environment": env_name},
    )


def resolve_project(
    project: ValidatedProject,
    base_image_digests: Mapping[str, str] | None = None,
    repository_folder: str = ".",
) -> list[ResolvedSpec]:
    """One `ResolvedSpec` per environment, in file order (the base alone when there are none)."""
    names = list(project.environments) or [None]
    return [resolve_environment(project, name, base_image_digests, repository_folder) for name in names]
