"""The compiled churn project run as a system: its manifests, its pods' commands run here, and
what Prometheus holds. Shared by the system tests that start real Prometheus and Pushgateway."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import yaml
from real_services import prometheus_api
from served_project import RUNTIME_CLI, get, runtime_env


def documents(root: Path, folder: str) -> dict[str, dict[str, Any]]:
    """`kind/name` -> the compiled manifest, for the files of one environment folder."""
    found = {}
    for path in sorted((root / folder).glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and "metadata" in doc:
                found[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return found


def substitute(command: list[str], replacements: dict[str, str]) -> list[str]:
    """The compiled command with placement values swapped for local ones: `--option` -> new value."""
    local = list(command)
    for option, value in replacements.items():
        local[local.index(option) + 1] = value
    return local


def runtime(project: Path, command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A pod's `mlc-runtime ...` command, run in the project's folder."""
    assert command[0] == "mlc-runtime"
    return subprocess.run(
        [*RUNTIME_CLI, *command[1:]], cwd=project, env=runtime_env(**env), capture_output=True, text=True, timeout=600
    )


def query(url: str, expression: str) -> list[dict[str, Any]]:
    return prometheus_api(url, "/api/v1/query", query=expression)["result"]


def alerts(url: str) -> dict[str, str]:
    """alertname -> state (pending or firing) of the alerts Prometheus holds now."""
    return {alert["labels"]["alertname"]: alert["state"] for alert in prometheus_api(url, "/api/v1/alerts")["alerts"]}


def became(check: Any, timeout: float) -> bool:
    """Whether `check()` turned true within `timeout` seconds (polled)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def server_ready(server: str) -> bool:
    """Whether the model server at `server` answers /ready with 200."""
    try:
        return get(f"{server}/ready", timeout=2)[0] == 200
    except OSError:
        return False


def downward_env(container: dict[str, Any], annotations: dict[str, str]) -> dict[str, str]:
    """The variables the kubelet fills from the pod's annotations (downward API `fieldRef`s), as
    it does: an annotation the pod does not have gives an empty value."""
    found = {}
    for variable in container.get("env", []):
        path = variable.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath", "")
        if path.startswith("metadata.annotations['"):
            found[variable["name"]] = annotations.get(
                path.removeprefix("metadata.annotations['").removesuffix("']"), ""
            )
    return found
