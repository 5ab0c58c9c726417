"""Stage 3, resolve: a validated environment -> `ResolvedSpec`, the only input of backends.

Every value a backend needs that is not written verbatim in the spec is derived here, once:
resource names, image repositories and references, the images (`images`), GPU node labels,
who owns the serving replica count, labels, annotations, digests and defaults that depend on
other sections. Pure: no clock, no environment variables, no file access, so the same spec
gives the same `ResolvedSpec` on every machine.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any, Literal

from mlc.compiler import __version__
from mlc.compiler.compat import gpu_node_labels, serving_images
from mlc.compiler.load.spec import (
    DEFAULT_PUSHGATEWAY,
    DEFAULT_TRACKING_URI,
    HOSTED_RUNNER,
    MLProject,
    SelfHostedRunner,
    Serve,
)
from mlc.compiler.resolve.images import (
    IMAGE_CODE_DIR,
    ImageRole,
    ProjectImages,
    image_repository,
    resolve_project_images,
    runs_on_gpu,
)
from mlc.compiler.resolve.resolved import (
    CallerPeers,
    DataVolume,
    ReplicaOwner,
    ResolvedSpec,
    ResourceNames,
    Resources,
    Serving,
    ServingAccess,
)
from mlc.compiler.resolve.runtime_install import MlcInstall, resolve_mlc_install
from mlc.compiler.validate.project import DEFAULT_ENVIRONMENT, LOCAL_ENVIRONMENT, ValidatedProject
from mlc.runtime.contract import LOCAL_TRACKING_URI, champion_model_uri, duration_seconds
from mlc.runtime.contract.config import ServeLimits

DEFAULT_AUTOSCALE_TARGET = {"queue_depth": 8, "cpu": 70, "none": 0}
ANNOTATION_PREFIX = "mlc.dev"


def canonical_digest(data: Any) -> str:
    """sha256 of the canonical JSON of `data` (sorted keys, no whitespace): stable everywhere."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def edge_inputs(resolved: ResolvedSpec) -> dict[str, Any]:
    """What a resolved spec was given besides the spec's data: facts the pipeline read at the
    edge (`mlc.images.lock`, whether the requirements lock pins hashes, where the spec sits in
    its git repository). The same for every environment of a project.

    Emit's output is a function of the spec's data, these and the compiler build, so plan's
    skip-emit key (`fingerprint.inputs_digest`) digests all three. A new field of
    `ResolvedSpec` that does not derive from the spec's data belongs here.
    """
    return {
        "base_image_digests": dict(resolved.base_image_digests),
        "requirements_hashed": resolved.requirements_hashed,
        "runtime_wheel_sha256": resolved.runtime_wheel_sha256,
        "runtime_index_hashes": resolved.runtime_index_hashes,
        "repository_folder": resolved.repository_folder,
    }


def training_inputs(spec: MLProject, train_image: str | None) -> dict[str, Any]:
    """Everything the training pod depends on, as data: its digest names the training Job
    (`train_image`: the training image's reference, repository and placeholder tag).

    A Job's pod template is immutable, so the Job gets a new name whenever this changes, and
    only then: a serving or monitoring edit must not start a retraining. `train.schedule` is
    left out (it drives the CronJob, which is mutable); the compiler version is in, because a
    new compiler may render a different pod template. Values at their defaults are left out: a
    field a later compiler adds with a default renames no Job.
    """

    def data(section: Any, **exclude: Any) -> Any:
        return section.model_dump(mode="json", by_alias=True, exclude_defaults=True, **exclude)

    return {
        "compiler_version": __version__,
        "train": data(spec.train, exclude={"schedule"}) if spec.train else None,
        "code": data(spec.code),
        "images": {"registry": spec.images.registry, "train": data(spec.images.train)},
        "data": data(spec.data),  # datasets and the contract
        "registry": data(spec.registry),
        "secrets": {name: data(ref) for name, ref in spec.secrets.items()},
        "volumes": {name: data(volume) for name, volume in spec.volumes.items()},
        "gated": spec.evaluate is not None,  # the pod's gate container (its gates are in the runtime config)
        "train_image": train_image,
        # The gate pins what it promotes in the serving Deployment: the pod has a service account.
        # Only when true, so a Job of a spec without a canary keeps its name.
        **({"pins_serving": True} if is_canary(spec.serve) and spec.evaluate is not None else {}),
    }


