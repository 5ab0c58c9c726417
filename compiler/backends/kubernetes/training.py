"""Training workloads: the training Job (or Indexed Job / JobSet), its headless Service, and the
retraining CronJob.

A Job's pod template is immutable, so the Job is named with the training digest
(`ResolvedSpec.names.training_job`, of what the training pod depends on, the training image's
reference included): a changed training pod is a new Job, and a serving or monitoring edit
does not retrain. One change keeps the name: `mlc apply --image` pinning a newly built
training image (new code). The Job carries the GitOps engine's recreate annotation for it, so
the sync replaces the Job (and trains the new code) instead of failing on an immutable field.

The one-off Job has no `ttlSecondsAfterFinished`: the TTL controller would delete it, the GitOps
engine would find it missing and create it again, and the model would retrain every week. Old
Jobs go when their manifest leaves git (prune). Jobs the retraining CronJob starts do expire.

Every training pod closes the loop: `train` runs as its init container and the gate after it
(`mlc-runtime gate --promote`, the same gate CI runs), which promotes the new `@challenger` to
`@champion` when it passes, against the champion it would replace. The serving pods follow
`@champion` (`mlc-runtime serve` watches the alias); with a canary rollout they serve the version
their pod template pins instead, and the gate patches that pin (the pod's service account may
patch the serving Deployment, nothing else), so a new version goes through the canary. A
failing gate is a verdict, not an outage: the Job fails at once (podFailurePolicy), without
training again; a gate that could not reach a verdict (exit 2: the registry unreachable) is
retried with the pod. The retraining CronJob's
pods, and the Jobs the drift check starts from it, are the same pods.

Multi-node training runs torchrun in every pod of an Indexed Job; the node rank is the pod's
completion index and rendezvous is on index 0's stable hostname
(`<job>-0.<headless service>`), which exists because the pods set `subdomain`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlc.compiler.backends.kubernetes.images import image_reference
from mlc.compiler.backends.kubernetes.objects import (
    manifest,
    object_meta,
    recreate_on_change,
    selector_labels,
    service_account_objects,
)
from mlc.compiler.backends.kubernetes.pod import ContainerSpec, completion_index_env, pod_spec
from mlc.compiler.resolve.resolved import ResolvedSpec, Resources
from mlc.runtime.contract import COMPLETION_INDEX_VARIABLE, CONFIG_PATH, ExitCode, duration_seconds, job_arguments

if TYPE_CHECKING:  # the verbatim section, for values copied as written
    from mlc.compiler.load.spec import Train

COMPONENT = "training"
CONTAINER = "train"
GATE_CONTAINER = "gate"
RENDEZVOUS_PORT = 29500
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
BACKOFF_LIMIT = 3
TTL_AFTER_FINISHED_SECONDS = 7 * 86400  # long enough to read logs after a weekend
JOBSET_MAX_RESTARTS = 3
JOBSET_REPLICATED_JOB = "node"
# Spot capacity is tainted by the cloud; tolerate the common taints (GKE, EKS Karpenter, AKS).
SPOT_TOLERATIONS = (
    {
        "key": "cloud.google.com/gke-spot",
        "operator": "Equal",
        "value": "true",
        "effect": "NoSchedule",
    },
    {
        "key": "karpenter.sh/capacity-type",
        "operator": "Equal",
        "value": "spot",
        "effect": "NoSchedule",
    },
    {
        "key": "kubernetes.azure.com/scalesetpriority",
        "operator": "Equal",
        "value": "spot",
        "effect": "NoSchedule",
    },
)
# The retraining CronJob exists when only a monitor (drift, live quality) starts it; it never runs on a schedule then.
SUSPENDED_SCHEDULE = "@yearly"


def _train(resolved: ResolvedSpec) -> Train:
    assert resolved.spec.train is not None  # callers check
    return resolved.spec.train


def training_command(resolved: ResolvedSpec, *, jobset: bool = False) -> list[str]:
    """The container command: `mlc-runtime train`, or torchrun over every node when nodes > 1."""
    train = _train(resolved)
    runtime_args = job_arguments("train", CONFIG_PATH)
    nodes = train.distributed.nodes
    if nodes == 1:
        return ["mlc-runtime", *runtime_args]
    if jobset:
        # JobSet hostnames: <jobset>-<replicatedJob>-<job index>-<pod index>.<subdomain>
        master = f"$(MLC_JOBSET_NAME)-{JOBSET_REPLICATED_JOB}-0-0.$(MLC_JOBSET_NAME)"
    else:
        master = f"$(MLC_JOB_NAME)-0.{resolved.names.training_workers}"
    return [
        "torchrun",
        f"--nnodes={nodes}",
        f"--nproc-per-node={max(train.resources.gpus, 1)}",
        f"--node-rank=$({COMPLETION_INDEX_VARIABLE})",
        f"--master-addr={master}",
        f"--master-port={RENDEZVOUS_PORT}",
        "-m",
        "mlc.runtime.cli",
        *runtime_args,
    ]


def _rank_env(jobset: bool) -> list[dict[str, Any]]:
    """Downward-API env the torchrun arguments expand (`$(VAR)` needs them declared)."""
    env = [
        completion_index_env(),
        {
            "name": "MLC_JOB_NAME",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}},
        },
    ]
    if jobset:
        env.append(
            {
                "name": "MLC_JOBSET_NAME",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['jobset.sigs.k8s.io/jobset-name']"}},
            }
        )
    return env


def _training_resources(resolved: ResolvedSpec) -> Resources:
    assert resolved.train_resources is not None  # resolved for every project that trains
    return resolved.train_resources


def training_container(resolved: ResolvedSpec, *, jobset: bool = False) -> ContainerSpec:
    """The training container of every training pod."""
    train = _train(resolved)
    distributed = train.distributed.nodes > 1
    return ContainerSpec(
        name=CONTAINER,
        image=image_reference(resolved, "train"),
        command=training_command(resolved, jobset=jobset),
        resources=_training_resources(resolved),
        ports=[{"name": "rendezvous", "containerPort": RENDEZVOUS_PORT, "protocol": "TCP"}] if distributed else [],
        env=_rank_env(jobset) if distributed else [],
        shared_memory=True,
        uses_data=True,
    )


def gate_container(resolved: ResolvedSpec) -> ContainerSpec:
    """The gate that runs after training in the same pod: `gate --promote` on the training image,
    with the training pod's CPU and memory (it scores the eval set) and no GPU."""
    train = _train(resolved)
    resources = _training_resources(resolved)
    command = ["mlc-runtime", *job_arguments("gate", CONFIG_PATH), "--promote"]
    env: list[dict[str, Any]] = []
    if train.distributed.nodes > 1:
        # Every pod of an Indexed Job runs it; the one whose rank 0 registered the model gates.
        command += ["--completion-index", f"$({COMPLETION_INDEX_VARIABLE})"]
        env.append(completion_index_env())
    return ContainerSpec(
        name=GATE_CONTAINER,
        image=image_reference(resolved, "train"),
        command=command,
        resources=Resources(cpu=resources.cpu, memory=resources.memory),
        env=env,
        uses_data=True,
    )


