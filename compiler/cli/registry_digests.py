"""`mlc images lock`: resolve image tags to digests through the registry HTTP API.

The OCI distribution API, standard library only: `GET /v2/<name>/manifests/<tag>` with the
manifest media types accepted; on `401` with a `Bearer` challenge, the anonymous token flow
(`GET <realm>?service=...&scope=repository:<name>:pull`) and one retry. The digest is the
registry's `Docker-Content-Digest` header, or the sha256 of the manifest bytes it returned.
Errors name the image and whom to blame: the registry, the token service (its realm), or the
registry refusing the token it asked for (with the reason from its new challenge).

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

from mlc.compiler.errors import MlcError

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


class RegistryError(MlcError):
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
        if self.registry.startswith("["):  # IPv6 literal, `[::1]:5000`: the host ends at `]`
            host = self.registry[: self.registry.index("]") + 1]
        else:
            host = self.registry.rsplit(":", 1)[0]
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


def _challenge_params(challenge: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="...",service="..."` -> (`Bearer`, {realm: ..., service: ...})."""
    scheme, _, params_text = challenge.partition(" ")
    return scheme, dict(_CHALLENGE_PARAM.findall(params_text))


def _anonymous_token(challenge: str, image: ImageReference, reference: str) -> tuple[str, str]:
    """The anonymous token flow: ask the challenge's realm for a pull token; (token, realm).

    Failures here are the token service's, not the registry's: the message names the realm.
    """
    scheme, params = _challenge_params(challenge)
    if scheme.lower() != "bearer":
        raise RegistryError(f"{reference}: {image.registry} needs {scheme} auth; anonymous pull refused")
    realm = params.get("realm")
    if not realm:
        raise RegistryError(f"{reference}: {image.registry} sent a Bearer challenge without a realm ({challenge})")
    query = {"service": params["service"]} if "service" in params else {}
    query["scope"] = params.get("scope", f"repository:{image.repository}:pull")
    separator = "&" if "?" in realm else "?"  # a realm may carry its own query
    try:
        body, _ = _get(f"{realm}{separator}{urllib.parse.urlencode(query)}", {})
        answer = json.loads(body)
    except urllib.error.HTTPError as error:
        raise RegistryError(
            f"{reference}: the token service {realm} answered HTTP {error.code} ({error.reason})"
        ) from error
    except (urllib.error.URLError, OSError) as error:
        raise RegistryError(f"{reference}: cannot reach the token service {realm} ({error})") from error
    except ValueError as error:
        raise RegistryError(f"{reference}: the token service {realm} answered something not JSON") from error
    token = (answer.get("token") or answer.get("access_token")) if isinstance(answer, dict) else None
    if not token:
        raise RegistryError(f"{reference}: the token service {realm} answered without a token")
    return str(token), realm


def _http_error_message(reference: str, image: ImageReference, error: urllib.error.HTTPError, realm: str) -> str:
    """What went wrong, for an HTTP error from the registry (`realm`: the token was from there)."""
    if error.code == 401 and realm:
        # The registry refused the token it sent us for; its new challenge says why (`error=`).
        _, params = _challenge_params(error.headers.get("WWW-Authenticate", ""))
        why = params.get("error", "no reason given")
        return f"{reference}: HTTP 401 from {image.registry}: it rejected the token from {realm} ({why})"
    hint = "no such image or tag" if error.code == 404 else error.reason
    return f"{reference}: HTTP {error.code} from {image.registry} ({hint})"


def resolve_digest(reference: str) -> str:
    """`sha256:...` of the manifest (or multi-platform index) the tag points at now."""
    image = parse_reference(reference)
    url = f"{image.base_url}/v2/{image.repository}/manifests/{image.tag}"
    headers = {"Accept": MANIFEST_TYPES}
    realm = ""
    try:
        try:
            body, response_headers = _get(url, headers)
        except urllib.error.HTTPError as error:
            challenge = error.headers.get("WWW-Authenticate", "")
            if error.code != 401 or not challenge:
                raise
            token, realm = _anonymous_token(challenge, image, reference)
            headers["Authorization"] = f"Bearer {token}"
            body, response_headers = _get(url, headers)
    except urllib.error.HTTPError as error:
        raise RegistryError(_http_error_message(reference, image, error, realm)) from error
    except (urllib.error.URLError, OSError) as error:
        raise RegistryError(f"{reference}: cannot reach {image.registry} ({error})") from error
    digest = response_headers.get("Docker-Content-Digest")
    return digest or f"sha256:{hashlib.sha256(body).hexdigest()}"


def resolve_digests(references: Iterable[str]) -> dict[str, str]:
    """Digest of every reference not already pinned, in the order given."""
    return {ref: resolve_digest(ref) for ref in dict.fromkeys(references) if "@" not in ref}
