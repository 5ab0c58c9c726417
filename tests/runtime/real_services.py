"""Real services the system tests start on 127.0.0.1 and always stop: Prometheus, the Pushgateway,
PostgreSQL and an MLflow tracking server (optionally with its basic-auth app).

Each starts on a free port under a temporary folder, is waited for with a bounded timeout, and is
stopped (SIGTERM, then SIGKILL) when its context ends. A missing binary skips the test, naming
the Debian package CI installs (`.ci/run`).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from served_project import free_port

POSTGRES_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


def binary(name: str, package: str) -> str:
    """The path of `name`, or skip the test naming the Debian package that has it."""
    found = shutil.which(name) or next((str(p / name) for p in POSTGRES_BIN if (p / name).is_file()), None)
    if found is None:
        pytest.skip(f"{name} is not installed (Debian package {package}; .ci/run installs it)")
    return found


def _answers(url: str, headers: dict[str, str] | None = None) -> bool:
    try:
        request = urllib.request.Request(url, headers=headers or {})
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.HTTPError):
        return False


def wait_for(check: Any, timeout: float, what: str, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll `check()` until it is true; fail naming `what` (and the process's exit, if it died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: the process exited with {process.returncode}")
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process (its group, for servers that fork workers), SIGKILL after 5 s: test servers
    hold nothing worth a longer grace period."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.contextmanager
def started(command: list[str], log: Path, ready_url: str, timeout: float, **popen: Any) -> Iterator[str]:
    """Run `command` in its own process group until `ready_url` answers 200; stop it on exit."""
    with log.open("ab") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True, **popen)
    try:
        wait_for(lambda: _answers(ready_url), timeout, f"{command[0]} ({log})", process)
        yield ready_url
    finally:
        stop(process)


@contextlib.contextmanager
def pushgateway(folder: Path) -> Iterator[str]:
    """A Pushgateway on a free port; its URL."""
    executable = binary("prometheus-pushgateway", "prometheus-pushgateway")
    port = free_port()
    command = [
        executable,
        f"--web.listen-address=127.0.0.1:{port}",
        f"--persistence.file={folder / 'pushgateway.data'}",
    ]
    with started(command, folder / "pushgateway.log", f"http://127.0.0.1:{port}/-/ready", 30):
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def prometheus(folder: Path, config: dict[str, Any]) -> Iterator[str]:
    """Prometheus with `config` (written as prometheus.yml in `folder`, rule files relative to it); its URL."""
    import yaml

    executable = binary("prometheus", "prometheus")
    port = free_port()
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    command = [
        executable,
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with started(command, folder / "prometheus.log", f"http://127.0.0.1:{port}/-/ready", 60, cwd=folder):
        yield f"http://127.0.0.1:{port}"


def prometheus_api(url: str, path: str, **params: str) -> Any:
    """`data` of a Prometheus HTTP API answer (`/api/v1/query`, `/api/v1/series`, ...)."""
    query = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"{url}{path}?{query}", timeout=10) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]


# --- PostgreSQL ------------------------------------------------------------------------------


def _postgres_user() -> dict[str, Any]:
    """initdb refuses to run as root: as root (CI), run the server as the `postgres` user."""
    if os.geteuid() != 0:
        return {}
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root without a `postgres` user to run PostgreSQL as (Debian package postgresql)")
    return {"user": "postgres", "group": "postgres"}


@contextlib.contextmanager
def postgresql() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free 127.0.0.1 port; the SQLAlchemy URI of its `mlflow` database.

    It lives in its own temporary folder under /tmp, not pytest's (private to root, where the
    `postgres` user could not reach its data directory).
    """
    initdb, pg_ctl = binary("initdb", "postgresql"), binary("pg_ctl", "postgresql")
    createdb = binary("createdb", "postgresql")
    as_user = _postgres_user()
    with tempfile.TemporaryDirectory(prefix="mlc-postgres-") as name:
        folder = Path(name)
        data, sockets, password_file = folder / "data", folder / "sockets", folder / "password"
        sockets.mkdir()
        password = secrets.token_hex(8)
        password_file.write_text(password)
        if as_user:
            for path in (folder, sockets, password_file):
                shutil.chown(path, as_user["user"], as_user["group"])
        run: dict[str, Any] = {"check": True, "capture_output": True, "timeout": 120, **as_user}
        auth = ["-A", "scram-sha-256", "-U", "mlc", f"--pwfile={password_file}"]
        subprocess.run([initdb, "-D", str(data), *auth, "-E", "UTF8", "--no-sync"], **run)
        port = free_port()
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off"
        log = folder / "postgres.log"
        subprocess.run([pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"], **run)
        try:
            environ = {**os.environ, "PGPASSWORD": password}
            subprocess.run([createdb, "-h", "127.0.0.1", "-p", str(port), "-U", "mlc", "mlflow"], env=environ, **run)
            # The driver named: psycopg 3 whatever SQLAlchemy's default for postgresql:// is.
            yield f"postgresql+psycopg://mlc:{password}@127.0.0.1:{port}/mlflow"
        finally:
            subprocess.run([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], **{**run, "check": False})


# --- MLflow ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackingServer:
    """An `mlflow server` started by a test; `credentials` are (user, password) when basic auth is on."""

    url: str
    backend: str
    credentials: tuple[str, str] | None

    def environment(self) -> dict[str, str]:
        """The variables a pod gets (from Secrets) to reach this server."""
        environ = {"MLFLOW_TRACKING_URI": self.url}
        if self.credentials:
            environ |= {
                "MLFLOW_TRACKING_USERNAME": self.credentials[0],
                "MLFLOW_TRACKING_PASSWORD": self.credentials[1],
            }
        return environ


def _auth_request(url: str, path: str, admin: tuple[str, str], body: dict[str, Any]) -> None:
    import base64

    token = base64.b64encode(f"{admin[0]}:{admin[1]}".encode()).decode()
    request = urllib.request.Request(
        f"{url}{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


@contextlib.contextmanager
def mlflow_server(folder: Path, backend_uri: str, basic_auth: bool) -> Iterator[TrackingServer]:
    """`mlflow server` on a free port with `backend_uri`, artifacts proxied into `folder`; with `basic_auth`,
    MLflow's basic-auth app, an admin, and a `mlc-runtime` user (the one the runtime's Secret holds)."""
    folder.mkdir(parents=True, exist_ok=True)
    folder = folder.resolve()  # the server runs in it: every path it is given must be absolute
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    mlflow = str(Path(sys.executable).parent / "mlflow")
    command = [
        mlflow,
        "server",
        "--backend-store-uri",
        backend_uri,
        "--artifacts-destination",
        str(folder / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    admin = ("admin", secrets.token_hex(12))
    if basic_auth:
        config = folder / "basic_auth.ini"
        config.write_text(
            "[mlflow]\n"
            "default_permission = READ\n"
            f"database_uri = sqlite:///{folder / 'basic_auth.db'}\n"
            f"admin_username = {admin[0]}\n"
            f"admin_password = {admin[1]}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            # Each request's password check is a PBKDF2 hash (slow by design): cache good ones for a minute.
            "auth_cache_ttl_seconds = 60\n"
        )
        command += ["--app-name", "basic-auth"]
        environ["MLFLOW_AUTH_CONFIG_PATH"] = str(config)
        environ["MLFLOW_FLASK_SERVER_SECRET_KEY"] = secrets.token_hex(16)  # the auth app's CSRF protection
    with started(command, folder / "mlflow.log", f"{url}/health", 120, env=environ, cwd=folder):
        credentials = None
        if basic_auth:
            credentials = ("mlc-runtime", secrets.token_hex(12))
            _auth_request(
                url,
                "/api/2.0/mlflow/users/create",
                admin,
                {"username": credentials[0], "password": credentials[1]},
            )
        yield TrackingServer(url, backend_uri.split(":", 1)[0], credentials)
