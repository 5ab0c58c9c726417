"""`mlc images lock` against a real registry (Debian `docker-registry`) on 127.0.0.1.

Two registries: an open one, and one with distribution's token auth whose realm is a token server
in this process (`registry_token_server`), so the client's 401 -> token -> retry path runs for real.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlc.compiler.cli import main
from mlc.compiler.cli.registry_digests import (
    RegistryError,
    parse_reference,
    resolve_digest,
)
from mlc.compiler.load.images_lock import read_images_lock
from registry_token_server import OPENSSL, TokenServer, TokenSigner

REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"
CHURN = Path(__file__).resolve().parents[1] / "examples" / "churn"
TOKEN_SERVICE = "mlc-test-registry"
TOKEN_ISSUER = "mlc-test-token-issuer"
REGISTRY_START_SECONDS = 15


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_serving(address: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until `GET /v2/` answers at all (200 open, 401 with auth); fail early if the registry exits."""
    deadline = time.monotonic() + REGISTRY_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"docker-registry exited ({process.returncode}):\n{log.read_text(errors='replace')[-2000:]}")
        try:
            urllib.request.urlopen(f"http://{address}/v2/", timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # an HTTP answer, even 401: the registry is serving
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"docker-registry not serving on {address} after {REGISTRY_START_SECONDS}s")


@contextmanager
def _serve_registry(root: Path, extra_config: str = "") -> Iterator[str]:
    """A `docker-registry serve` on a free port of 127.0.0.1, stopped on exit; its address."""
    if not Path(REGISTRY).exists():
        pytest.skip("docker-registry not installed (Debian package docker-registry)")
    address = f"127.0.0.1:{_free_port()}"
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}}}\n"
        f"http: {{addr: '{address}'}}\n" + extra_config,
        encoding="utf-8",
    )
    log = root / "registry.log"
    with open(log, "wb") as log_file:
        process = subprocess.Popen([REGISTRY, "serve", str(config)], stdout=log_file, stderr=subprocess.STDOUT)
    try:
        _wait_until_serving(address, process, log)
        yield address
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An open registry (no auth): its `host:port`."""
    with _serve_registry(tmp_path_factory.mktemp("registry")) as address:
        yield address


@dataclass(frozen=True)
class TokenRegistry:
    """A registry with token auth and the token server its challenge names."""

    address: str
    tokens: TokenServer
    log: Path

    def push_token(self, repository: str) -> str:
        """What a logged-in pusher would get: push + pull on `repository`, minted directly."""
        access = [{"type": "repository", "name": repository, "actions": ["push", "pull"]}]
        return self.tokens.signer.mint(TOKEN_SERVICE, access, subject="test-pusher")


@pytest.fixture(scope="module")
def _token_registry_for_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenRegistry]:
    if OPENSSL is None:
        pytest.skip("openssl not installed (signs the registry tokens)")
    root = tmp_path_factory.mktemp("token-registry")
    signer = TokenSigner.create(root / "trusted", TOKEN_ISSUER)
    # Same issuer name, different key: only the signature chain makes the registry refuse it.
    untrusted = TokenSigner.create(root / "untrusted", TOKEN_ISSUER)
    tokens = TokenServer(signer, untrusted, TOKEN_SERVICE)
    tokens.start()
    try:
        auth = (
            f"auth: {{token: {{realm: '{tokens.realm}', service: {TOKEN_SERVICE},"
            f" issuer: {TOKEN_ISSUER}, rootcertbundle: '{signer.cert_pem}'}}}}\n"
        )
        with _serve_registry(root, auth) as address:
            yield TokenRegistry(address, tokens, root / "registry.log")
    finally:
        tokens.stop()


@pytest.fixture
def token_registry(_token_registry_for_module: TokenRegistry) -> TokenRegistry:
    """The token registry, its token server's query log emptied for this test."""
    _token_registry_for_module.tokens.queries.clear()
    return _token_registry_for_module


def _request(method: str, url: str, body: bytes = b"", content_type: str = "", token: str = "") -> dict[str, str]:
    headers = {"Content-Type": content_type} if content_type else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body or None, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(response.headers)


def _push_blob(address: str, name: str, blob: bytes, token: str = "") -> str:
    digest = f"sha256:{hashlib.sha256(blob).hexdigest()}"
    location = _request("POST", f"http://{address}/v2/{name}/blobs/uploads/", token=token)["Location"]
    if location.startswith("/"):
        location = f"http://{address}{location}"
    separator = "&" if "?" in location else "?"
    _request("PUT", f"{location}{separator}digest={digest}", blob, "application/octet-stream", token)
    return digest


