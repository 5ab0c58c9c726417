"""Docker backend: `train.Dockerfile` and `serve.Dockerfile` (+ their BuildKit ignore files).

Images are built once per project and promoted across environments, so this backend looks at
every environment at once: an image is a CUDA image when ANY environment needs a GPU for it.
The build context is the spec's directory (`docker build -f deploy/docker/train.Dockerfile .`).

What each image is made of is decided here, as an `ImagePlan` (plain data); the Dockerfile text
comes from `templates/image.Dockerfile.j2`. Pure: no I/O besides reading package data, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mlc.compiler.artifact import Artifact, generated_notice
from mlc.compiler.backends.templating import render_template
from mlc.compiler.compat import resolve_base_image, torch_compat_table, version_key
from mlc.compiler.load.spec import ImageSpec
from mlc.compiler.resolve.environment import RUNTIME_UID, ResolvedSpec

__all__ = [
    "ImagePlan",
    "base_images",
    "emit",
    "emit_dockerfiles",
    "plan_image",
    "render_dockerfile",
    "render_dockerignore",
]

Role = Literal["train", "serve"]

# The pods' `runAsUser`/`runAsGroup` must equal this (to be hoisted into `resolve`).
VENV = "/opt/venv"
PYTHON_DIR = "/opt/python"  # uv-managed CPython in CUDA images
CODE_DIR = "/opt/mlc/src"
REQUIREMENTS_IN_IMAGE = "/tmp/mlc/requirements.lock"


# --- build pins (package data) -----------------------------------------------------------------

_STRICT = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AptPins(BaseModel):
    """`package -> version` per base distro (`debian-bookworm`, `ubuntu-24.04`)."""

    model_config = _STRICT

    source: str = Field(alias="_source")
    distros: dict[str, dict[str, str]]


class DockerBuildTable(BaseModel):
    """`data/docker_build.json`: pins the Dockerfiles need beyond the torch/CUDA table."""

    model_config = _STRICT

    source: str = Field(alias="_source")
    python_slim_suite: str
    uv_image: str
    apt: AptPins


@cache
def docker_build_table() -> DockerBuildTable:
    """The validated Docker build pins, read from package data once per process."""
    text = (files("mlc.compiler.compat") / "data" / "docker_build.json").read_text(encoding="utf-8")
    return DockerBuildTable.model_validate(json.loads(text))


# --- the plan of one image -----------------------------------------------------------------


@dataclass(frozen=True)
class ImagePlan:
    """Everything one Dockerfile says, decided once; the template only lays it out."""

    role: Role
    base: str  # the final stage's FROM (and the builder's), pinned by digest when known
    base_reason: str  # one comment line: why this base
    gpu: bool
    python: str
    uv_image: str | None  # set when CPython is installed by uv (CUDA and GPU override bases)
    torch: str | None
    torch_index_url: str | None
    system_packages: tuple[str, ...]
    unpinned_packages: tuple[str, ...]  # no version in the spec nor in the pin table
    requirements: str  # path in the build context
    source: str  # code folder in the build context ("." for the whole context)
    runtime_requirement: str
    requirements_hashed: bool  # the lock has --hash entries: install with --require-hashes
    command: str
    expose: tuple[int, ...]
    labels: tuple[tuple[str, str], ...]
    source_url: str | None  # org.opencontainers.image.source, when the spec names the repo
    output_dir: str  # <gitops.path>/docker

    @property
    def dockerfile_path(self) -> str:
        """Where the Dockerfile goes, relative to the spec's directory."""
        return f"{self.output_dir}/{self.role}.Dockerfile"


def _builds(spec_env: ResolvedSpec, role: Role) -> bool:
    spec = spec_env.spec
    if role == "train":
        return spec.train is not None
    return spec.builds_serve_image


def _image_spec(env: ResolvedSpec, role: Role) -> ImageSpec:
    return env.spec.images.train if role == "train" else env.spec.images.serve


def _gpu_types(environments: Sequence[ResolvedSpec], role: Role) -> list[str]:
    """The GPU types of every environment that runs this image on a GPU, deduplicated."""
    found: list[str] = []
    for env in environments:
        section = env.spec.train if role == "train" else env.spec.serve
        if section is None or not section.resources.gpus or not section.resources.gpu_type:
            continue
        if section.resources.gpu_type not in found:
            found.append(section.resources.gpu_type)
    return found


def _base_override(environments: Sequence[ResolvedSpec], role: Role) -> str | None:
    """`images.<role>.base` of the environments; a digest-pinned one wins (it is what ships)."""
    overrides = [b for env in environments if (b := _image_spec(env, role).base)]
    pinned = [b for b in overrides if "@sha256:" in b]
    return (pinned or overrides or [None])[0]


