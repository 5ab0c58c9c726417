"""What the Prometheus Operator makes of a ServiceMonitor, for a Prometheus without Kubernetes.

In a cluster, Prometheus discovers endpoints (`kubernetes_sd_configs`, role endpoints), and the
Operator turns each ServiceMonitor endpoint into a scrape job whose relabeling keeps the Services
its selector matches and the port it names, then adds the labels queries rely on: `namespace`,
`service`, `pod`, `container`, `endpoint`, `job` (the Service's name) and one label per
`podTargetLabels` entry. `honorLabels` keeps the scraped `job` and grouping labels (the
Pushgateway's). Here the same relabel rules run on static targets that carry the `__meta_*`
labels Kubernetes discovery would give them, so the compiled ServiceMonitor decides what the
series are called, exactly as in a cluster (rules as in the Operator's generated configuration).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


def sanitize(name: str) -> str:
    """A Kubernetes label name as a Prometheus label name (`app.kubernetes.io/name` -> `app_kubernetes_io_name`)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


@dataclass(frozen=True)
class Endpoint:
    """One address behind a Service, as endpoints discovery sees it: the Service and the pod it reaches."""

    address: str  # host:port where the pod's server listens (127.0.0.1:<free port> here)
    namespace: str
    service: str
    service_labels: dict[str, str]
    port_name: str
    pod: str
    container: str
    pod_labels: dict[str, str] = field(default_factory=dict)

    def meta_labels(self) -> dict[str, str]:
        """The `__meta_kubernetes_*` labels of this target."""
        labels = {
            "__meta_kubernetes_namespace": self.namespace,
            "__meta_kubernetes_service_name": self.service,
            "__meta_kubernetes_endpoint_port_name": self.port_name,
            "__meta_kubernetes_endpoint_address_target_kind": "Pod",
            "__meta_kubernetes_endpoint_address_target_name": self.pod,
            "__meta_kubernetes_pod_name": self.pod,
            "__meta_kubernetes_pod_container_name": self.container,
            "__meta_kubernetes_pod_phase": "Running",
        }
        for key, value in self.service_labels.items():
            labels[f"__meta_kubernetes_service_label_{sanitize(key)}"] = value
            labels[f"__meta_kubernetes_service_labelpresent_{sanitize(key)}"] = "true"
        for key, value in self.pod_labels.items():
            labels[f"__meta_kubernetes_pod_label_{sanitize(key)}"] = value
            labels[f"__meta_kubernetes_pod_labelpresent_{sanitize(key)}"] = "true"
        return labels


def _relabelings(monitor: dict[str, Any], endpoint: dict[str, Any]) -> list[dict[str, Any]]:
    spec = monitor["spec"]
    rules: list[dict[str, Any]] = []
    for key, value in sorted(spec["selector"].get("matchLabels", {}).items()):
        rules.append(
            {
                "action": "keep",
                "source_labels": [
                    f"__meta_kubernetes_service_label_{sanitize(key)}",
                    f"__meta_kubernetes_service_labelpresent_{sanitize(key)}",
                ],
                "regex": f"({value});true",
            }
        )
    rules.append(
        {"action": "keep", "source_labels": ["__meta_kubernetes_endpoint_port_name"], "regex": endpoint["port"]}
    )
    for kind, label in (("Node", "node"), ("Pod", "pod")):
        rules.append(
            {
                "source_labels": [
                    "__meta_kubernetes_endpoint_address_target_kind",
                    "__meta_kubernetes_endpoint_address_target_name",
                ],
                "separator": ";",
                "regex": f"{kind};(.*)",
                "replacement": "${1}",
                "target_label": label,
            }
        )
    rules += [
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)"},
    ]
    for label in spec.get("podTargetLabels", []):
        rules.append(
            {
                "source_labels": [f"__meta_kubernetes_pod_label_{sanitize(label)}"],
                "target_label": sanitize(label),
                "regex": "(.+)",
                "replacement": "${1}",
            }
        )
    job_label = spec.get("jobLabel")
    job_source = (
        f"__meta_kubernetes_service_label_{sanitize(job_label)}" if job_label else "__meta_kubernetes_service_name"
    )
    rules.append({"source_labels": [job_source], "target_label": "job", "replacement": "${1}"})
    rules.append({"target_label": "endpoint", "replacement": endpoint["port"]})
    return rules


def pushgateway_endpoint(gateway_url: str) -> Endpoint:
    """The Pushgateway at `gateway_url` as the chart `prometheus-community/prometheus-pushgateway`
    exposes it: the Service the compiled ServiceMonitors select."""
    return Endpoint(
        address=gateway_url.removeprefix("http://"),
        namespace="monitoring",
        service="prometheus-pushgateway",
        service_labels={"app.kubernetes.io/name": "prometheus-pushgateway"},
        port_name="http",
        pod="prometheus-pushgateway-5f7d8c9b4-k2x7p",
        container="pushgateway",
    )


def scrape_configs(monitor: dict[str, Any], endpoints: list[Endpoint], interval: str) -> list[dict[str, Any]]:
    """The Operator's scrape jobs for `monitor` (one per endpoint), over the given endpoints.

    The endpoints stand for what discovery would list in the namespaces the monitor watches
    (`namespaceSelector.matchNames`, else its own namespace): the others are left out here as
    discovery would not see them. `interval` replaces the endpoint's (tests scrape every second).
    """
    namespace = monitor["metadata"]["namespace"]
    watched = set(monitor["spec"].get("namespaceSelector", {}).get("matchNames", [namespace]))
    targets = [
        {"targets": [endpoint.address], "labels": endpoint.meta_labels()}
        for endpoint in endpoints
        if endpoint.namespace in watched
    ]
    jobs = []
    for index, endpoint in enumerate(monitor["spec"]["endpoints"]):
        job = {
            "job_name": f"serviceMonitor/{namespace}/{monitor['metadata']['name']}/{index}",
            "honor_labels": bool(endpoint.get("honorLabels", False)),
            "scrape_interval": interval,
            "metrics_path": endpoint.get("path", "/metrics"),
            "static_configs": targets,
            "relabel_configs": _relabelings(monitor, endpoint),
        }
        jobs.append(job)
    return jobs
