"""The images a project builds, decided once: base, CUDA, Python, torch wheel index, apt pins.

Images are built once per project and promoted across environments, so these facts look at
every environment at once: an image is a CUDA image when ANY environment runs it on a GPU, and
its CUDA is the oldest any of their GPUs needs (it then runs on all of them). Backends read the
result (`ImageBuild`) and never the compatibility tables: the docker backend lays it out as a
Dockerfile, the CI backend builds it, the Kubernetes backend references it.

Pure: the compatibility tables are package data; no other file, clock or environment variable.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Literal

from mlc.compiler.compat import docker_build_table, resolve_base_image, torch_compat_table, version_key
from mlc.compiler.load.spec import ImageSpec, MLProject
from mlc.compiler.resolve.runtime_install import MlcInstall

ImageRole = Literal["train", "serve"]
# Where an image holds the code (`code.source`): its WORKDIR, the job pods' working directory, so
# relative data paths resolve under it (and the volumes mounted over them, `ResolvedSpec.volumes`).
IMAGE_CODE_DIR = "/opt/mlc/src"
IMAGE_ROLES: tuple[ImageRole, ...] = ("train", "serve")


@dataclass(frozen=True)
class AptSnapshot:
    """apt pointed at the distribution's archive as it was on one day (`images.<role>.apt_snapshot`)."""

    day: str  # YYYY-MM-DD, as the spec writes it
    sources: str  # the base image's apt sources file
    archives: tuple[tuple[str, str], ...]  # (archive URL in the sources, the dated snapshot's URL)


@dataclass(frozen=True)
class ImageBuild:
    """Everything one project image is made of; the Dockerfile template only lays it out."""

    role: ImageRole
    repository: str | None  # <images.registry>/<name>-<role>; None without a registry
    base: str  # the stages' FROM, pinned by digest when mlc.images.lock knows it
    base_tag: str  # the same as chosen, before pinning (what `mlc images lock` resolves)
    base_reason: str  # one comment line: why this base
    gpu: bool
    cuda: str | None
    python: str
    uv_image: str | None  # set when CPython is installed by uv (CUDA and GPU override bases)
    uv_tag: str | None
    torch: str | None
    torch_index_url: str | None
    system_packages: tuple[str, ...]  # apt packages, each `name=version` where a version is known
    unpinned_packages: tuple[str, ...]  # no version written nor pinned: the snapshot's day decides
    apt_snapshot: AptSnapshot | None  # where apt reads the archive; None: the live archive
    requirements: str  # the requirements lock, relative to the build context
    source: str  # the code folder in the build context ("." for the whole context)
    requirements_hashed: bool  # the lock has --hash entries: install with --require-hashes
    runtime_requirement: MlcInstall  # the mlc runtime it installs (its role's extras), the compiler's own
    ports: tuple[int, ...]  # what the image serves on (EXPOSE)
    # The role whose start the builder compiles bytecode for, after pruning what no import
    # reaches (`mlc.runtime.image_files`); None keeps pip's full install (bytecode of everything).
    lean_start: ImageRole | None
    dockerfile: str  # where its Dockerfile is written, relative to the spec's folder

    @property
    def digest(self) -> str:
        """sha256 hex of what the image is made of, as above: its placeholder tag and its
        `dev.mlc.build-digest` label. An edit that does not touch the image leaves it alone."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class ProjectImages:
    """The images of one project: shared by every environment's `ResolvedSpec`."""

    train: ImageBuild | None = None
    serve: ImageBuild | None = None

    def builds(self) -> list[ImageBuild]:
        """The images the project builds, training first."""
        return [build for build in (self.train, self.serve) if build is not None]

    def base_images(self) -> list[str]:
        """Every image the Dockerfiles start FROM, as chosen before any digest is pinned."""
        found = [tag for build in self.builds() for tag in (build.base_tag, build.uv_tag) if tag]
        return list(dict.fromkeys(found))


