"""Start retraining on drift: create a Job from the retraining CronJob.

Equivalent to ``kubectl create job --from=cronjob/<name>``: the Job copies the CronJob's
``jobTemplate`` (labels, annotations, spec), gets the annotation
``cronjob.kubernetes.io/instantiate: manual`` and an ownerReference to the CronJob, so it is
listed and garbage-collected with it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mlc.runtime.errors import MlcRuntimeError

INSTANTIATE_ANNOTATION = "cronjob.kubernetes.io/instantiate"
_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class RetrainError(MlcRuntimeError):
    """The retraining Job could not be created."""


def job_name(cronjob_name: str, now: float | None = None) -> str:
    """`<cronjob>-drift-<unix time>`, trimmed so the name stays a valid 63-char label."""
    suffix = f"-drift-{int(time.time() if now is None else now)}"
    return cronjob_name[: 63 - len(suffix)].rstrip("-") + suffix


def job_from_cronjob(cronjob: Any, name: str) -> Any:
    """A V1Job built from a V1CronJob's jobTemplate, owned by the CronJob."""
    from kubernetes import client

    template = cronjob.spec.job_template
    template_meta = template.metadata or client.V1ObjectMeta()
    annotations = dict(template_meta.annotations or {})
    annotations[INSTANTIATE_ANNOTATION] = "manual"
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
        spec=template.spec,
    )


def create_job_from_cronjob(batch_api: Any, namespace: str, cronjob_name: str, now: float | None = None) -> Any:
    """Read the CronJob and create a manual Job from it; returns the created V1Job."""
    from kubernetes.client.exceptions import ApiException

    try:
        cronjob = batch_api.read_namespaced_cron_job(cronjob_name, namespace)
        job = job_from_cronjob(cronjob, job_name(cronjob_name, now))
        return batch_api.create_namespaced_job(namespace, job)
    except ApiException as exc:
        raise RetrainError(
            f"cannot create job from cronjob/{cronjob_name} in {namespace}: HTTP {exc.status} {exc.reason}"
        ) from exc


def start_retraining(cronjob_name: str, namespace: str | None = None) -> str:
    """Create the retraining Job with in-cluster (or kubeconfig) credentials; returns its name."""
    from kubernetes.config.config_exception import ConfigException

    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except ConfigException:
        try:
            config.load_kube_config()
        except (ConfigException, OSError) as exc:
            raise RetrainError(f"no Kubernetes credentials to start retraining: {exc}") from exc
    if namespace is None:
        namespace = _NAMESPACE_FILE.read_text().strip() if _NAMESPACE_FILE.exists() else "default"
    job = create_job_from_cronjob(client.BatchV1Api(), namespace, cronjob_name)
    return job.metadata.name
