"""A registry model's files over MLflow's REST API, without importing MLflow.

A server's start waits for its model, and importing MLflow alone takes seconds (its package
imports most of itself): on a scale-up that is most of the time to ready. The registry half of a
start is three kinds of plain HTTP requests, from MLflow's documented REST API:

- `GET /api/2.0/mlflow/registered-models/alias` (or `model-versions/get`): the version;
- `GET /api/2.0/mlflow/model-versions/get-download-uri`: where its files are;
- `GET /api/2.0/mlflow-artifacts/artifacts` (list, then one GET per file): the files, when the
  tracking server proxies artifacts (`mlflow-artifacts:/...`, what `mlflow server` records by
  default); a local folder (a path or `file://`) is copied.

This path is taken only where it means exactly what MLflow's client would do: an http(s)
tracking server, credentials from `MLFLOW_TRACKING_USERNAME`/`PASSWORD` or `MLFLOW_TRACKING_TOKEN`,
no other auth, TLS or workspace setting. Anything else, and any failure at all (an unknown alias,
a refused connection, an unexpected answer), returns None before a file is kept: the caller then
asks MLflow, which gives its own answer and its own error messages.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import shutil
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

_LOG = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10.0  # per request; a failure falls back to MLflow (its own retries and bounds)
ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"

# Settings the REST path does not implement: with any of them set, MLflow's client is used.
MLFLOW_ONLY_SETTINGS = (
    "MLFLOW_TRACKING_AUTH",
    "MLFLOW_TRACKING_AWS_SIGV4",
    "MLFLOW_TRACKING_INSECURE_TLS",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH",
    "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "MLFLOW_WORKSPACE",
    "MLFLOW_ENABLE_WORKSPACES",
)


class NotHandled(Exception):
    """This registry or answer is for MLflow's client."""


@dataclass(frozen=True)
class RegistryVersion:
    """One model version as the registry reports it."""

    model: str
    version: str
    alias: str
    run_id: str