def dockerfile_path(spec: MLProject, role: ImageRole) -> str:
    """`<gitops.path>/docker/<role>.Dockerfile`, relative to the spec's folder."""
    return f"{PurePosixPath(spec.gitops.path).as_posix().rstrip('/')}/docker/{role}.Dockerfile"


def image_repository(spec: MLProject, role: ImageRole) -> str | None:
    """`<images.registry>/<name>-<role>`, where the project builds that image and has a registry."""
    registry = spec.images.registry
    return f"{registry}/{spec.metadata.name}-{role}" if registry and spec.builds_image(role) else None


def runs_on_gpu(spec: MLProject, role: ImageRole) -> bool:
    """Whether an environment runs the `role` image on a GPU: `images.<role>.gpu` when set,
    else whether its section asks for GPUs."""
    image = _image_spec(spec, role)
    if image.gpu is not None:
        return image.gpu
    section = spec.train if role == "train" else spec.serve
    return bool(section is not None and section.resources.gpus)


def _image_spec(spec: MLProject, role: ImageRole) -> ImageSpec:
    return spec.images.train if role == "train" else spec.images.serve


def _gpu_types(environments: Sequence[MLProject], role: ImageRole) -> list[str]:
    """The GPU types of every environment that runs this image on a GPU, deduplicated."""
    found: list[str] = []
    for spec in environments:
        section = spec.train if role == "train" else spec.serve
        if section is None or not section.resources.gpus or not section.resources.gpu_type:
            continue
        if section.resources.gpu_type not in found:
            found.append(section.resources.gpu_type)
    return found


def _base_override(environments: Sequence[MLProject], role: ImageRole) -> str | None:
    """`images.<role>.base` of the environments; a digest-pinned one wins (it is what ships)."""
    overrides = [b for spec in environments if (b := _image_spec(spec, role).base)]
    pinned = [b for b in overrides if "@sha256:" in b]
    return (pinned or overrides or [None])[0]


def pin_image(reference: str, digests: Mapping[str, str]) -> str:
    """`tag@sha256:...` when the images lock knows the tag's digest; the reference otherwise."""
    if "@" in reference or reference not in digests:
        return reference
    return f"{reference}@{digests[reference]}"


