"""Which pod may open a TCP connection to which port of which pod, under the compiled NetworkPolicies.

A reading of the `networking.k8s.io/v1` rules, for the subset mlc emits (matchLabels selectors,
namespaces by their `kubernetes.io/metadata.name` label, numeric TCP ports), written from the
API reference rather than from the compiler's code: a pod is isolated for ingress when a policy
of its namespace selects it and lists `Ingress`; an isolated pod admits a connection only when
one of those policies has a rule whose `from` (absent: anyone) has a peer matching the source
and whose `ports` (absent: every port) has the port. Egress is never restricted by mlc's
policies (none lists `Egress`), which `isolated_for_egress` checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NAMESPACE_NAME = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {NAMESPACE_NAME: self.namespace}


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, f"selector form not read here: {selector}"
    return selector.get("matchLabels", {}).items() <= labels.items()


def _selected(policy: dict[str, Any], pod: Pod) -> bool:
    return policy["metadata"]["namespace"] == pod.namespace and _matches(policy["spec"]["podSelector"], pod.labels)


def _peer_matches(peer: dict[str, Any], policy_namespace: str, source: Pod) -> bool:
    assert set(peer) <= {"podSelector", "namespaceSelector"}, f"peer form not read here: {peer}"
    if "namespaceSelector" in peer:
        if not _matches(peer["namespaceSelector"], source.namespace_labels):
            return False
    elif source.namespace != policy_namespace:  # a podSelector alone: the policy's namespace
        return False
    return "podSelector" not in peer or _matches(peer["podSelector"], source.labels)


def _port_matches(ports: list[dict[str, Any]] | None, port: int) -> bool:
    if ports is None:
        return True
    return any(entry["port"] == port and entry.get("protocol", "TCP") == "TCP" for entry in ports)


def may_connect(policies: list[dict[str, Any]], source: Pod, target: Pod, port: int) -> bool:
    """Whether `source` may open a TCP connection to `target` on `port`."""
    isolating = [p for p in policies if _selected(p, target) and "Ingress" in p["spec"].get("policyTypes", ["Ingress"])]
    if not isolating:
        return True
    for policy in isolating:
        for rule in policy["spec"].get("ingress", []):
            peers = rule.get("from")
            namespace = policy["metadata"]["namespace"]
            if (peers is None or any(_peer_matches(peer, namespace, source) for peer in peers)) and _port_matches(
                rule.get("ports"), port
            ):
                return True
    return False


def isolated_for_ingress(policies: list[dict[str, Any]], pod: Pod) -> bool:
    return any(_selected(p, pod) and "Ingress" in p["spec"].get("policyTypes", ["Ingress"]) for p in policies)


def isolated_for_egress(policies: list[dict[str, Any]], pod: Pod) -> bool:
    return any(_selected(p, pod) and "Egress" in p["spec"].get("policyTypes", []) for p in policies)
