"""Find every pod spec in a manifest, whatever workload kind wraps it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def pod_specs(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The pod specs of Job, CronJob, Deployment, JobSet, Rollout and a KServe predictor (its
    `model` is the one container; KServe builds the pod from the predictor's pod fields)."""
    kind, spec = doc.get("kind"), doc.get("spec") or {}
    if kind in ("Job", "Deployment"):
        yield spec["template"]["spec"]
    elif kind == "CronJob":
        yield spec["jobTemplate"]["spec"]["template"]["spec"]
    elif kind == "JobSet":
        for replicated in spec["replicatedJobs"]:
            yield replicated["template"]["spec"]["template"]["spec"]
    elif kind == "Rollout" and "template" in spec:
        yield spec["template"]["spec"]
    elif kind == "InferenceService":
        predictor = spec["predictor"]
        yield {**predictor, "containers": [{"name": "kserve-container", **predictor["model"]}]}