def _resources(cpu: str, memory: str, gpus: int, gpu_type: str | None) -> Resources:
    """A container's resources, with the node labels of its GPU type (none when it has no GPU)."""
    products = tuple(gpu_node_labels(gpu_type)) if gpus and gpu_type else ()
    return Resources(cpu=cpu, memory=memory, gpus=gpus, gpu_products=products)


def _replica_owner(serve: Serve) -> ReplicaOwner:
    return {"queue_depth": "keda", "cpu": "hpa", "none": "manifest"}[serve.autoscale.on]  # type: ignore[return-value]


def _access(serve: Serve, namespace: str) -> ServingAccess | None:
    access = serve.access
    if access is None:
        return None
    callers = None
    if access.callers is not None:
        callers = tuple(
            CallerPeers(caller.namespace or namespace, tuple(sorted((caller.pods or {}).items())))
            for caller in access.callers
        )
    rate_limit = None
    if access.rate_limit is not None:
        per_second = access.rate_limit.requests_per_second
        rate_limit = (per_second, access.rate_limit.burst or max(1, math.ceil(per_second)))
    return ServingAccess(
        callers=callers,
        monitoring_namespace=access.monitoring_namespace,
        metrics_port=access.metrics_port,
        api_keys_secret=access.api_keys.k8s if access.api_keys else None,
        rate_limit=rate_limit,
        audit=access.audit,
        trusted_proxies=tuple(access.trusted_proxies),
    )


def _limits(serve: Serve) -> ServeLimits | None:
    limits = serve.limits
    if limits is None:
        return None
    return ServeLimits(
        max_body_bytes=limits.max_body_bytes,
        max_rows=limits.max_rows,
        max_columns=limits.max_columns,
        max_depth=limits.max_depth,
        header_timeout_seconds=duration_seconds(limits.header_timeout),
        body_timeout_seconds=duration_seconds(limits.body_timeout),
    )


def _runs_on(runner: Literal["hosted"] | SelfHostedRunner) -> str | tuple[str, ...]:
    """A workflow job's `runs-on`: GitHub's hosted runner, or your runners' labels."""
    return HOSTED_RUNNER if runner == "hosted" else ("self-hosted", *runner.self_hosted)


def is_canary(serve: Serve | None) -> bool:
    """Whether serving rolls out through a canary (engine runtime only): new model versions too,
    pinned in the serving pods' template by the training pod's promotion."""
    return serve is not None and serve.engine == "runtime" and serve.rollout.strategy == "canary"


def _serving(serve: Serve, namespace: str) -> Serving:
    tensor_parallel = 0
    if serve.llm is not None:
        tensor_parallel = serve.llm.tensor_parallel or max(serve.resources.gpus, 1)
    resources = serve.resources
    return Serving(
        engine=serve.engine,
        port=serve.port,
        resources=_resources(resources.cpu, resources.memory, resources.gpus, resources.gpu_type),
        canary=is_canary(serve),
        replica_owner=_replica_owner(serve),
        autoscale_target=serve.autoscale.target or DEFAULT_AUTOSCALE_TARGET[serve.autoscale.on],
        tensor_parallel=tensor_parallel,
        access=_access(serve, namespace),
        limits=_limits(serve),
        engine_image=_engine_image(serve),
    )


def _engine_image(serve: Serve) -> str | None:
    """The image of an engine mlc does not build (vLLM's): the spec's, else the pinned default."""
    if serve.engine != "vllm":
        return None
    given = serve.llm.image if serve.llm is not None else None
    return given or serving_images().vllm.reference