def _push_image(address: str, name: str, tag: str, token: str = "") -> str:
    """Push a minimal OCI image (config + one layer + manifest) over the HTTP API; its digest."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    layer = b"layer of " + tag.encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _push_blob(address, name, config, token),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": _push_blob(address, name, layer, token),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    _request(
        "PUT",
        f"http://{address}/v2/{name}/manifests/{tag}",
        manifest,
        "application/vnd.oci.image.manifest.v1+json",
        token,
    )
    return f"sha256:{hashlib.sha256(manifest).hexdigest()}"


def test_parse_reference_expands_docker_hub_names() -> None:
    hub = parse_reference("python:3.11-slim-bookworm")
    assert (hub.registry, hub.repository, hub.tag) == (
        "registry-1.docker.io",
        "library/python",
        "3.11-slim-bookworm",
    )
    ghcr = parse_reference("ghcr.io/astral-sh/uv:0.8.22")
    assert (ghcr.registry, ghcr.repository, ghcr.tag, ghcr.base_url) == (
        "ghcr.io",
        "astral-sh/uv",
        "0.8.22",
        "https://ghcr.io",
    )
    local = parse_reference("127.0.0.1:5000/library/python:3.11")
    assert local.base_url == "http://127.0.0.1:5000"
    assert parse_reference("[::1]:5000/library/python:3.11").base_url == "http://[::1]:5000"
    assert parse_reference("localhost/python:3.11").base_url == "http://localhost"


def test_resolves_a_pushed_tag_to_its_manifest_digest(registry: str) -> None:
    digest = _push_image(registry, "library/python", "3.11-slim")
    assert resolve_digest(f"{registry}/library/python:3.11-slim") == digest


def test_unknown_tag_is_an_error_naming_the_image(registry: str) -> None:
    with pytest.raises(RegistryError, match=r"library/python:nope: HTTP 404 .*no such image or tag"):
        resolve_digest(f"{registry}/library/python:nope")


def test_token_registry_refuses_an_anonymous_pull(token_registry: TokenRegistry) -> None:
    # The premise of the token tests: without a token the registry answers 401 with the challenge.
    url = f"http://{token_registry.address}/v2/library/python/manifests/3.11-slim"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code == 401
    assert refused.value.headers["WWW-Authenticate"] == (
        f'Bearer realm="{token_registry.tokens.realm}",service="{TOKEN_SERVICE}",scope="repository:library/python:pull"'
    )


def test_resolves_through_the_token_flow(token_registry: TokenRegistry) -> None:
    address = token_registry.address
    digest = _push_image(address, "library/python", "3.11-slim", token_registry.push_token("library/python"))
    token_registry.tokens.queries.clear()  # the push minted its token directly; count only the client

    assert resolve_digest(f"{address}/library/python:3.11-slim") == digest
    assert token_registry.tokens.queries == [{"service": [TOKEN_SERVICE], "scope": ["repository:library/python:pull"]}]


def test_unknown_tag_behind_the_token_flow_is_a_404(token_registry: TokenRegistry) -> None:
    with pytest.raises(RegistryError, match=r"library/python:nope: HTTP 404 .*no such image or tag"):
        resolve_digest(f"{token_registry.address}/library/python:nope")
    assert len(token_registry.tokens.queries) == 1


def test_token_service_failure_is_an_error_naming_the_image(token_registry: TokenRegistry) -> None:
    reference = f"{token_registry.address}/library/python:3.11-slim"
    with token_registry.tokens.answering("http-500"), pytest.raises(RegistryError) as error:
        resolve_digest(reference)
    message = str(error.value)
    assert message.startswith(f"{reference}: ")
    assert f"token service {token_registry.tokens.realm} answered HTTP 500" in message


def test_token_the_registry_rejects_is_an_error_naming_the_image(token_registry: TokenRegistry) -> None:
    reference = f"{token_registry.address}/library/python:3.11-slim"
    with token_registry.tokens.answering("untrusted-signature"), pytest.raises(RegistryError) as error:
        resolve_digest(reference)
    message = str(error.value)
    assert message.startswith(f"{reference}: ")
    assert "HTTP 401" in message
    assert f"rejected the token from {token_registry.tokens.realm}" in message
    assert "(invalid_token)" in message  # the registry's reason, from its second challenge
    # ... and it refused the token for the signature chain, not for a claim we got wrong.
    assert "unable to verify certificate chain" in token_registry.log.read_text(errors="replace")


def test_cli_writes_the_lock_beside_the_spec(token_registry: TokenRegistry, tmp_path: Path) -> None:
    # A CPU project whose bases are overridden to the token registry's image: `mlc images lock`
    # goes through the anonymous token flow end to end.
    address = token_registry.address
    digest = _push_image(address, "base/python", "3.11", token_registry.push_token("base/python"))
    token_registry.tokens.queries.clear()
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(CHURN / "requirements.lock", root / "requirements.lock")
    shutil.copytree(CHURN / "src", root / "src")
    (root / "mlproject.yaml").write_text(
        "apiVersion: mlc/v1\nkind: MLProject\nmetadata: {name: demo}\n"
        f"images: {{registry: ghcr.io/acme, serve: {{base: '{address}/base/python:3.11'}},"
        f" train: {{base: '{address}/base/python:3.11'}}}}\n"
        "data: {train: {uri: s3://b/train.csv}}\ntrain: {entrypoint: 'churn.model:train'}\n"
        "serve: {engine: runtime}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["images", "lock", "-f", str(root / "mlproject.yaml")])
    assert result.exit_code == 0, result.output
    assert read_images_lock(root / "mlc.images.lock") == {f"{address}/base/python:3.11": digest}
    assert f"{address}/base/python:3.11@{digest}" in result.output
    assert token_registry.tokens.queries == [{"service": [TOKEN_SERVICE], "scope": ["repository:base/python:pull"]}]


def test_cli_reports_a_token_service_failure(token_registry: TokenRegistry, tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(CHURN / "requirements.lock", root / "requirements.lock")
    shutil.copytree(CHURN / "src", root / "src")
    image = f"{token_registry.address}/base/python:3.11"
    (root / "mlproject.yaml").write_text(
        "apiVersion: mlc/v1\nkind: MLProject\nmetadata: {name: demo}\n"
        f"images: {{registry: ghcr.io/acme, serve: {{base: '{image}'}}, train: {{base: '{image}'}}}}\n"
        "data: {train: {uri: s3://b/train.csv}}\ntrain: {entrypoint: 'churn.model:train'}\n"
        "serve: {engine: runtime}\n",
        encoding="utf-8",
    )
    with token_registry.tokens.answering("http-500"):
        result = CliRunner().invoke(main, ["images", "lock", "-f", str(root / "mlproject.yaml")])
    assert result.exit_code != 0
    assert f"error: {image}: the token service" in result.output
    assert not (root / "mlc.images.lock").exists()
