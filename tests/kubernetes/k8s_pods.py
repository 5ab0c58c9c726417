"""Find every pod in a manifest, whatever workload kind wraps it: its labels and its spec."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def pod_templates(doc: dict[str, Any]) -> Iterator[tuple[dict[str, str], dict[str, Any]]]:
    """(pod labels, pod spec) of Job, CronJob, Deployment, JobSet, Rollout and a KServe predictor
    (its `model` is the one container; KServe builds the pod from the predictor's pod fields)."""
    kind, spec = doc.get("kind"), doc.get("spec") or {}
    if kind in ("Job", "Deployment") or (kind == "Rollout" and "template" in spec):
        template = spec["template"]
    elif kind == "CronJob":
        template = spec["jobTemplate"]["spec"]["template"]
    elif kind == "JobSet":
        for replicated in spec["replicatedJobs"]:
            template = replicated["template"]["spec"]["template"]
            yield template.get("metadata", {}).get("labels", {}), template["spec"]
        return
    elif kind == "InferenceService":
        predictor = spec["predictor"]
        yield (
            predictor.get("labels", {}),
            {**predictor, "containers": [{"name": "kserve-container", **predictor["model"]}]},
        )
        return
    else:
        return
    yield template.get("metadata", {}).get("labels", {}), template["spec"]


def pod_specs(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The pod specs of a manifest (`pod_templates` without the labels)."""
    for _, spec in pod_templates(doc):
        yield spec