def training_pod_template(resolved: ResolvedSpec, *, jobset: bool = False) -> dict[str, Any]:
    """The pod template of a training Job (restartPolicy Never: podFailurePolicy requires it):
    training, then the gate that promotes what it trained."""
    train = _train(resolved)
    extra: dict[str, Any] = {}
    if train.distributed.nodes > 1 and not jobset:
        extra["subdomain"] = resolved.names.training_workers
    spec = pod_spec(
        resolved,
        training_container(resolved, jobset=jobset),
        restart_policy="Never",
        service_account=resolved.names.promotion if resolved.pins_serving else None,
        extra=extra,
        tolerations=SPOT_TOLERATIONS if train.spot else (),
        then=gate_container(resolved) if resolved.spec.evaluate is not None else None,
    )
    # The queue label goes on the Job, not its pods: Kueue admits Jobs (pod integration would
    # otherwise try to queue every pod on its own).
    return {"metadata": {"labels": selector_labels(resolved, COMPONENT)}, "spec": spec}


def _queue_label(train: Train) -> dict[str, str]:
    return {KUEUE_QUEUE_LABEL: train.queue} if train.queue else {}


def _fail_job_on(container: str, codes: list[int]) -> dict[str, Any]:
    return {
        "action": "FailJob",
        "onExitCodes": {"containerName": container, "operator": "In", "values": codes},
    }