def pin_image(reference: str, digests: Mapping[str, str]) -> str:
    """`tag@sha256:...` when the images lock knows the tag's digest; the reference otherwise."""
    if "@" in reference or reference not in digests:
        return reference
    return f"{reference}@{digests[reference]}"


def _pinned_packages(requested: list[str], distro: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Add the pin table's version to each package written without one."""
    table = docker_build_table().apt.distros.get(distro or "", {})
    pinned: list[str] = []
    unpinned: list[str] = []
    for package in requested:
        if "=" in package:
            pinned.append(package)
        elif package in table:
            pinned.append(f"{package}={table[package]}")
        else:
            pinned.append(package)
            unpinned.append(package)
    return tuple(pinned), tuple(unpinned)


@dataclass(frozen=True)
class _Base:
    image: str
    reason: str
    distro: str | None
    torch_index_url: str | None
    needs_uv: bool


def _choose_base(environments: Sequence[ResolvedSpec], role: Role, gpu: bool) -> _Base:
    code = environments[0].spec.code
    torch = code.framework.torch
    table = docker_build_table()
    override = _base_override(environments, role)
    index_url = None
    if torch is not None:
        index_url = resolve_base_image(torch, code.python, gpu=False).torch_index_url
    if not gpu:
        suite = table.python_slim_suite
        image = f"python:{code.python}-slim-{suite}"
        reason = f"CPU image: slim Python on Debian {suite} (named, so the apt pins stay valid)"
        if override is not None:
            return _Base(
                override,
                "images.base override (CPU: must provide `python`)",
                None,
                index_url,
                needs_uv=False,
            )
        return _Base(image, reason, f"debian-{suite}", index_url, needs_uv=False)
    if torch is not None:
        # One image serves every environment: the oldest CUDA any of their GPUs needs runs on all.
        gpu_types = _gpu_types(environments, role) or [None]
        choices = [resolve_base_image(torch, code.python, True, t) for t in gpu_types]
        chosen = min(choices, key=lambda b: version_key(b.cuda or "0"))
        cuda, index_url = chosen.cuda or "", chosen.torch_index_url
        reason = f"GPU image: CUDA {cuda} runtime + cuDNN, newest CUDA of torch {torch} for its GPUs"
    else:
        cuda = max(torch_compat_table().cuda.versions, key=version_key)
        reason = f"GPU image without framework.torch: the newest CUDA runtime in the table ({cuda})"
    cuda_image = torch_compat_table().cuda.versions[cuda]
    if override is not None:
        return _Base(
            override,
            "images.base override (GPU: CPython comes from uv)",
            None,
            index_url,
            needs_uv=True,
        )
    return _Base(cuda_image.image, reason, f"ubuntu-{cuda_image.ubuntu}", index_url, needs_uv=True)


def _labels(env: ResolvedSpec, role: Role, base: str) -> tuple[tuple[str, str], ...]:
    return (
        ("org.opencontainers.image.title", f"{env.name}-{role}"),
        ("org.opencontainers.image.base.name", base),
        ("dev.mlc.spec-digest", f"sha256:{env.spec_digest}"),
        ("dev.mlc.compiler-version", env.compiler_version),
    )


def _runtime_extras(environments: Sequence[ResolvedSpec], role: Role) -> str:
    """The `mlc` extras an image installs: the serve image only what its jobs import (see pyproject)."""
    if role == "train":
        return "runtime"
    extras = ["serve"]  # mlc-runtime serve, fetch-model
    if any(env.spec.serve is not None and env.spec.serve.batch is not None for env in environments):
        extras.append("batch")
    if any(env.spec.monitor is not None and env.spec.monitor.drift and not env.train_image for env in environments):
        extras.append("drift")  # as monitoring.py places the drift CronJob: the serve image without a train image
    return ",".join(extras)


def plan_image(
    environments: Sequence[ResolvedSpec], role: Role, digests: Mapping[str, str] | None = None
) -> ImagePlan | None:
    """What the `role` image of this project is made of, or None when the project doesn't build it.

    `digests` maps base-image tags to `sha256:...` (from `mlc images lock`); pinned tags are
    written `tag@sha256:...`.
    """
    building = [env for env in environments if _builds(env, role)]
    if not building:
        return None
    digests = digests or {}
    first = building[0]
    code = first.spec.code
    gpu = any((env.train_gpu if role == "train" else env.serve_gpu) for env in building)
    base = _choose_base(building, role, gpu)
    requested = [p for env in building for p in _image_spec(env, role).system_packages]
    requested = list(dict.fromkeys(requested))
    packages, unpinned = _pinned_packages(requested, base.distro)
    ports = sorted({env.spec.serve.port for env in building if env.spec.serve and role == "serve"})
    repo = first.spec.gitops.repo
    pinned_base = pin_image(base.image, digests)
    source = PurePosixPath(code.source).as_posix()
    return ImagePlan(
        role=role,
        base=pinned_base,
        base_reason=base.reason,
        gpu=gpu,
        python=code.python,
        uv_image=pin_image(docker_build_table().uv_image, digests) if base.needs_uv else None,
        torch=code.framework.torch,
        torch_index_url=base.torch_index_url,
        system_packages=packages,
        unpinned_packages=unpinned,
        requirements=PurePosixPath(code.requirements).as_posix(),
        source=source,
        runtime_requirement=f"mlc[{_runtime_extras(building, role)}]=={first.compiler_version}",
        requirements_hashed=first.requirements_hashed,
        command=role,
        expose=tuple(ports),
        labels=_labels(first, role, pinned_base),
        source_url=repo.removesuffix(".git") if repo else None,
        output_dir=f"{PurePosixPath(first.spec.gitops.path).as_posix()}/docker",
    )


def base_images(environments: Sequence[ResolvedSpec]) -> list[str]:
    """Every image the Dockerfiles start FROM, as written before any digest is pinned."""
    found: list[str] = []
    for role in ("train", "serve"):
        plan = plan_image(environments, role)
        if plan is not None:
            found += [plan.base] + ([plan.uv_image] if plan.uv_image else [])
    return list(dict.fromkeys(found))


# --- rendering ---------------------------------------------------------------------------------


def dockerfile_string(value: str) -> str:
    """A double-quoted Dockerfile word: no variable expansion, no line break, quotes escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return '"' + escaped.replace("\n", " ").replace("\r", " ") + '"'


def _label_lines(plan: ImagePlan) -> list[str]:
    labels = [f"{key}={dockerfile_string(value)}" for key, value in plan.labels]
    if plan.source_url:
        labels.append(f"org.opencontainers.image.source={dockerfile_string(plan.source_url)}")
    # The revision changes with every commit: a build arg, and the very last layer.
    labels.append('org.opencontainers.image.revision="${REVISION}"')
    return labels


def render_dockerfile(plan: ImagePlan, version: str, spec_digest: str) -> str:
    """The Dockerfile text of one image."""
    return render_template(
        "image.Dockerfile.j2",
        notice=generated_notice(version, spec_digest),
        plan=plan,
        uid=RUNTIME_UID,
        venv=VENV,
        python_dir=PYTHON_DIR,
        code_dir=CODE_DIR,
        requirements_in_image=REQUIREMENTS_IN_IMAGE,
        label_lines=_label_lines(plan),
        json=lambda value: json.dumps(value, ensure_ascii=False),
    )


def render_dockerignore(plan: ImagePlan, version: str, spec_digest: str) -> str:
    """The Dockerfile-specific ignore file: an allowlist of what the build COPYs, nothing else."""
    lines = [f"# {generated_notice(version, spec_digest)}"]
    if plan.source == ".":
        # The whole context is the code: keep out what never belongs in an image.
        lines += [".git", ".venv", ".mlc", f"{plan.output_dir.split('/')[0]}", "**/.env"]
    else:
        lines += ["*", f"!{plan.requirements}", f"!{plan.source}"]
    lines += ["**/__pycache__", "**/*.py[cod]", "**/.pytest_cache"]
    return "\n".join(lines) + "\n"


def emit_dockerfiles(environments: Sequence[ResolvedSpec], digests: Mapping[str, str] | None = None) -> list[Artifact]:
    """Both Dockerfiles (where the project builds them) and their ignore files."""
    if not environments:
        return []
    first = environments[0]
    artifacts: list[Artifact] = []
    for role in ("train", "serve"):
        plan = plan_image(environments, role, digests)
        if plan is None:
            continue
        sources = ("code", "images", role)
        dockerfile = render_dockerfile(plan, first.compiler_version, first.spec_digest)
        ignore = render_dockerignore(plan, first.compiler_version, first.spec_digest)
        path = plan.dockerfile_path
        artifacts.append(Artifact(path, dockerfile.encode(), "docker", sources))
        artifacts.append(Artifact(f"{path}.dockerignore", ignore.encode(), "docker", sources))
    return artifacts


def emit(environments: Sequence[ResolvedSpec]) -> list[Artifact]:
    """Backend entry point (see `mlc.compiler.backends`): bases pinned by `mlc.images.lock` digests."""
    digests = environments[0].base_image_digests if environments else {}
    return emit_dockerfiles(environments, digests or None)
