"""`mlc images lock` against a real registry (Debian `docker-registry`) on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlc.compiler.cli import main
from mlc.compiler.images_lock import read_images_lock
from mlc.compiler.registry_digests import (
    RegistryError,
    parse_reference,
    resolve_digest,
)

REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"
CHURN = Path(__file__).resolve().parents[1] / "examples" / "churn"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not Path(REGISTRY).exists():
        pytest.skip("docker-registry not installed (Debian package docker-registry)")
    root = tmp_path_factory.mktemp("registry")
    port = _free_port()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [REGISTRY, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    address = f"127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://{address}/v2/", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("docker-registry did not start")
        yield address
    finally:
        process.terminate()
        process.wait(timeout=10)


def _request(method: str, url: str, body: bytes = b"", content_type: str = "") -> dict[str, str]:
    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(url, data=body or None, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(response.headers)


def _push_blob(address: str, name: str, blob: bytes) -> str:
    digest = f"sha256:{hashlib.sha256(blob).hexdigest()}"
    location = _request("POST", f"http://{address}/v2/{name}/blobs/uploads/")["Location"]
    if location.startswith("/"):
        location = f"http://{address}{location}"
    separator = "&" if "?" in location else "?"
    _request("PUT", f"{location}{separator}digest={digest}", blob, "application/octet-stream")
    return digest


def _push_image(address: str, name: str, tag: str) -> str:
    """Push a minimal OCI image (config + one layer + manifest) over the HTTP API; its digest."""
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    ).encode()
    layer = b"layer of " + tag.encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _push_blob(address, name, config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": _push_blob(address, name, layer),
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


def test_resolves_a_pushed_tag_to_its_manifest_digest(registry: str) -> None:
    digest = _push_image(registry, "library/python", "3.11-slim")
    assert resolve_digest(f"{registry}/library/python:3.11-slim") == digest


def test_unknown_tag_is_an_error_naming_the_image(registry: str) -> None:
    with pytest.raises(
        RegistryError, match=r"library/python:nope: HTTP 404 .*no such image or tag"
    ):
        resolve_digest(f"{registry}/library/python:nope")


def test_cli_writes_the_lock_beside_the_spec(registry: str, tmp_path: Path) -> None:
    # A CPU project whose bases are overridden to the local registry's image.
    digest = _push_image(registry, "base/python", "3.11")
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(CHURN / "requirements.lock", root / "requirements.lock")
    shutil.copytree(CHURN / "src", root / "src")
    (root / "mlproject.yaml").write_text(
        "apiVersion: mlc/v1\nkind: MLProject\nmetadata: {name: demo}\n"
        f"images: {{registry: ghcr.io/acme, serve: {{base: '{registry}/base/python:3.11'}},"
        f" train: {{base: '{registry}/base/python:3.11'}}}}\n"
        "data: {train: {uri: s3://b/train.csv}}\ntrain: {entrypoint: 'churn.model:train'}\n"
        "serve: {engine: runtime}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["images", "lock", "-f", str(root / "mlproject.yaml")])
    assert result.exit_code == 0, result.output
    assert read_images_lock(root / "mlc.images.lock") == {f"{registry}/base/python:3.11": digest}
    assert f"{registry}/base/python:3.11@{digest}" in result.output