def _pinned_packages(
    requested: list[str], distro: str | None, snapshot: bool = False
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Add the pin table's version to each package written without one. From a snapshot the
    day decides instead: the table's version may not be the one in the archive that day."""
    table = {} if snapshot else docker_build_table().apt.distros.get(distro or "", {})
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
    cuda: str | None
    torch_index_url: str | None
    needs_uv: bool


def _choose_base(environments: Sequence[MLProject], role: ImageRole, gpu: bool) -> _Base:
    code = environments[0].code
    torch = code.framework.torch
    override = _base_override(environments, role)
    index_url = None
    if torch is not None:
        index_url = resolve_base_image(torch, code.python, gpu=False).torch_index_url
    if not gpu:
        suite = docker_build_table().python_slim_suite
        if override is not None:
            return _Base(override, "images.base override (CPU: must provide `python`)", None, None, index_url, False)
        reason = f"CPU image: slim Python on Debian {suite} (named, so the apt pins stay valid)"
        return _Base(f"python:{code.python}-slim-{suite}", reason, f"debian-{suite}", None, index_url, False)
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
        return _Base(override, "images.base override (GPU: CPython comes from uv)", None, cuda, index_url, True)
    return _Base(cuda_image.image, reason, f"ubuntu-{cuda_image.ubuntu}", cuda, index_url, True)


def _apt_snapshot(day: str | None, distro: str | None) -> AptSnapshot | None:
    """The dated archive of `distro` on `day` (validate refuses a snapshot on a base it does not know)."""
    sources = docker_build_table().apt.snapshots.distros.get(distro or "")
    if day is None or sources is None:
        return None
    stamp = day.replace("-", "") + "T000000Z"  # the archive's state at the start of that day (UTC)
    archives = tuple((archive, f"{snapshot}/{stamp}") for archive, snapshot in sources.archives)
    return AptSnapshot(day=day, sources=sources.sources, archives=archives)


def image_distro(environments: Sequence[MLProject], role: ImageRole) -> str | None:
    """The distribution the `role` image's apt installs from (e.g. `debian-bookworm`), None with
    a base override (the user's image: mlc does not know it) or when the project builds no such image."""
    building = [spec for spec in environments if spec.builds_image(role)]
    if not building:
        return None
    return _choose_base(building, role, any(runs_on_gpu(spec, role) for spec in building)).distro


def runtime_extras(environments: Sequence[MLProject], role: ImageRole) -> str:
    """The `mlc` extras an image installs: the serve image only what its jobs import (pyproject's
    per-role extras), which keeps an image pull, part of every scale-up, small."""
    if role == "train":
        return "runtime"
    extras = ["serve"]  # mlc-runtime serve, fetch-model
    if any(spec.serve is not None and spec.serve.batch is not None for spec in environments):
        extras.append("batch")
    if any(spec.monitor and spec.monitor.drift and not spec.builds_image("train") for spec in environments):
        extras.append("drift")  # the drift CronJob runs on the serve image when there is no train image
    return ",".join(extras)


def resolve_image(
    environments: Sequence[MLProject],
    role: ImageRole,
    digests: Mapping[str, str],
    requirements_hashed: bool,
    mlc: MlcInstall,
) -> ImageBuild | None:
    """What the `role` image of this project is made of, or None when the project doesn't build it.

    `environments` are the merged specs of every environment; `digests` maps base-image tags to
    `sha256:...` (from `mlc images lock`), and pinned tags are written `tag@sha256:...`.
    """
    building = [spec for spec in environments if spec.builds_image(role)]
    if not building:
        return None
    first = building[0]
    code = first.code
    gpu = any(runs_on_gpu(spec, role) for spec in building)
    base = _choose_base(building, role, gpu)
    requested = list(dict.fromkeys(p for spec in building for p in _image_spec(spec, role).system_packages))
    day = next((d for spec in building if (d := _image_spec(spec, role).apt_snapshot)), None)
    snapshot = _apt_snapshot(day, base.distro)
    packages, unpinned = _pinned_packages(requested, base.distro, snapshot is not None)
    ports = sorted({spec.serve.port for spec in building if spec.serve is not None and role == "serve"})
    uv_tag = docker_build_table().uv_image if base.needs_uv else None
    return ImageBuild(
        role=role,
        repository=image_repository(first, role),
        base=pin_image(base.image, digests),
        base_tag=base.image,
        base_reason=base.reason,
        gpu=gpu,
        cuda=base.cuda,
        python=code.python,
        uv_image=pin_image(uv_tag, digests) if uv_tag else None,
        uv_tag=uv_tag,
        torch=code.framework.torch,
        torch_index_url=base.torch_index_url,
        system_packages=packages,
        unpinned_packages=unpinned,
        apt_snapshot=snapshot,
        requirements=PurePosixPath(code.requirements).as_posix(),
        source=PurePosixPath(code.source).as_posix(),
        requirements_hashed=requirements_hashed,
        runtime_requirement=mlc.with_extras(runtime_extras(building, role)),
        ports=tuple(ports),
        # Serving scales up by pulling: its image carries only what the server loads. The train
        # image keeps everything (torch.compile needs torch's headers, tests and tools may run).
        lean_start="serve" if role == "serve" else None,
        dockerfile=dockerfile_path(first, role),
    )


def resolve_project_images(
    environments: Sequence[MLProject], digests: Mapping[str, str], requirements_hashed: bool, mlc: MlcInstall
) -> ProjectImages:
    """Both images of a project (each None where it builds no such image); `mlc`: where they get
    the mlc runtime, the compiler's own version."""
    return ProjectImages(
        train=resolve_image(environments, "train", digests, requirements_hashed, mlc),
        serve=resolve_image(environments, "serve", digests, requirements_hashed, mlc),
    )
