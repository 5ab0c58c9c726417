"""Image references in manifests: the ONE place that decides what `image:` says.

Until `mlc apply --image NAME=REF@sha256:...` pins the digest of a built image, a project image
is referenced as `<repository>:<12 hex>` (the training digest for the training image, the spec
digest otherwise): deterministic, changes whenever its inputs do, and recognisable, so pinning
replaces exactly `image_reference(resolved, role)`. Images the project does not build (vLLM's
server) are pinned here by version.
"""

from __future__ import annotations

from typing import Literal

from mlc.compiler.resolve.environment import ResolvedSpec

# The vLLM OpenAI-compatible server; bump deliberately (its CLI flags are part of the contract).
VLLM_IMAGE = "docker.io/vllm/vllm-openai:v0.10.1.1"

ImageRole = Literal["train", "serve", "vllm"]


def placeholder_tag(resolved: ResolvedSpec, role: ImageRole) -> str:
    """The tag a project image has until its digest is pinned: 12 hex of a digest.

    The training image's tag follows the training digest, like the training Job's name: the
    Job's pod template is immutable, so what it runs may only change when its name does. The
    serve image's follows the spec digest.
    """
    digest = resolved.training_digest if role == "train" else resolved.spec_digest
    return digest[:12]


def image_reference(resolved: ResolvedSpec, role: ImageRole) -> str:
    """The `image:` of a container of `role`; the training image also runs drift and gate."""
    if role == "vllm":
        return VLLM_IMAGE
    repository = resolved.train_image if role == "train" else resolved.serve_image
    if repository is None:
        raise ValueError(f"the project builds no {role} image (images.registry unset?)")
    return f"{repository}:{placeholder_tag(resolved, role)}"
