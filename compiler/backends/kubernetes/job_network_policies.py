"""NetworkPolicies for the pods of jobs: training, retraining, drift, feedback and batch.

Serving has its own (`serving.py`, `kserve.py`: callers and monitoring). Every other pod mlc
runs is a client only, so each gets a policy that admits no ingress at all; the one exception
is multi-node training, whose pods reach each other: torchrun's c10d rendezvous on
`RENDEZVOUS_PORT` at index 0, and then Gloo and NCCL connect every pair of ranks on ports each
rank picks at random, so training pods admit training pods of the same project on every port
(and nobody else on any).

Egress is left open on purpose (the policies say `policyTypes: [Ingress]` only): the jobs read
the users' data wherever it is (object stores, databases, a model hub), by host name, which a
NetworkPolicy cannot name; a default-deny egress would break them in ways the spec cannot
foresee. SECURITY.md says what a cluster operator adds to restrict it.

The policies are derived from the workloads emitted, not from the spec again: every component
whose pods a Job, CronJob or JobSet runs gets one, selected by the pods' own labels.
"""

from __future__ import annotations

from typing import Any

from mlc.compiler.backends.kubernetes.objects import COMPONENT_LABEL, manifest, object_meta, selector_labels
from mlc.compiler.backends.kubernetes.training import COMPONENT as TRAINING_COMPONENT
from mlc.compiler.resolve.resolved import ResolvedSpec

JOB_KINDS = ("Job", "CronJob", "JobSet")


def pod_templates(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod templates a workload runs (none for other kinds)."""
    spec = resource.get("spec", {})
    kind = resource["kind"]
    if kind == "Job":
        return [spec["template"]]
    if kind == "CronJob":
        return [spec["jobTemplate"]["spec"]["template"]]
    if kind == "JobSet":
        return [job["template"]["spec"]["template"] for job in spec["replicatedJobs"]]
    return []


def _job_components(resources: list[dict[str, Any]]) -> list[str]:
    """The components whose pods the jobs among `resources` run, sorted."""
    return sorted(
        {
            template["metadata"]["labels"][COMPONENT_LABEL]
            for resource in resources
            if resource["kind"] in JOB_KINDS
            for template in pod_templates(resource)
        }
    )


def _ingress(resolved: ResolvedSpec, component: str) -> list[dict[str, Any]]:
    """Who reaches the component's pods: training pods one another when training spans nodes."""
    train = resolved.spec.train
    if component == TRAINING_COMPONENT and train is not None and train.distributed.nodes > 1:
        return [{"from": [{"podSelector": {"matchLabels": selector_labels(resolved, component)}}]}]
    return []


def _policy_name(resolved: ResolvedSpec, component: str) -> str:
    return f"{resolved.names.project}-{component}"


def emit_job_network_policies(resolved: ResolvedSpec, resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One NetworkPolicy per job component among `resources`: no ingress but what it needs."""
    policies = []
    for component in _job_components(resources):
        spec: dict[str, Any] = {
            "podSelector": {"matchLabels": selector_labels(resolved, component)},
            "policyTypes": ["Ingress"],
        }
        ingress = _ingress(resolved, component)
        if ingress:
            spec["ingress"] = ingress
        policies.append(
            manifest(
                "networking.k8s.io/v1",
                "NetworkPolicy",
                object_meta(resolved, _policy_name(resolved, component), component),
                spec=spec,
            )
        )
    return policies
