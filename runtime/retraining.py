"""Start retraining from a monitor (drift, or degraded live quality): a Job from the retraining CronJob.

Equivalent to ``kubectl create job --from=cronjob/<name>``: the Job copies the CronJob's
``jobTemplate`` (labels, annotations, spec), gets the annotation
``cronjob.kubernetes.io/instantiate: manual`` and an ownerReference to the CronJob, so it is
listed and garbage-collected with it. Both monitors start this one path, and say why: every
container of the Job gets `MLC_RETRAIN_TRIGGER` (drift | feedback) and `MLC_RETRAIN_TRIGGER_RUN`
(the triggering check's MLflow run), which training records as tags of its run and of the new
model version (`trigger_tags`), and the Job is annotated with both.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from typing import Any

from mlc.runtime.contract import RETRAIN_TRIGGER_RUN_VARIABLE, RETRAIN_TRIGGER_VARIABLE
from mlc.runtime.errors import MlcRuntimeError

INSTANTIATE_ANNOTATION = "cronjob.kubernetes.io/instantiate"
TRIGGER_ANNOTATION = "mlc.dev/retrain-trigger"
TRIGGER_RUN_ANNOTATION = "mlc.dev/retrain-trigger-run"
# MLflow tags of a retrained run and model version: what started it.
TRIGGER_TAG = "mlc.retrain.trigger"
TRIGGER_RUN_TAG = "mlc.retrain.trigger_run_id"


class RetrainError(MlcRuntimeError):
    """The retraining Job could not be created."""


def job_name(cronjob_name: str, now: float | None = None, trigger: str = "drift") -> str:
    """`<cronjob>-<trigger>-<unix time>`, trimmed so the name stays a valid 63-char label."""
    suffix = f"-{trigger}-{int(time.time() if now is None else now)}"
    return cronjob_name[: 63 - len(suffix)].rstrip("-") + suffix


def trigger_tags(environ: Mapping[str, str]) -> dict[str, str]:
    """The MLflow tags recording what started this training (none for a scheduled or manual one)."""
    trigger = environ.get(RETRAIN_TRIGGER_VARIABLE)
    if not trigger:
        return {}
    tags = {TRIGGER_TAG: trigger}
    if environ.get(RETRAIN_TRIGGER_RUN_VARIABLE):
        tags[TRIGGER_RUN_TAG] = environ[RETRAIN_TRIGGER_RUN_VARIABLE]
    return tags


def _with_trigger(spec: Any, trigger: str, run_id: str | None) -> Any:
    """A copy of the Job spec whose containers carry the trigger's variables."""
    from kubernetes import client

    spec = copy.deepcopy(spec)
    variables = [client.V1EnvVar(name=RETRAIN_TRIGGER_VARIABLE, value=trigger)]
    if run_id:
        variables.append(client.V1EnvVar(name=RETRAIN_TRIGGER_RUN_VARIABLE, value=run_id))
    names = {variable.name for variable in variables}
    for container in spec.template.spec.containers or []:
        container.env = [v for v in (container.env or []) if v.name not in names] + variables
    return spec


def job_from_cronjob(cronjob: Any, name: str, trigger: str = "drift", run_id: str | None = None) -> Any:
    """A V1Job built from a V1CronJob's jobTemplate, owned by the CronJob, carrying its trigger."""
    from kubernetes import client

    template = cronjob.spec.job_template
    template_meta = template.metadata or client.V1ObjectMeta()
    annotations = dict(template_meta.annotations or {})
    annotations[INSTANTIATE_ANNOTATION] = "manual"
    annotations[TRIGGER_ANNOTATION] = trigger
    if run_id:
        annotations[TRIGGER_RUN_ANNOTATION] = run_id
    owner = client.V1OwnerReference(
        api_version="batch/v1",
        kind="CronJob",
        name=cronjob.metadata.name,
        uid=cronjob.metadata.uid,
        controller=True,
        block_owner_deletion=True,
    )
    return client.V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=client.V1ObjectMeta(
            name=name,
            namespace=cronjob.metadata.namespace,
            labels=dict(template_meta.labels or {}) or None,
            annotations=annotations,
            owner_references=[owner],
        ),
        spec=_with_trigger(template.spec, trigger, run_id),
    )


def create_job_from_cronjob(
    batch_api: Any,
    namespace: str,
    cronjob_name: str,
    now: float | None = None,
    trigger: str = "drift",
    run_id: str | None = None,
) -> Any:
    """Read the CronJob and create a manual Job from it; returns the created V1Job."""
    from kubernetes.client.exceptions import ApiException

    try:
        cronjob = batch_api.read_namespaced_cron_job(cronjob_name, namespace)
        job = job_from_cronjob(cronjob, job_name(cronjob_name, now, trigger), trigger, run_id)
        return batch_api.create_namespaced_job(namespace, job)
    except ApiException as exc:
        raise RetrainError(
            f"cannot create job from cronjob/{cronjob_name} in {namespace}: HTTP {exc.status} {exc.reason}"
        ) from exc


def start_retraining(
    cronjob_name: str, namespace: str | None = None, trigger: str = "drift", run_id: str | None = None
) -> str:
    """Create the retraining Job with in-cluster (or kubeconfig) credentials; returns its name."""
    from kubernetes import client
    from mlc.runtime.kubernetes_access import NoCredentials, api_client, current_namespace

    try:
        batch_api = client.BatchV1Api(api_client())
    except NoCredentials as error:
        raise RetrainError(f"cannot start retraining: {error}") from error
    job = create_job_from_cronjob(
        batch_api, namespace or current_namespace(), cronjob_name, trigger=trigger, run_id=run_id
    )
    return job.metadata.name
