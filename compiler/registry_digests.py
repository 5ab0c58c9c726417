"""`mlc images lock`: resolve image tags to digests through the registry HTTP API.

The OCI distribution API, standard library only: `GET /v2/<name>/manifests/<tag>` with the
manifest media types accepted; on `401` with a `Bearer` challenge, the anonymous token flow
(`GET <realm>?service=...&scope=repository:<name>:pull`) and one retry. The digest is the
registry's `Docker-Content-Digest` header, or the sha256 of the manifest bytes it returned.

Results go to `mlc.images.lock` (JSON) next to the spec; `resolve` never reads it (it is pure),
the CLI hands the digests to the Docker backend.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "ImageReference",
    "RegistryError",
    "parse_reference",
    "resolve_digest",
    "resolve_digests",
]

DOCKER_HUB = "registry-1.docker.io"
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_TIMEOUT_SECONDS = 30


class RegistryError(Exception):
    """A tag could not be resolved; the message names the image and the likely cause."""


@dataclass(frozen=True)
class ImageReference:
    """`registry/repository:tag`, split; Docker Hub names expanded (`python`: `library/python`)."""

    registry: str
    repository: str
    tag: str

    @property
    def base_url(self) -> str:
        """Plain HTTP only for a registry on this machine, as docker itself allows."""
        host = self.registry.rsplit(":", 1)[0] if not self.registry.startswith("[") else self.registry
        scheme = "http" if host in _LOCAL_HOSTS else "https"
        return f"{scheme}://{self.registry}"


def parse_reference(reference: str) -> ImageReference:
    """Split an image reference with a tag (a reference already pinned by digest is an error)."""
    if "@" in reference:
        raise RegistryError(f"{reference}: already pinned by digest")
    first, _, rest = reference.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = DOCKER_HUB, reference
    name, _, tag = path.rpartition(":") if ":" in path else (path, "", "latest")
    if registry == DOCKER_HUB and "/" not in name:
        name = f"library/{name}"
    return ImageReference(registry, name, tag)


def _get(url: str, headers: Mapping[str, str]) -> tuple[bytes, Mapping[str, str]]:
    request = urllib.request.Request(url, headers=dict(headers))
    with urllib.request.urlopen(request, timeout=_TIMEOUT_SECONDS) as response:
        return response.read(), response.headers


def _anonymous_token(challenge: str, image: ImageReference) -> str:
    """The anonymous token flow: ask the challenge's realm for a pull token."""
    scheme, _, params_text = challenge.partition(" ")
    if scheme.lower() != "bearer":
        raise RegistryError(f"{image.registry}/{image.repository}: needs {scheme} auth; anonymous pull refused")
    params = dict(_CHALLENGE_PARAM.findall(params_text))
    query = {"scope": params.get("scope", f"repository:{image.repository}:pull")}
    if "service" in params:
        query["service"] = params["service"]
    body, _ = _get(f"{params['realm']}?{urllib.parse.urlencode(query)}", {})
    answer = json.loads(body)
    token = answer.get("token") or answer.get("access_token")
    if not token:
        raise RegistryError(f"{image.registry}: the token service answered without a token")
    return str(token)


def resolve_digest(reference: str) -> str:
    """`sha256:...` of the manifest (or multi-platform index) the tag points at now."""
    image = parse_reference(reference)
    url = f"{image.base_url}/v2/{image.repository}/manifests/{image.tag}"
    headers = {"Accept": MANIFEST_TYPES}
    try:
        try:
            body, response_headers = _get(url, headers)
        except urllib.error.HTTPError as error:
            challenge = error.headers.get("WWW-Authenticate", "")
            if error.code != 401 or not challenge:
                raise
            headers["Authorization"] = f"Bearer {_anonymous_token(challenge, image)}"
            body, response_headers = _get(url, headers)
    except urllib.error.HTTPError as error:
        hint = "no such image or tag" if error.code == 404 else error.reason
        raise RegistryError(f"{reference}: HTTP {error.code} from {image.registry} ({hint})") from error
    except (urllib.error.URLError, OSError) as error:
        raise RegistryError(f"{reference}: cannot reach {image.registry} ({error})") from error
    digest = response_headers.get("Docker-Content-Digest")
    return digest or f"sha256:{hashlib.sha256(body).hexdigest()}"


def resolve_digests(references: Iterable[str]) -> dict[str, str]:
    """Digest of every reference not already pinned, in the order given."""
    return {ref: resolve_digest(ref) for ref in dict.fromkeys(references) if "@" not in ref}
