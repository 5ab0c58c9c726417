"""How the runtime reaches the Kubernetes API: in-cluster credentials (the pod's service account
token), else the kubeconfig (a laptop), and the namespace the pod runs in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlc.runtime.errors import MlcRuntimeError

NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class NoCredentials(MlcRuntimeError):
    """Neither in-cluster credentials nor a kubeconfig."""


def api_client() -> Any:
    """A `kubernetes.client.ApiClient` with in-cluster (or kubeconfig) credentials, or NoCredentials."""
    from kubernetes.config.config_exception import ConfigException

    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except ConfigException:
        try:
            config.load_kube_config()
        except (ConfigException, OSError) as error:
            raise NoCredentials(f"no Kubernetes credentials (not in a pod, no kubeconfig): {error}") from None
    return client.ApiClient()


def current_namespace(default: str = "default") -> str:
    """The namespace of the pod this runs in (its service account's), else `default`."""
    return NAMESPACE_FILE.read_text().strip() if NAMESPACE_FILE.exists() else default
