"""Every pod mlc runs is isolated for ingress; who reaches whom, read from the compiled policies.

`network_reach.may_connect` evaluates the NetworkPolicies of a rendered case (the API's rules,
not the compiler's code) for the case's own pods and for strangers: a pod of the same namespace
with other labels, and a pod of another namespace.
"""

from __future__ import annotations

from typing import Any

import pytest

from k8s_pods import pod_templates
from network_reach import Pod, isolated_for_egress, isolated_for_ingress, may_connect

COMPONENT = "app.kubernetes.io/component"
RENDEZVOUS_PORT = 29500
SOME_GLOO_PORT = 41234  # a port a Gloo/NCCL rank picks at random


def _environment_docs(case, env: str) -> list[dict[str, Any]]:
    return [doc for path, doc in case.resources() if f"/{env}/" in path]


def _pods(docs: list[dict[str, Any]]) -> list[Pod]:
    return [
        Pod(f"{doc['kind']}/{doc['metadata']['name']}", doc["metadata"]["namespace"], labels)
        for doc in docs
        for labels, _ in pod_templates(doc)
    ]


def _policies(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == "NetworkPolicy"]


def _by_component(pods: list[Pod]) -> dict[str, Pod]:
    return {pod.labels[COMPONENT]: pod for pod in pods}


def _strangers(namespace: str) -> list[Pod]:
    return [Pod("stranger", namespace, {"app": "other"}), Pod("elsewhere", "web", {"app": "checkout"})]


@pytest.mark.parametrize("name", ["churn", "llm-chat", "access", "multi-node", "jobset", "kserve", "k8s-small"])
def test_every_pod_is_isolated_for_ingress_and_free_for_egress(rendered, name) -> None:
    case = rendered[name]
    environments = {path.split("/")[-2] for path, _ in case.resources() if path.count("/") >= 2}
    assert environments
    for env in environments:
        docs = _environment_docs(case, env)
        policies = _policies(docs)
        for pod in _pods(docs):
            assert isolated_for_ingress(policies, pod), f"{name}/{env}: {pod.name} admits anyone"
            assert not isolated_for_egress(policies, pod), f"{name}/{env}: {pod.name} has its egress restricted"


def test_job_pods_admit_no_one(rendered) -> None:
    seen = set()
    for name in ("churn", "access"):  # together: training, drift, feedback and batch pods
        docs = _environment_docs(rendered[name], "production")
        policies, pods = _policies(docs), _pods(docs)
        for target in pods:
            component = target.labels[COMPONENT]
            if component == "serving":
                continue
            seen.add(component)
            for source in [*pods, *_strangers(target.namespace)]:
                for port in (RENDEZVOUS_PORT, 8080, SOME_GLOO_PORT):
                    assert not may_connect(policies, source, target, port), (name, source.name, component, port)
    assert seen == {"training", "drift", "feedback", "batch"}


@pytest.mark.parametrize("name", ["multi-node", "jobset"])
def test_training_pods_reach_one_another_on_every_port_and_no_one_else_does(rendered, name) -> None:
    docs = _environment_docs(rendered[name], "default")
    policies, pods = _policies(docs), _pods(docs)
    training = [pod for pod in pods if pod.labels[COMPONENT] == "training"]
    assert training
    rank = training[0]
    # Another rank of the same Job (or of the retraining CronJob's): the same labels.
    peer = Pod("rank-1", rank.namespace, dict(rank.labels))
    for port in (RENDEZVOUS_PORT, SOME_GLOO_PORT):
        assert may_connect(policies, peer, rank, port)
    others = [pod for pod in pods if pod.labels[COMPONENT] != "training"]
    for source in [*others, *_strangers(rank.namespace)]:
        assert not may_connect(policies, source, rank, RENDEZVOUS_PORT), source.name


def test_single_node_training_admits_no_one(rendered) -> None:
    docs = _environment_docs(rendered["k8s-small"], "default")
    policies = _policies(docs)
    (training,) = [pod for pod in _pods(docs) if pod.labels[COMPONENT] == "training"]
    peer = Pod("rank-1", training.namespace, dict(training.labels))
    assert not may_connect(policies, peer, training, RENDEZVOUS_PORT)


def test_serving_admits_callers_on_its_port_and_monitoring_on_the_metrics_port(rendered) -> None:
    docs = _environment_docs(rendered["access"], "production")
    policies = _policies(docs)
    serving = _by_component(_pods(docs))["serving"]
    checkout = Pod("checkout", "web", {"app": "checkout"})
    prometheus = Pod("prometheus", "monitoring", {"app": "prometheus"})
    stranger = Pod("stranger", serving.namespace, {"app": "other"})
    assert may_connect(policies, checkout, serving, 8080)
    assert not may_connect(policies, checkout, serving, 9090)
    assert may_connect(policies, prometheus, serving, 9090)
    assert not may_connect(policies, prometheus, serving, 8080)
    assert not may_connect(policies, stranger, serving, 8080)
    training = _by_component(_pods(docs))["training"]
    assert not may_connect(policies, training, serving, 8080)  # not a named caller
