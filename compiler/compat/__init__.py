"""The compatibility tables: which image, wheel index and CUDA a (torch, python, GPU) needs,
which node labels a GPU type has, and the pins a Docker build needs.

The facts live in data files, ``data/torch_compat.json``, ``data/gpu_types.json`` and
``data/docker_build.json`` (see ``data/README.md`` for where they come from and how to refresh
them). This module only validates them and answers questions about them with pure functions.
Validate asks them whether a spec can be built (``check_torch_python``, ``check_gpu_type``);
resolve asks them what to build (``resolve_base_image``, ``gpu_node_labels``,
``docker_build_table``). Backends never read them.

Errors are raised as :class:`CompatError`, whose message is one line with no position in it:
the caller knows which ``mlproject.yaml`` key the value came from and prefixes
``mlproject.yaml:LINE:COL: `` itself (``CompatError.field`` says which key is at fault).

Only the standard library and pydantic are imported: validation loads this for every spec that
names a torch version or a GPU.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mlc.compiler.errors import MlcError

__all__ = [
    "AptPins",
    "BaseImage",
    "CompatError",
    "ComputeCapability",
    "CudaBuild",
    "CudaImage",
    "DockerBuildTable",
    "GpuTable",
    "GpuType",
    "PinnedImage",
    "ServingImages",
    "TorchCompatTable",
    "TorchRelease",
    "check_gpu_type",
    "check_torch_python",
    "docker_build_table",
    "gpu_node_labels",
    "gpu_table",
    "known_gpu_types",
    "resolve_base_image",
    "serving_images",
    "supported_torch_versions",
    "torch_compat_table",
    "version_key",
]

PythonInstall = Literal["apt", "uv"]
CompatField = Literal["torch", "python", "gpu_type"]

_RELEASE_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_MINOR_VERSION = re.compile(r"^\d+\.\d+$")
_SM = re.compile(r"^sm_(\d+)(\d)$")


class CompatError(MlcError, ValueError):
    """A (torch, python, GPU) combination mlc cannot build; the message is one teaching line."""

    def __init__(self, message: str, field: CompatField) -> None:
        super().__init__(message)
        self.message = message
        self.field: CompatField = field


def version_key(version: str) -> tuple[int, ...]:
    """Turn ``"2.10.0"`` into ``(2, 10, 0)`` so versions sort numerically, not as text."""
    return tuple(int(part) for part in version.split("."))


def sm_key(capability: str) -> tuple[int, int]:
    """Turn ``"sm_89"`` into ``(8, 9)`` and ``"sm_100"`` into ``(10, 0)``."""
    match = _SM.match(capability)
    if match is None:
        raise ValueError(f"{capability!r} is not a compute capability like sm_80")
    return int(match.group(1)), int(match.group(2))


def _check_sorted(versions: list[str], what: str) -> None:
    keys = [version_key(v) for v in versions]
    if keys != sorted(keys) or len(set(keys)) != len(keys):
        raise ValueError(f"{what} must be unique and in ascending order: {versions}")


# --- table models ---------------------------------------------------------------------------

# defer_build: a table's validator is built when that table is first loaded, not at import
# (a spec with a torch version needs the torch table, one with a GPU the GPU table too).
_STRICT = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


class CudaImage(BaseModel):
    """One CUDA minor version: its nvidia/cuda runtime image and torch wheel index."""

    model_config = _STRICT

    image: str
    ubuntu: str
    system_python: str
    cudnn: str
    min_driver: str
    index_url: str

    @field_validator("image")
    @classmethod
    def _runtime_cudnn_image(cls, image: str) -> str:
        if not re.fullmatch(r"nvidia/cuda:\d+\.\d+\.\d+-cudnn\d*-runtime-ubuntu\d+\.\d+", image):
            raise ValueError(f"{image!r} is not an nvidia/cuda cuDNN runtime tag")
        return image


class CudaBuild(BaseModel):
    """One CUDA build of a torch release and the capabilities its kernels are compiled for."""

    model_config = _STRICT

    version: str
    archs: list[str]
    ptx: list[str] = []

    @field_validator("archs", "ptx")
    @classmethod
    def _capabilities(cls, archs: list[str]) -> list[str]:
        keys = [sm_key(a) for a in archs]
        if keys != sorted(keys) or len(set(keys)) != len(keys):
            raise ValueError(f"archs must be unique and ascending: {archs}")
        return archs

    def runs_on(self, capability: str) -> bool:
        """True if this build has kernels a GPU of ``capability`` can run.

        SASS compiled for X.y runs on X.z for z >= y (same major); PTX for a capability is
        JIT-compiled on any later one. That is why sm_86 kernels serve an sm_89 L4.
        """
        major, minor = sm_key(capability)
        if any(m == major and n <= minor for m, n in map(sm_key, self.archs)):
            return True
        return any(sm_key(p) <= (major, minor) for p in self.ptx)


class TorchRelease(BaseModel):
    """One torch patch release: its Python versions and CUDA builds."""

    model_config = _STRICT

    torch: str
    python: list[str]
    cuda: list[CudaBuild]
    note: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> TorchRelease:
        if not _RELEASE_VERSION.match(self.torch):
            raise ValueError(f"torch version {self.torch!r} is not X.Y.Z")
        _check_sorted(self.python, f"python of torch {self.torch}")
        _check_sorted([b.version for b in self.cuda], f"cuda of torch {self.torch}")
        return self


class CudaSection(BaseModel):
    model_config = _STRICT

    source: str = Field(alias="_source")
    versions: dict[str, CudaImage]


class ReleaseSection(BaseModel):
    model_config = _STRICT

    source: str = Field(alias="_source")
    versions: list[TorchRelease]


class TorchCompatTable(BaseModel):
    """``data/torch_compat.json``: torch releases, their CUDA builds, and one image per CUDA."""

    model_config = _STRICT

    source: str = Field(alias="_source")
    cpu_index_url: str
    cuda: CudaSection
    releases: ReleaseSection

    @model_validator(mode="after")
    def _consistent(self) -> TorchCompatTable:
        _check_sorted([r.torch for r in self.releases.versions], "releases")
        _check_sorted(list(self.cuda.versions), "cuda versions")
        for release in self.releases.versions:
            for build in release.cuda:
                if build.version not in self.cuda.versions:
                    raise ValueError(
                        f"torch {release.torch} has a CUDA {build.version} build but cuda.versions has no image for it"
                    )
        return self

    def release(self, torch: str) -> TorchRelease | None:
        """The release entry for an exact version, or None."""
        return next((r for r in self.releases.versions if r.torch == torch), None)


class ComputeCapability(BaseModel):
    """What a compute capability needs from CUDA, and which torch releases can drive it."""

    model_config = _STRICT

    architecture: str
    min_cuda: str
    max_cuda: str | None
    min_torch: str | None
    last_torch: str | None
    note: str


class CapabilitySection(BaseModel):
    model_config = _STRICT

    source: str = Field(alias="_source")
    versions: dict[str, ComputeCapability]


class NodeLabels(BaseModel):
    """Kubernetes node-label values that identify nodes with this GPU."""

    model_config = _STRICT

    gpu_product: list[str]
    gke_accelerator: str | None


class GpuType(BaseModel):
    """One ``gpu_type`` value of the spec."""

    model_config = _STRICT

    name: str
    capability: str
    node_labels: NodeLabels


class GpuSection(BaseModel):
    model_config = _STRICT

    source: str = Field(alias="_source")
    types: dict[str, GpuType]


class GpuTable(BaseModel):
    """``data/gpu_types.json``: GPU names -> compute capability -> CUDA/torch bounds."""

    model_config = _STRICT

    source: str = Field(alias="_source")
    capabilities: CapabilitySection
    gpus: GpuSection

    @model_validator(mode="after")
    def _every_gpu_has_a_capability(self) -> GpuTable:
        for name, gpu in self.gpus.types.items():
            if gpu.capability not in self.capabilities.versions:
                raise ValueError(f"gpu {name} has capability {gpu.capability} with no entry")
        return self


def _load_json(name: str) -> object:
    return json.loads((files(__package__) / "data" / name).read_text(encoding="utf-8"))


@cache
def torch_compat_table() -> TorchCompatTable:
    """The validated torch table, read from package data once per process."""
    return TorchCompatTable.model_validate(_load_json("torch_compat.json"))


@cache
def gpu_table() -> GpuTable:
    """The validated GPU table, read from package data once per process."""
    return GpuTable.model_validate(_load_json("gpu_types.json"))


# --- queries --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BaseImage:
    """What the Dockerfile backend needs to start an image that can import the right torch.

    ``python_install`` says how Python gets into the image:

    - ``None``: the image already has it (``python:X.Y-slim``).
    - ``"apt"``: the CUDA image's Ubuntu ships exactly this Python (3.10 on 22.04, 3.12 on
      24.04); install ``python3 python3-venv`` with apt and make a venv (PEP 668 forbids pip
      into the system Python on 24.04). Ubuntu's own build, security updates via apt.
    - ``"uv"``: any other version. Copy the static ``uv`` binary in and run
      ``uv python install X.Y`` (python-build-standalone). Chosen over the deadsnakes PPA
      because deadsnakes does not build the Ubuntu release's own Python, lags new CPython
      releases and needs ``add-apt-repository`` (software-properties-common); uv covers every
      (Python, Ubuntu) pair in the table the same way.
    """

    image: str
    torch: str
    torch_index_url: str
    cuda: str | None
    python: str
    python_install: PythonInstall | None


def supported_torch_versions() -> list[str]:
    """Every torch release in the table, ascending (e.g. ``["2.4.0", ..., "2.15.0"]``)."""
    return [r.torch for r in torch_compat_table().releases.versions]


def known_gpu_types() -> list[str]:
    """Every ``gpu_type`` value the table knows, sorted."""
    return sorted(gpu_table().gpus.types)


def _nearest(torch: str, versions: list[str]) -> list[str]:
    """The supported releases on either side of an unsupported one."""
    key = version_key(torch)
    below = [v for v in versions if version_key(v) < key]
    above = [v for v in versions if version_key(v) > key]
    return ([below[-1]] if below else []) + ([above[0]] if above else [])


def _release(torch: str) -> TorchRelease:
    table = torch_compat_table()
    versions = supported_torch_versions()
    torch = torch.strip()
    if _MINOR_VERSION.match(torch):
        same_minor = [v for v in versions if v.startswith(torch + ".")]
        if same_minor:
            raise CompatError(
                f"torch {torch} must name a release; supported {torch}.x: {', '.join(same_minor)}",
                "torch",
            )
    if not _RELEASE_VERSION.match(torch):
        raise CompatError(
            f"torch version {torch!r} is not a release number like 2.5.1 (supported: {versions[0]} to {versions[-1]})",
            "torch",
        )
    release = table.release(torch)
    if release is None:
        nearest = ", ".join(_nearest(torch, versions))
        raise CompatError(
            f"torch {torch} is not in the compatibility table; nearest supported: {nearest}",
            "torch",
        )
    return release


def _check_python(release: TorchRelease, python: str) -> str:
    python = python.strip()
    if not _MINOR_VERSION.match(python):
        raise CompatError(f"python {python!r} must be MAJOR.MINOR, like 3.11", "python")
    if python not in release.python:
        raise CompatError(
            f"torch {release.torch} supports python {', '.join(release.python)}; got {python}",
            "python",
        )
    return python


def _gpu(gpu_type: str) -> GpuType:
    types = gpu_table().gpus.types
    wanted = gpu_type.strip().lower()
    gpu = types.get(wanted)
    if gpu is None:
        # A missing memory suffix ("nvidia-h100") is the usual slip: prefer prefix matches.
        prefixes = (wanted, f"nvidia-{wanted}")
        close = sorted(k for k in types if k.startswith(prefixes)) or difflib.get_close_matches(
            wanted, list(types), n=1
        )
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise CompatError(
            f"unknown gpu_type {gpu_type!r}; {hint}known: {', '.join(known_gpu_types())}",
            "gpu_type",
        )
    return gpu


def _builds_for(release: TorchRelease, gpu: GpuType) -> list[CudaBuild]:
    """The CUDA builds of ``release`` that can drive ``gpu``, ascending by CUDA version."""
    capability = gpu_table().capabilities.versions[gpu.capability]
    fits = []
    for build in release.cuda:
        cuda = version_key(build.version)
        if cuda < version_key(capability.min_cuda):
            continue
        if capability.max_cuda is not None and cuda > version_key(capability.max_cuda):
            continue
        if build.runs_on(gpu.capability):
            fits.append(build)
    return fits


def _no_build_message(gpu_type: str, gpu: GpuType, release: TorchRelease) -> str:
    capability = gpu_table().capabilities.versions[gpu.capability]
    what = f"gpu_type {gpu_type} ({gpu.capability}, {capability.architecture})"
    builds = ", ".join(b.version for b in release.cuda)
    fitting = [
        (r.torch, fit[-1].version) for r in torch_compat_table().releases.versions if (fit := _builds_for(r, gpu))
    ]
    if not fitting:
        return f"{what} is not supported by any torch release in the compatibility table"
    first_torch = fitting[0][0]
    last_torch, last_cuda = fitting[-1]
    if version_key(release.torch) < version_key(first_torch):
        return (
            f"{what} needs torch >= {first_torch} with CUDA >= {capability.min_cuda}; "
            f"torch {release.torch} only has CUDA {builds} builds"
        )
    if version_key(release.torch) > version_key(last_torch):
        return (
            f"{what} is not supported by torch {release.torch}: its CUDA {builds} builds "
            f"dropped {gpu.capability}; the last torch for it is {last_torch} (CUDA {last_cuda})"
        )
    return (
        f"{what} is not supported by torch {release.torch} (CUDA {builds} builds lack "
        f"{gpu.capability}); torch releases that support it: "
        f"{', '.join(t for t, _ in fitting)}"
    )


def check_torch_python(torch: str, python: str) -> None:
    """Raise :class:`CompatError` unless the table has torch release ``torch`` for ``python``."""
    _check_python(_release(torch), python)


def gpu_node_labels(gpu_type: str) -> list[str]:
    """The ``nvidia.com/gpu.product`` values (GPU feature discovery) of a spec's ``gpu_type``;
    the name itself for a type the table does not know (validate reports those)."""
    entry = gpu_table().gpus.types.get(gpu_type)
    return list(entry.node_labels.gpu_product) if entry is not None else [gpu_type]


def check_gpu_type(gpu_type: str, torch: str) -> None:
    """Raise :class:`CompatError` unless some CUDA build of ``torch`` can drive ``gpu_type``.

    Unknown GPU names list the known ones (with a "did you mean"); impossible pairs say which
    torch/CUDA the GPU needs (e.g. B200 needs torch >= 2.7.0 with CUDA >= 12.8).
    """
    gpu = _gpu(gpu_type)
    release = _release(torch)
    if not _builds_for(release, gpu):
        raise CompatError(_no_build_message(gpu_type.strip().lower(), gpu, release), "gpu_type")


def resolve_base_image(torch: str, python: str, gpu: bool, gpu_type: str | None = None) -> BaseImage:
    """Pick the base image, wheel index and CUDA for one (torch, python, GPU?) combination.

    CPU: ``python:<python>-slim`` and the CPU wheel index. GPU: the newest CUDA build of the
    release, on its nvidia/cuda cuDNN runtime image. With ``gpu_type`` set, the newest CUDA
    build that can drive that GPU instead (e.g. a V100 with torch 2.9.1 gets CUDA 12.8, not
    13.0, which dropped sm_70). Raises :class:`CompatError` for unknown or unsupported values.
    """
    release = _release(torch)
    python = _check_python(release, python)
    table = torch_compat_table()
    if not gpu:
        return BaseImage(
            image=f"python:{python}-slim",
            torch=release.torch,
            torch_index_url=table.cpu_index_url,
            cuda=None,
            python=python,
            python_install=None,
        )
    builds = release.cuda
    if gpu_type is not None:
        gpu_entry = _gpu(gpu_type)
        builds = _builds_for(release, gpu_entry)
        if not builds:
            message = _no_build_message(gpu_type.strip().lower(), gpu_entry, release)
            raise CompatError(message, "gpu_type")
    cuda = builds[-1].version
    image = table.cuda.versions[cuda]
    return BaseImage(
        image=image.image,
        torch=release.torch,
        torch_index_url=image.index_url,
        cuda=cuda,
        python=python,
        python_install="apt" if python == image.system_python else "uv",
    )


# --- Docker build pins -------------------------------------------------------------------------


class AptSnapshotSources(BaseModel):
    """One base distro's apt sources and the dated archive that replaces each of their URLs."""

    model_config = _STRICT

    sources: str  # the sources file of the base image
    since: str  # the first day its snapshot archive holds (ISO date)
    archives: list[tuple[str, str]]  # (archive URL in the sources, snapshot archive URL without the date)


