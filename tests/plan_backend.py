"""A tiny stand-in backend for the plan/apply tests: a few files derived from the spec.

One Dockerfile per project, one workflow, and per environment a config file plus one file per
`train` / `serve` section (so removing a section prunes its files). Real backends are not used,
so these tests stay independent of them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from mlc.compiler import backends as emit_stage
from mlc.compiler.artifact import Artifact, generated_notice
from mlc.compiler.resolve.resolved import ResolvedSpec

MODULE_NAME = "plan_test_backend"


def emit_artifacts(environments: Sequence[ResolvedSpec]) -> list[Artifact]:
    """The test artifacts of one project."""
    first = environments[0]
    # The notice names the whole spec's digest here: every file of this stand-in changes with
    # any spec edit, which the plan tests rely on (the real backends' notices are per file).
    header = f"# {generated_notice(first.compiler_version, first.spec_digest.encode())}\n"
    out = [
        Artifact(
            "train.Dockerfile",
            f"{header}FROM python:{first.spec.code.python}-slim\n".encode(),
            "test",
        ),
        Artifact(
            f".github/workflows/{first.name}-pr.yml",
            f"{header}name: {first.name}\n".encode(),
            "test",
        ),
    ]
    for env in environments:
        folder = f"{env.spec.gitops.path}/{env.environment}"
        out.append(Artifact(f"{folder}/config.yaml", f"{header}namespace: {env.namespace}\n".encode(), "test"))
        if env.spec.train is not None:
            image = f"{env.train_image}:latest"
            out.append(Artifact(f"{folder}/train.yaml", f"{header}image: {image}\n".encode(), "test"))
        if env.spec.serve is not None:
            image = f'"{env.serve_image}:latest"'
            replicas = env.spec.serve.replicas.min
            body = f"{header}image: {image}\nreplicas: {replicas}\n"
            out.append(Artifact(f"{folder}/serve.yaml", body.encode(), "test"))
    return out


def install() -> None:
    """Register this module as the only backend (in this process)."""
    module = sys.modules[__name__]
    module.emit = emit_artifacts  # type: ignore[attr-defined]
    sys.modules[f"mlc.compiler.backends.{MODULE_NAME}"] = module
    emit_stage.BACKEND_MODULES = (MODULE_NAME,)
