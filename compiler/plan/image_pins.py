"""Image pins: built image digests (`--image train=REPO@sha256:...`) written into manifests.

Backends render images by repository and tag (`ResolvedSpec.train_image` / `serve_image`
plus `:<tag>`), because the digest only exists after CI has built and pushed the image.
Pinning is a pure transformation over artifact bytes, applied after emit: in every YAML
artifact outside `.github/` (the rendered manifests; workflows build images and must keep
their tags), each reference to the role's repository -- bare, `:<tag>`, or already
`@sha256:<old>` -- becomes the pinned `REPO@sha256:<digest>`. A reference only matches
when the repository is a whole token, so `.../churn-train` never matches `.../churn-train-gpu`.

For backend authors: emit the image as `<repository>:<tag>` (or bare) as one YAML scalar and
it will be pinned; nothing else is needed.

Pins are recorded in `mlc.lock` (`images`), and later plans re-apply them, so a pinned tree
stays clean until a new pin replaces them. A pin whose repository no longer matches the spec
(the registry or project name changed) is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace

from mlc.compiler.artifact import Artifact
from mlc.compiler.errors import MlcError

IMAGE_ROLES = ("train", "serve")
_PINNED_REF = re.compile(r"(?P<repo>[a-z0-9][a-z0-9._:/-]*[a-z0-9])@sha256:[0-9a-f]{64}")
_PINNABLE_SUFFIXES = (".yaml", ".yml")


class ImagePinError(MlcError, ValueError):
    """An `--image` argument that is not `ROLE=REPO@sha256:<64 hex>` or names an unknown role."""


@dataclass(frozen=True)
class ImagePin:
    """One pinned image: the role it fills and its digest reference."""

    role: str
    reference: str  # repo@sha256:<64 hex>

    @property
    def repository(self) -> str:
        """The reference without its digest: what unpinned manifests name."""
        return self.reference.split("@", 1)[0]


def parse_image_pin(text: str) -> ImagePin:
    """Parse `ROLE=REPO@sha256:<64 hex>`; raises `ImagePinError` showing the valid form."""
    role, sep, reference = text.partition("=")
    example = "e.g. train=ghcr.io/acme/churn-train@sha256:<64 hex digits>"
    if not sep or role not in IMAGE_ROLES:
        raise ImagePinError(f"--image {text!r}: must start with one of {', '.join(IMAGE_ROLES)}=; {example}")
    if not _PINNED_REF.fullmatch(reference):
        raise ImagePinError(f"--image {text!r}: must be a digest reference REPO@sha256:<64 hex>; {example}")
    return ImagePin(role, reference)


def effective_pins(
    repositories: Mapping[str, Collection[str]],
    locked: Mapping[str, str],
    given: Iterable[ImagePin],
) -> dict[str, str]:
    """The pins one spec uses: those in its lock, overridden by `given`, kept only where the
    pin's repository is the role's image repository in the spec (any environment)."""
    pins = dict(locked)
    pins.update({pin.role: pin.reference for pin in given if pin.repository in repositories.get(pin.role, ())})
    return {
        role: ref for role, ref in sorted(pins.items()) if ImagePin(role, ref).repository in repositories.get(role, ())
    }


def pin_images(artifacts: Iterable[Artifact], pins: Mapping[str, str]) -> list[Artifact]:
    """`artifacts` with every reference to a pinned repository rewritten to its digest."""
    patterns = [(_reference_pattern(ImagePin(role, ref).repository), ref) for role, ref in pins.items()]
    pinned: list[Artifact] = []
    for artifact in artifacts:
        content = artifact.content
        if patterns and _is_pinnable(artifact.path):
            for pattern, reference in patterns:
                content = pattern.sub(reference.encode("utf-8"), content)
        pinned.append(artifact if content == artifact.content else replace(artifact, content=content))
    return pinned


def _is_pinnable(path: str) -> bool:
    return path.endswith(_PINNABLE_SUFFIXES) and not path.startswith(".github/")


def _reference_pattern(repository: str) -> re.Pattern[bytes]:
    # The repository as a whole token, then an optional tag and an optional (old) digest.
    name_char = rb"[A-Za-z0-9._/-]"
    return re.compile(
        rb"(?<!"
        + name_char
        + rb")"
        + re.escape(repository.encode("utf-8"))
        + rb"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?"
        + rb"(?![A-Za-z0-9._/@:-])"
    )