class AptSnapshots(BaseModel):
    """`images.<role>.apt_snapshot`: per base distro, how apt is pointed at a dated archive."""

    model_config = _STRICT

    source: str = Field(alias="_source")
    distros: dict[str, AptSnapshotSources]


class AptIndexes(BaseModel):
    """Per base distro, the URLs of the package indexes its apt reads (`mlc images check-packages`)."""

    model_config = _STRICT

    source: str = Field(alias="_source")
    distros: dict[str, list[str]]


class AptPins(BaseModel):
    """`package -> version` per base distro (`debian-bookworm`, `ubuntu-24.04`)."""

    model_config = _STRICT

    source: str = Field(alias="_source")
    distros: dict[str, dict[str, str]]
    snapshots: AptSnapshots
    indexes: AptIndexes


class DockerBuildTable(BaseModel):
    """``data/docker_build.json``: pins the Dockerfiles need beyond the torch/CUDA table."""

    model_config = _STRICT

    source: str = Field(alias="_source")
    python_slim_suite: str
    uv_image: str
    apt: AptPins


@cache
def docker_build_table() -> DockerBuildTable:
    """The validated Docker build pins, read from package data once per process."""
    return DockerBuildTable.model_validate(_load_json("docker_build.json"))


# --- images mlc runs but does not build ----------------------------------------------------------


class PinnedImage(BaseModel):
    """An image by repository, tag (what a person reads) and digest (what the cluster pulls)."""

    model_config = _STRICT

    repository: str
    tag: str
    digest: str

    @field_validator("digest")
    @classmethod
    def _sha256(cls, value: str) -> str:
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", value):
            raise ValueError(f"digest must be sha256:<64 hex>, got {value!r}")
        return value

    @property
    def reference(self) -> str:
        """`repository:tag@digest`: the tag for people, the digest for the pull."""
        return f"{self.repository}:{self.tag}@{self.digest}"


class ServingImages(BaseModel):
    """``data/serving_images.json``: the serving engines' images, pinned by digest."""

    model_config = _STRICT

    source: str = Field(alias="_source")
    vllm: PinnedImage


@cache
def serving_images() -> ServingImages:
    """The validated serving-engine images, read from package data once per process."""
    return ServingImages.model_validate(_load_json("serving_images.json"))
