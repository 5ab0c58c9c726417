"""A canary's promotion pins the new version in the serving Deployment's pod template.

`mlc-runtime gate --promote` and `rollback` run as users run them (a subprocess, a real MLflow
sqlite registry, the real `kubernetes` client with a kubeconfig) against a stand-in for the
Kubernetes API server on 127.0.0.1 (no cluster here), which records what it is sent and answers
as the API server does (the patched Deployment, or a 403 `Status` when RBAC refuses).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import mlflow
import pytest
import yaml
from mlflow import MlflowClient

from mlc.runtime.contract import SERVED_VERSION_ANNOTATION

NAMESPACE, DEPLOYMENT = "ml-toy", "toy-serve"
DEPLOYMENT_PATH = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{DEPLOYMENT}"
GOOD = {"epochs": 40, "lr": 0.5}
EVALUATE = {
    "dataset": "eval",
    "metrics": ["accuracy"],
    "first_model": "allow",
    "gates": [{"metric": "accuracy", "min": 0.1}],
}


@dataclass
class ApiServer:
    """What the stand-in API server was sent, and whether RBAC lets the patch through."""

    url: str
    allowed: bool = True
    requests: list[dict[str, Any]] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)  # the Deployment's pod template's


def _handler(api: ApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_PATCH(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            api.requests.append(
                {
                    "path": self.path,
                    "content_type": self.headers["Content-Type"],
                    "authorization": self.headers["Authorization"],
                    "body": body,
                }
            )
            if self.path.split("?")[0] != DEPLOYMENT_PATH:
                return self._answer(404, {"kind": "Status", "code": 404, "reason": "NotFound"})
            if not api.allowed:
                return self._answer(403, {"kind": "Status", "code": 403, "reason": "Forbidden"})
            api.annotations.update(body["spec"]["template"]["metadata"]["annotations"])  # a merge patch
            labels = {"app.kubernetes.io/name": "toy"}
            template = {
                "metadata": {"labels": labels, "annotations": dict(api.annotations)},
                "spec": {"containers": [{"name": "serve", "image": "toy-serve:1"}]},
            }
            spec = {"selector": {"matchLabels": labels}, "template": template}
            self._answer(
                200, {"kind": "Deployment", "metadata": {"name": DEPLOYMENT, "namespace": NAMESPACE}, "spec": spec}
            )

        def _answer(self, status: int, document: dict[str, Any]) -> None:
            data = json.dumps({"apiVersion": "apps/v1", **document}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def api_server(tmp_path: Path) -> Iterator[tuple[ApiServer, dict[str, str]]]:
    """The stand-in API server and the environment whose kubeconfig points at it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), None)  # type: ignore[arg-type]
    api = ApiServer(url=f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "local", "cluster": {"server": api.url}}],
                "users": [{"name": "promoter", "user": {"token": "promote-token"}}],
                "contexts": [{"name": "local", "context": {"cluster": "local", "user": "promoter"}}],
                "current-context": "local",
            }
        )
    )
    yield api, {"KUBECONFIG": str(kubeconfig)}
    server.shutdown()
    server.server_close()


def _aliases(root: Path) -> dict[str, str]:
    mlflow.set_tracking_uri(f"sqlite:///{root}/.mlc/mlflow.db")
    return {alias: str(version) for alias, version in MlflowClient().get_registered_model("toy-model").aliases.items()}


def test_promotion_pins_the_new_version_in_the_serving_deployment(toy, run_runtime, api_server, tmp_path) -> None:
    root, toy_config = toy
    api, environ = api_server
    config = str(toy_config(evaluate=EVALUATE, params=GOOD))
    following = json.loads(Path(config).read_text()) | {"namespace": NAMESPACE}

    def with_canary(canary: bool) -> None:
        pinned = {"serve": {"pinned_deployment": DEPLOYMENT}} if canary else {}
        Path(config).write_text(json.dumps(following | pinned))

    def train() -> None:
        done = run_runtime("train", "--config", config, cwd=root)
        assert done.returncode == 0, done.stderr

    # Without a canary the servers follow the alias: promotion moves it and pins nothing.
    with_canary(False)
    train()  # version 1
    promoted = run_runtime("gate", "--config", config, "--promote", cwd=root, env=environ)
    assert promoted.returncode == 0, promoted.stderr
    assert _aliases(root)["champion"] == "1" and api.requests == []

    # With one, no credentials: said in one line (the Job's retry completes it, below).
    with_canary(True)
    missing = run_runtime("gate", "--config", config, "--promote", cwd=root, env={"KUBECONFIG": str(tmp_path / "none")})
    assert missing.returncode == 2
    assert f"cannot pin version 1 in deployment/{DEPLOYMENT}: no Kubernetes credentials" in missing.stderr
    assert "Traceback" not in missing.stderr

    first = run_runtime("gate", "--config", config, "--promote", cwd=root, env=environ)
    assert first.returncode == 0, first.stderr
    assert "version 1 is already @champion; nothing to promote" in first.stdout
    assert f"deployment/{DEPLOYMENT} ({NAMESPACE}) now serves version 1" in first.stdout
    (request,) = api.requests
    assert request["path"] == f"{DEPLOYMENT_PATH}?fieldManager=mlc-promote"
    assert request["content_type"] == "application/merge-patch+json"
    assert request["authorization"] == "Bearer promote-token"
    # Only the pod template's annotation: everything GitOps wrote stays as it is.
    assert request["body"] == {"spec": {"template": {"metadata": {"annotations": {SERVED_VERSION_ANNOTATION: "1"}}}}}

    # RBAC refuses the patch: the alias has moved, the error says so and the Deployment keeps version 1.
    train()  # version 2
    api.allowed = False
    refused = run_runtime("gate", "--config", config, "--promote", cwd=root, env=environ)
    assert refused.returncode == 2
    assert "promoted toy-model version 2 to @champion; version 1 is now @previous, but cannot pin version 2" in (
        refused.stderr
    )
    assert "HTTP 403" in refused.stderr and "needs `patch`" in refused.stderr
    assert _aliases(root)["champion"] == "2" and api.annotations == {SERVED_VERSION_ANNOTATION: "1"}

    # The Job's retry completes it: the version is already champion, and is pinned now.
    api.allowed = True
    retried = run_runtime("gate", "--config", config, "--promote", cwd=root, env=environ)
    assert retried.returncode == 0, retried.stderr
    assert api.annotations == {SERVED_VERSION_ANNOTATION: "2"}

    # Rollback pins the previous version: the rollout canaries it like any version.
    back = run_runtime("rollback", "--config", config, cwd=root, env=environ)
    assert back.returncode == 0, back.stderr
    assert _aliases(root)["champion"] == "1" and api.annotations == {SERVED_VERSION_ANNOTATION: "1"}
