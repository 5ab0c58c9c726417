"""Docker backend: `train.Dockerfile` and `serve.Dockerfile` (+ their BuildKit ignore files).

What each image is made of is decided in resolve (`resolve.images.ImageBuild`: base, CUDA,
Python, torch index, apt pins), once per project: images are built once and promoted across
environments. This backend only lays a build out as Dockerfile text (`templates/image.Dockerfile.j2`)
and writes the ignore file beside it. The build context is the spec's directory
(`docker build -f deploy/docker/train.Dockerfile .`). Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from mlc.compiler.artifact import Artifact, with_generated_notice
from mlc.compiler.backends.templating import render_template
from mlc.compiler.resolve.images import IMAGE_CODE_DIR, ImageBuild
from mlc.compiler.resolve.resolved import RUNTIME_UID, ResolvedSpec

VENV = "/opt/venv"
PYTHON_DIR = "/opt/python"  # uv-managed CPython in CUDA images
CODE_DIR = IMAGE_CODE_DIR
REQUIREMENTS_IN_IMAGE = "/tmp/mlc/requirements.lock"
WHEEL_FOLDER_IN_IMAGE = "/tmp/mlc"  # where the builder stage copies the mlc wheel it installs


# --- rendering ---------------------------------------------------------------------------------


def dockerfile_string(value: str) -> str:
    """A double-quoted Dockerfile word: no variable expansion, no line break, quotes escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return '"' + escaped.replace("\n", " ").replace("\r", " ") + '"'


def _labels(project: ResolvedSpec, build: ImageBuild) -> list[str]:
    """OCI labels: what the image is, its base, and the spec and compiler that made it."""
    labels = [
        ("org.opencontainers.image.title", f"{project.name}-{build.role}"),
        ("org.opencontainers.image.base.name", build.base),
        ("dev.mlc.build-digest", f"sha256:{build.digest}"),  # what the image is built from, no more
        ("dev.mlc.compiler-version", project.compiler_version),
    ]
    repo = project.spec.gitops.repo
    if repo:
        labels.append(("org.opencontainers.image.source", repo.removesuffix(".git")))
    lines = [f"{key}={dockerfile_string(value)}" for key, value in labels]
    # The revision changes with every commit: a build arg, and the very last layer.
    lines.append('org.opencontainers.image.revision="${REVISION}"')
    return lines


def render_dockerfile(build: ImageBuild, project: ResolvedSpec) -> str:
    """The Dockerfile text of one image."""
    return render_template(
        "image.Dockerfile.j2",
        plan=build,
        uid=RUNTIME_UID,
        venv=VENV,
        python_dir=PYTHON_DIR,
        code_dir=CODE_DIR,
        requirements_in_image=REQUIREMENTS_IN_IMAGE,
        wheel_folder=WHEEL_FOLDER_IN_IMAGE,
        label_lines=_labels(project, build),
        json=lambda value: json.dumps(value, ensure_ascii=False),
    )


def render_dockerignore(build: ImageBuild, project: ResolvedSpec) -> str:
    """The Dockerfile-specific ignore file: an allowlist of what the build COPYs, nothing else."""
    lines = []
    if build.source == ".":
        # The whole context is the code: keep out what never belongs in an image.
        lines += [".git", ".venv", ".mlc", f"{build.dockerfile.split('/')[0]}", "**/.env"]
    else:
        lines += ["*", f"!{build.requirements}", f"!{build.source}"]
    mlc = build.runtime_requirement
    if mlc.wheel or mlc.lock:
        lines.append(f"!{mlc.wheel or mlc.lock}")  # the mlc wheel, or the hash lock, the builder installs
    lines += ["**/__pycache__", "**/*.py[cod]", "**/.pytest_cache"]
    return "\n".join(lines) + "\n"


def emit(environments: Sequence[ResolvedSpec]) -> list[Artifact]:
    """Backend entry point (see `mlc.compiler.backends`): each image the project builds, its
    Dockerfile and its ignore file."""
    if not environments:
        return []
    project = environments[0]
    artifacts: list[Artifact] = []
    for build in project.images.builds():
        sources = ("code", "images", build.role)
        dockerfile = with_generated_notice(render_dockerfile(build, project).encode(), project.compiler_version)
        ignore = with_generated_notice(render_dockerignore(build, project).encode(), project.compiler_version)
        artifacts.append(Artifact(build.dockerfile, dockerfile, "docker", sources))
        artifacts.append(Artifact(f"{build.dockerfile}.dockerignore", ignore, "docker", sources))
    return artifacts