def applies(tracking_uri: str, environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Whether the REST path means the same as MLflow's client for this tracking URI and settings."""
    if urllib.parse.urlsplit(tracking_uri).scheme not in ("http", "https"):
        return False
    if any(environ.get(name) for name in MLFLOW_ONLY_SETTINGS):
        return False
    # MLflow also reads credentials from ~/.mlflow/credentials; environment variables only here.
    return not (Path.home() / ".mlflow" / "credentials").exists()


def fetch_version(name: str, alias: str, version: str, tracking_uri: str, staging: Path) -> RegistryVersion | None:
    """Resolve `alias` (or take `version`) and download that version's files into `staging`; None
    when MLflow's client must do it (see the module's docstring). `staging` is left empty then."""
    if not applies(tracking_uri):
        return None
    client = RestClient(tracking_uri.rstrip("/"))
    try:
        if alias:
            answer = client.get_json("/api/2.0/mlflow/registered-models/alias", {"name": name, "alias": alias})
        else:
            answer = client.get_json("/api/2.0/mlflow/model-versions/get", {"name": name, "version": version})
        found = answer["model_version"]
        resolved = RegistryVersion(name, str(found["version"]), alias, found.get("run_id") or "")
        location = client.get_json(
            "/api/2.0/mlflow/model-versions/get-download-uri", {"name": name, "version": resolved.version}
        )["artifact_uri"]
        download(client, location, staging)
        if mlflow_writes_registered_model_meta():
            write_registered_model_meta(staging, resolved)
    except (NotHandled, OSError, KeyError, TypeError, ValueError) as error:
        # urllib's errors are OSErrors; a malformed answer is a KeyError, TypeError or ValueError.
        _LOG.debug(
            "the registry's REST API did not serve %s (%s: %s); asking MLflow", name, type(error).__name__, error
        )
        _empty(staging)
        return None
    return resolved


class RestClient:
    """GET requests to one tracking server with MLflow's environment credentials."""

    def __init__(self, base_url: str, environ: dict[str, str] | os._Environ[str] = os.environ) -> None:
        self.base_url = base_url
        self.tls = tls_context(environ) if base_url.startswith("https:") else None
        self.headers = {"User-Agent": "mlc-runtime"}
        if environ.get("MLFLOW_TRACKING_TOKEN"):
            self.headers["Authorization"] = f"Bearer {environ['MLFLOW_TRACKING_TOKEN']}"
        elif environ.get("MLFLOW_TRACKING_USERNAME") and environ.get("MLFLOW_TRACKING_PASSWORD"):
            pair = f"{environ['MLFLOW_TRACKING_USERNAME']}:{environ['MLFLOW_TRACKING_PASSWORD']}"
            self.headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()

    def _open(self, path: str, query: dict[str, str] | None = None) -> http.client.HTTPResponse:
        url = self.base_url + urllib.parse.quote(path) + ("?" + urllib.parse.urlencode(query) if query else "")
        request = urllib.request.Request(url, headers=self.headers)
        return urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS, context=self.tls)

    def get_json(self, path: str, query: dict[str, str]) -> dict:
        with self._open(path, query) as response:
            return json.loads(response.read())

    def get_file(self, path: str, target: Path) -> None:
        with self._open(path) as response, target.open("wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)


def mlflow_writes_registered_model_meta() -> bool:
    """Whether the installed MLflow client writes `registered_model_meta` into a registry download:
    up to 3.17 it did, 3.18 stopped (nothing ever read it). Asked of the installed distribution's
    version, not of MLflow itself, which this module exists not to import."""
    from importlib.metadata import PackageNotFoundError, version

    for distribution in ("mlflow-skinny", "mlflow"):
        try:
            release = version(distribution)
        except PackageNotFoundError:
            continue
        numbers = [int(part) for part in release.split(".")[:2] if part.isdigit()]
        return len(numbers) == 2 and (numbers[0], numbers[1]) < (3, 18)
    return False


def write_registered_model_meta(folder: Path, version: RegistryVersion) -> None:
    """The `registered_model_meta` file MLflow's client up to 3.17 writes into every registry
    download (which version this is), in its format: the same folder whichever client fetched it."""
    import yaml

    meta = {"model_name": version.model, "model_version": version.version}
    text = yaml.safe_dump(meta, default_flow_style=False, allow_unicode=True, sort_keys=True)
    (folder / "registered_model_meta").write_text(text, encoding="utf-8")


def tls_context(environ: dict[str, str] | os._Environ[str]) -> ssl.SSLContext:
    """The certificate authorities MLflow's client (requests) trusts: `REQUESTS_CA_BUNDLE`, then
    `CURL_CA_BUNDLE`, then certifi's bundle."""
    bundle = environ.get("REQUESTS_CA_BUNDLE") or environ.get("CURL_CA_BUNDLE")
    if not bundle:
        import certifi  # requests' own dependency: wherever MLflow's client is, so is certifi

        bundle = certifi.where()
    return ssl.create_default_context(cafile=bundle)


def download(client: RestClient, location: str, staging: Path) -> None:
    """Copy the model files at `location` (a download URI) into `staging`."""
    parts = urllib.parse.urlsplit(location)
    if parts.scheme == "mlflow-artifacts" and not parts.netloc:
        _download_proxied(client, parts.path.strip("/"), staging)
    elif parts.scheme in ("", "file") and not parts.netloc and Path(parts.path).is_dir():
        shutil.copytree(parts.path, staging, dirs_exist_ok=True)
    else:  # s3://, gs://, another server's artifacts...: MLflow's artifact repositories
        raise NotHandled(location)


def _download_proxied(client: RestClient, root: str, staging: Path) -> None:
    pending = [""]
    while pending:
        folder = pending.pop()
        listing = client.get_json(ARTIFACTS_API, {"path": "/".join(filter(None, (root, folder)))})
        for entry in listing.get("files", []):
            relative = _safe_relative(folder, entry["path"])
            if entry.get("is_dir"):
                (staging / relative).mkdir(parents=True, exist_ok=True)
                pending.append(relative)
            else:
                (staging / relative).parent.mkdir(parents=True, exist_ok=True)
                client.get_file(f"{ARTIFACTS_API}/{root}/{relative}", staging / relative)


def _safe_relative(folder: str, name: str) -> str:
    """`folder/name`, refused (NotHandled) if the server's name would leave the model's folder."""
    path = PurePosixPath(folder, name)
    if path.is_absolute() or ".." in path.parts or not name:
        raise NotHandled(f"unsafe artifact path {name!r}")
    return path.as_posix()


def _empty(staging: Path) -> None:
    for entry in staging.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