def _data_volumes(spec: MLProject) -> tuple[DataVolume, ...]:
    """The spec's volumes as the job pods mount them: over `<image working directory>/<path>`, so
    `data/train.csv` is the claim's `train.csv` when `path` is `data/` (validate checked they
    hold every local location a cluster's job uses)."""
    found = []
    for name, volume in sorted(spec.volumes.items()):
        folder = PurePosixPath(volume.path.replace("\\", "/")).as_posix().strip("/")
        found.append(DataVolume(f"data-{name}", volume.claim, f"{IMAGE_CODE_DIR}/{folder}", volume.read_only))
    return tuple(found)


def _image_ref(repository: str | None, digest: str) -> str | None:
    """`<repository>:<12 hex>` until `mlc apply --image` pins the digest: deterministic, it
    changes whenever the image's inputs do, and recognisable, so pinning replaces exactly it."""
    return f"{repository}:{digest[:12]}" if repository is not None else None


def resolve_environment(
    project: ValidatedProject,
    environment: str | None,
    base_image_digests: Mapping[str, str] | None = None,
    repository_folder: str = ".",
    images: ProjectImages | None = None,
) -> ResolvedSpec:
    """Resolve one environment (`None`: the base, used when the spec defines no environments).

    `base_image_digests` (tag -> sha256 digest, read from `mlc.images.lock` by the caller) pins
    base images; `repository_folder` is the spec's folder relative to its git top level (POSIX,
    "." at the top), found by the caller; resolution itself reads no file. `images` are the
    project's (`resolve_project` decides them once for every environment).
    """
    digests = dict(sorted((base_image_digests or {}).items()))
    if images is None:
        images = _project_images(project, digests)
    spec = project.environments[environment] if environment is not None else project.base
    env_name = environment or (LOCAL_ENVIRONMENT if project.environments else DEFAULT_ENVIRONMENT)
    spec_digest = canonical_digest(project.document.data)
    name = spec.metadata.name
    train, serve = spec.train, spec.serve

    monitor = spec.monitor
    drift = monitor.drift if monitor is not None else None
    feedback = monitor.feedback if monitor is not None else None
    log = monitor.prediction_log if monitor is not None else None
    contract = spec.data.contract
    repositories: dict[ImageRole, str | None] = {
        "train": image_repository(spec, "train"),
        "serve": image_repository(spec, "serve"),
    }
    # Each image's tag follows what it is built from, and no more: a training parameter (read
    # from the runtime config) changes neither, so serving does not roll and the CronJobs that
    # run the training image stay as they are. The training image's reference is one of the
    # training Job's inputs: the Job (its pod template is immutable) is renamed when it changes.
    train_image_ref = _image_ref(repositories["train"], images.train.digest if images.train else "")
    training_digest = canonical_digest(training_inputs(spec, train_image_ref))
    registered_model = spec.registry.model or name

    labels = {
        **spec.metadata.labels,
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": f"{name}-{env_name}"[:63].rstrip("-"),
        "app.kubernetes.io/part-of": name,
        "app.kubernetes.io/managed-by": "mlc",
    }
    # No digest of the whole spec here: on every resource, it would change them all on any edit
    # (the spec's digest is in mlc.lock and the runtime config; each resource's version label
    # is its own digest, stamped by the kubernetes backend).
    annotations = {
        f"{ANNOTATION_PREFIX}/compiler-version": __version__,
        f"{ANNOTATION_PREFIX}/environment": env_name,
    }
    namespace = project.namespaces.get(env_name) or spec.metadata.namespace or name
    tracking_uri = spec.registry.tracking_uri or DEFAULT_TRACKING_URI
    return ResolvedSpec(
        spec=spec,
        environment=env_name,
        namespace=namespace,
        spec_digest=spec_digest,
        training_digest=training_digest,
        compiler_version=__version__,
        compiler_requirement=_mlc_install(project),
        runtime_requirement=_mlc_install(project).with_extras("runtime"),
        names=ResourceNames(
            project=name,
            training_job=f"{name}-train-{training_digest[:8]}",
            training_workers=f"{name}-train-workers",
            retraining=f"{name}-retrain",
            serving=f"{name}-serve",
            canary_analysis=f"{name}-serve-canary",
            promotion=f"{name}-promote",
            drift=f"{name}-drift",
            feedback=f"{name}-feedback",
            batch=f"{name}-batch",
            runtime_config=f"{name}-runtime-config",
            alerts=f"{name}-alerts",
            storage_container=f"{namespace}-{name}-fetch-model",
            gitops_object=f"{name}-{env_name}"[:63].rstrip("-"),
        ),
        manifests_folder=f"{spec.gitops.path.rstrip('/')}/{env_name}",
        images=images,
        train_image=repositories["train"],
        serve_image=repositories["serve"],
        train_image_ref=train_image_ref,
        serve_image_ref=_image_ref(repositories["serve"], images.serve.digest if images.serve else ""),
        train_gpu=runs_on_gpu(spec, "train"),
        serve_gpu=runs_on_gpu(spec, "serve"),
        train_resources=None
        if train is None
        else _resources(train.resources.cpu, train.resources.memory, train.resources.gpus, train.resources.gpu_type),
        serving=_serving(serve, namespace) if serve is not None else None,
        registered_model=registered_model,
        champion_uri=champion_model_uri(registered_model),
        tracking_uri=tracking_uri,
        ci_tracking_uri=tracking_uri if spec.ci_uses_tracking_server else LOCAL_TRACKING_URI,
        ci_runs_on=_runs_on(spec.ci.runner),
        ci_model_runs_on=_runs_on(spec.ci.model_check.runner or spec.ci.runner),
        pushgateway=(spec.monitor.pushgateway if spec.monitor else None) or DEFAULT_PUSHGATEWAY,
        labels=labels,
        annotations=annotations,
        retrains_on_drift=drift is not None and drift.on_drift == "retrain" and train is not None,
        drift_grouping={"project": name, "environment": env_name},
        volumes=_data_volumes(spec),
        retrains_on_degrade=feedback is not None and feedback.on_degrade == "retrain" and train is not None,
        drift_current_uri=None if drift is None else drift.current.uri or (log.uri if log else None),
        drift_reads_log=drift is not None and drift.current.uri is None and log is not None,
        feedback_label_column=None
        if feedback is None
        else feedback.labels.label_column or (contract.target if contract else None),
        requirements_hashed=project.requirements_hashed,
        runtime_wheel_sha256=project.runtime_wheel_sha256,
        runtime_index_hashes=project.runtime_index_hashes,
        base_image_digests=digests,
        repository_folder=repository_folder,
    )