def pod_failure_policy(gated: bool) -> dict[str, Any]:
    """Preemption is not a failure; a broken config fails the Job at once instead of retrying, and
    so does a gate's verdict against the model (training again would give the same model)."""
    rules = [_fail_job_on(CONTAINER, [int(ExitCode.CONFIG_ERROR)])]
    if gated:
        rules.append(_fail_job_on(GATE_CONTAINER, [int(ExitCode.FAILED), int(ExitCode.CONFIG_ERROR)]))
    rules.append({"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]})
    return {"rules": rules}


def training_job_spec(
    resolved: ResolvedSpec, *, jobset: bool = False, ttl_seconds: int | None = None
) -> dict[str, Any]:
    """The `spec` of a training Job (also the CronJob's jobTemplate and JobSet's replicated job);
    `ttl_seconds` only for Jobs that git does not hold (see the module docstring)."""
    train = _train(resolved)
    nodes = train.distributed.nodes
    spec: dict[str, Any] = {}
    if nodes > 1:
        spec.update({"completionMode": "Indexed", "completions": nodes, "parallelism": nodes})
    if jobset:
        spec["backoffLimit"] = 0  # one failed pod fails the job; the JobSet restarts the group
    else:
        spec["backoffLimit"] = BACKOFF_LIMIT * nodes if nodes > 1 else BACKOFF_LIMIT
        spec["activeDeadlineSeconds"] = duration_seconds(train.timeout)
        if ttl_seconds is not None:
            spec["ttlSecondsAfterFinished"] = ttl_seconds
    if train.spot or not jobset:
        spec["podFailurePolicy"] = pod_failure_policy(resolved.spec.evaluate is not None)
    if train.spot:
        spec["podReplacementPolicy"] = "Failed"  # no second pod while a preempted one terminates
    spec["template"] = training_pod_template(resolved, jobset=jobset)
    return spec


def _training_job_meta(resolved: ResolvedSpec, train: Train) -> dict[str, Any]:
    """The one-off Job's (or JobSet's) metadata: digest name, queue, recreate on an image pin."""
    return object_meta(
        resolved,
        resolved.names.training_job,
        COMPONENT,
        labels=_queue_label(train),
        annotations=recreate_on_change(resolved),
    )


def emit_training_job(resolved: ResolvedSpec) -> dict[str, Any]:
    """The one-off training Job of this training spec (named with the training digest)."""
    train = _train(resolved)
    return manifest(
        "batch/v1",
        "Job",
        _training_job_meta(resolved, train),
        spec=training_job_spec(resolved),
    )


def emit_training_jobset(resolved: ResolvedSpec) -> dict[str, Any]:
    """`backend: jobset`: an Indexed Job under a JobSet that restarts the whole group on failure."""
    train = _train(resolved)
    return manifest(
        "jobset.x-k8s.io/v1alpha2",
        "JobSet",
        _training_job_meta(resolved, train),
        spec={
            "failurePolicy": {"maxRestarts": JOBSET_MAX_RESTARTS},
            "network": {"enableDNSHostnames": True, "publishNotReadyAddresses": True},
            "replicatedJobs": [
                {
                    "name": JOBSET_REPLICATED_JOB,
                    "replicas": 1,
                    "template": {"spec": training_job_spec(resolved, jobset=True)},
                }
            ],
        },
    )


def emit_workers_service(resolved: ResolvedSpec) -> dict[str, Any]:
    """Headless Service: DNS for `<job>-<index>.<service>` before pods are ready (rendezvous)."""
    return manifest(
        "v1",
        "Service",
        object_meta(resolved, resolved.names.training_workers, COMPONENT),
        spec={
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": selector_labels(resolved, COMPONENT),
            "ports": [
                {
                    "name": "rendezvous",
                    "port": RENDEZVOUS_PORT,
                    "targetPort": RENDEZVOUS_PORT,
                    "protocol": "TCP",
                }
            ],
        },
    )


def emit_retraining_cronjob(resolved: ResolvedSpec) -> dict[str, Any]:
    """Periodic retraining (`train.schedule`), or a suspended template the drift or feedback job starts."""
    train = _train(resolved)
    scheduled = train.schedule is not None
    spec: dict[str, Any] = {
        "schedule": train.schedule or SUSPENDED_SCHEDULE,
        "timeZone": "Etc/UTC",
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 3600,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
    }
    if not scheduled:
        spec["suspend"] = True
    spec["jobTemplate"] = {
        "metadata": {"labels": selector_labels(resolved, COMPONENT) | _queue_label(train)},
        "spec": training_job_spec(resolved, ttl_seconds=TTL_AFTER_FINISHED_SECONDS),
    }
    return manifest(
        "batch/v1",
        "CronJob",
        object_meta(resolved, resolved.names.retraining, COMPONENT),
        spec=spec,
    )


def emit_training(resolved: ResolvedSpec) -> list[dict[str, Any]]:
    """Every training resource of one environment (none when the project does not train)."""
    train = resolved.spec.train
    if train is None:
        return []
    jobset = train.distributed.backend == "jobset" and train.distributed.nodes > 1
    resources = [emit_training_jobset(resolved) if jobset else emit_training_job(resolved)]
    if train.distributed.nodes > 1:
        # The CronJob's Indexed Jobs need it too (a JobSet makes its own).
        resources.append(emit_workers_service(resolved))
    if train.schedule is not None or resolved.monitors_retrain:
        resources.append(emit_retraining_cronjob(resolved))
    if resolved.pins_serving:
        resources.extend(emit_promotion_rbac(resolved))
    return resources


def emit_promotion_rbac(resolved: ResolvedSpec) -> list[dict[str, Any]]:
    """The training pods' service account with a canary: the gate that promotes a version pins it
    in the serving Deployment's pod template (`runtime/serving_pin.py`): patch that Deployment only."""
    return service_account_objects(
        resolved,
        resolved.names.promotion,
        COMPONENT,
        [
            {
                "apiGroups": ["apps"],
                "resources": ["deployments"],
                "resourceNames": [resolved.names.serving],
                "verbs": ["patch"],
            }
        ],
    )
