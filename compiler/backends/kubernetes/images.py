"""Image references in manifests: the ONE place that decides what `image:` says.

A project image is referenced as resolved (`ResolvedSpec.train_image_ref` / `serve_image_ref`:
`<repository>:<12 hex>` until `mlc apply --image NAME=REF@sha256:...` pins its digest).
Images the project does not build (vLLM's server) are resolved (`Serving.engine_image`: the
spec's `serve.llm.image`, else the compatibility table's, pinned by digest).
"""

from __future__ import annotations

from typing import Literal

from mlc.compiler.resolve.resolved import ResolvedSpec

ImageRole = Literal["train", "serve", "vllm"]


def image_reference(resolved: ResolvedSpec, role: ImageRole) -> str:
    """The `image:` of a container of `role`; the training image also runs drift and gate."""
    if role == "vllm":
        image = resolved.serving.engine_image if resolved.serving is not None else None
        if image is None:
            raise ValueError("the project serves no vLLM (serve.engine is not vllm)")  # callers check the engine
        return image
    reference = resolved.train_image_ref if role == "train" else resolved.serve_image_ref
    if reference is None:
        raise ValueError(f"the project builds no {role} image (images.registry unset?)")  # validate prevents it
    return reference