def _project_images(project: ValidatedProject, digests: Mapping[str, str]) -> ProjectImages:
    """The project's images, decided once from the merged spec of every environment (in file
    order; the base alone when there are none)."""
    environments = list(project.environments.values()) or [project.base]
    return resolve_project_images(environments, digests, project.requirements_hashed, _mlc_install(project))


def _mlc_install(project: ValidatedProject) -> MlcInstall:
    """Where images and CI get mlc (`images.runtime`, project-wide: the images are the project's)."""
    runtime = project.base.images.runtime
    return resolve_mlc_install(runtime, __version__, project.runtime_wheel_sha256, project.runtime_index_hashes)


def resolve_project(
    project: ValidatedProject,
    base_image_digests: Mapping[str, str] | None = None,
    repository_folder: str = ".",
) -> list[ResolvedSpec]:
    """One `ResolvedSpec` per environment, in file order (the base alone when there are none)."""
    digests = dict(sorted((base_image_digests or {}).items()))
    images = _project_images(project, digests)
    names = list(project.environments) or [None]
    return [resolve_environment(project, name, digests, repository_folder, images) for name in names]


def resolve_local(project: ValidatedProject, environments: list[ResolvedSpec]) -> ResolvedSpec:
    """What `mlc run` runs without `--env`: the base of a spec with environments (named `local`,
    its paths as written, for this machine), else the spec's one environment. `environments`
    are the project's resolved ones (`resolve_project`), whose image facts it shares."""
    if not project.environments:
        return environments[0]
    first = environments[0]
    return resolve_environment(project, None, first.base_image_digests, first.repository_folder, first.images)
