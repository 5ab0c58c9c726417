"""Scheduled batch inference: a CronJob whose Job is Indexed, one shard of the input per index.

Each pod runs `mlc-runtime batch --shard $(JOB_COMPLETION_INDEX) --shards N` and scores the
input files whose position in the sorted listing is its index modulo N, so shards never overlap
and a retried index redoes only its own files.
"""

from __future__ import annotations

from typing import Any

from mlc.compiler.backends.kubernetes.images import image_reference
from mlc.compiler.backends.kubernetes.objects import manifest, object_meta, selector_labels
from mlc.compiler.backends.kubernetes.pod import (
    ContainerSpec,
    completion_index_env,
    pod_spec,
)
from mlc.compiler.resolve.resolved import ResolvedSpec
from mlc.runtime.contract import COMPLETION_INDEX_VARIABLE, CONFIG_PATH, job_arguments

COMPONENT = "batch"
BATCH_DEADLINE_SECONDS = 6 * 3600
BACKOFF_PER_INDEX = 2


def emit_batch_cronjob(resolved: ResolvedSpec) -> dict[str, Any]:
    """The batch-inference CronJob of `serve.batch`."""
    serve, serving = resolved.spec.serve, resolved.serving
    assert serve is not None and serve.batch is not None and serving is not None
    batch = serve.batch
    container = ContainerSpec(
        name="batch",
        image=image_reference(resolved, "serve"),
        command=[
            "mlc-runtime",
            *job_arguments("batch", CONFIG_PATH),
            "--shard",
            f"$({COMPLETION_INDEX_VARIABLE})",
            "--shards",
            str(batch.parallelism),
        ],
        resources=serving.resources,
        env=[completion_index_env()],
        uses_data=True,
    )
    labels = selector_labels(resolved, COMPONENT)
    return manifest(
        "batch/v1",
        "CronJob",
        object_meta(resolved, resolved.names.batch, COMPONENT),
        spec={
            "schedule": batch.schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 1,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": {
                    "completionMode": "Indexed",
                    "completions": batch.parallelism,
                    "parallelism": batch.parallelism,
                    "backoffLimitPerIndex": BACKOFF_PER_INDEX,
                    "activeDeadlineSeconds": BATCH_DEADLINE_SECONDS,
                    "ttlSecondsAfterFinished": 86400,
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": pod_spec(resolved, container, restart_policy="Never"),
                    },
                },
            },
        },
    )


def emit_batch(resolved: ResolvedSpec) -> list[dict[str, Any]]:
    """The batch-inference CronJob (none without `serve.batch`)."""
    serve, serving = resolved.spec.serve, resolved.serving
    if serve is None or serve.batch is None or serving is None or serving.engine != "runtime":
        return []
    return [emit_batch_cronjob(resolved)]
