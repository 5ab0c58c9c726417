"""Golden tests for base-image resolution and a consistency check over the two data tables."""

from __future__ import annotations

import re

import pytest

from mlc.compiler.compat import (
    BaseImage,
    CompatError,
    check_gpu_type,
    gpu_table,
    known_gpu_types,
    resolve_base_image,
    supported_torch_versions,
    torch_compat_table,
    version_key,
)

CU = "https://download.pytorch.org/whl/"

# One row per torch minor line: (torch, newest CUDA, its image). Python 3.11 everywhere, which
# no CUDA image ships, so python_install is always "uv" here.
GPU_GOLDEN = [
    ("2.4.1", "12.4", "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04"),
    ("2.5.1", "12.4", "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04"),
    ("2.6.0", "12.6", "nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04"),
    ("2.7.1", "12.8", "nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04"),
    ("2.8.0", "12.9", "nvidia/cuda:12.9.1-cudnn-runtime-ubuntu24.04"),
    ("2.9.1", "13.0", "nvidia/cuda:13.0.3-cudnn-runtime-ubuntu24.04"),
    ("2.10.0", "13.0", "nvidia/cuda:13.0.3-cudnn-runtime-ubuntu24.04"),
    ("2.11.0", "13.0", "nvidia/cuda:13.0.3-cudnn-runtime-ubuntu24.04"),
    ("2.12.1", "13.2", "nvidia/cuda:13.2.1-cudnn-runtime-ubuntu24.04"),
    ("2.13.0", "13.2", "nvidia/cuda:13.2.1-cudnn-runtime-ubuntu24.04"),
    ("2.14.1", "13.2", "nvidia/cuda:13.2.1-cudnn-runtime-ubuntu24.04"),
    ("2.15.0", "13.2", "nvidia/cuda:13.2.1-cudnn-runtime-ubuntu24.04"),
]


@pytest.mark.parametrize(("torch", "cuda", "image"), GPU_GOLDEN)
def test_gpu_resolves_to_newest_cuda(torch: str, cuda: str, image: str) -> None:
    index = CU + "cu" + cuda.replace(".", "")
    assert resolve_base_image(torch, "3.11", gpu=True) == BaseImage(
        image=image,
        torch=torch,
        torch_index_url=index,
        cuda=cuda,
        python="3.11",
        python_install="uv",
    )


@pytest.mark.parametrize(("torch", "_cuda", "_image"), GPU_GOLDEN)
def test_cpu_resolves_to_slim_python(torch: str, _cuda: str, _image: str) -> None:
    assert resolve_base_image(torch, "3.11", gpu=False) == BaseImage(
        image="python:3.11-slim",
        torch=torch,
        torch_index_url=CU + "cpu",
        cuda=None,
        python="3.11",
        python_install=None,
    )


@pytest.mark.parametrize(
    ("torch", "python", "install"),
    [
        ("2.5.1", "3.10", "apt"),  # Ubuntu 22.04 image ships 3.10
        ("2.5.1", "3.12", "uv"),
        ("2.9.1", "3.12", "apt"),  # Ubuntu 24.04 image ships 3.12
        ("2.9.1", "3.13", "uv"),
    ],
)
def test_python_install_follows_the_image_ubuntu(torch: str, python: str, install: str) -> None:
    assert resolve_base_image(torch, python, gpu=True).python_install == install


@pytest.mark.parametrize(
    ("torch", "gpu_type", "cuda"),
    [
        ("2.9.1", "nvidia-v100", "12.8"),  # cu130 has no sm_70, cu128 still does in 2.9
        ("2.11.0", "nvidia-v100", "12.6"),  # 2.11 dropped sm_70 from cu128 too
        ("2.8.0", "nvidia-v100", "12.6"),  # conservative: sources disagree on 2.8 cu128/cu129
        ("2.14.1", "nvidia-p100", "12.6"),
        ("2.7.1", "nvidia-b200", "12.8"),
        ("2.7.1", "nvidia-v100", "12.6"),
        ("2.8.0", "nvidia-b300", "12.9"),  # sm_103 needs CUDA >= 12.9
        ("2.4.0", "nvidia-l4", "12.4"),  # sm_89 runs sm_86 kernels
        ("2.14.1", "nvidia-h100-80gb", "13.2"),
        ("2.15.0", "nvidia-rtx-pro-6000", "13.2"),
    ],
)
def test_gpu_type_narrows_cuda_choice(torch: str, gpu_type: str, cuda: str) -> None:
    assert resolve_base_image(torch, "3.11", gpu=True, gpu_type=gpu_type).cuda == cuda


@pytest.mark.parametrize(
    ("torch", "message"),
    [
        ("2.5.3", "torch 2.5.3 is not in the compatibility table; nearest supported: 2.5.1, 2.6.0"),
        ("2.3.1", "torch 2.3.1 is not in the compatibility table; nearest supported: 2.4.0"),
        ("2.99.0", "torch 2.99.0 is not in the compatibility table; nearest supported: 2.15.0"),
        (
            "2.13.1",
            "torch 2.13.1 is not in the compatibility table; nearest supported: 2.13.0, 2.14.0",
        ),
        ("2.5", "torch 2.5 must name a release; supported 2.5.x: 2.5.0, 2.5.1"),
        (
            "latest",
            "torch version 'latest' is not a release number like 2.5.1 (supported: 2.4.0 to 2.15.0)",
        ),
    ],
)
def test_unknown_torch_names_nearest(torch: str, message: str) -> None:
    with pytest.raises(CompatError) as raised:
        resolve_base_image(torch, "3.11", gpu=True)
    assert str(raised.value) == message
    assert raised.value.field == "torch"


@pytest.mark.parametrize(
    ("torch", "python", "message"),
    [
        ("2.4.1", "3.13", "torch 2.4.1 supports python 3.8, 3.9, 3.10, 3.11, 3.12; got 3.13"),
        ("2.15.0", "3.10", "torch 2.15.0 supports python 3.11, 3.12, 3.13, 3.14, 3.15; got 3.10"),
        ("2.11.0", "3.9", "torch 2.11.0 supports python 3.10, 3.11, 3.12, 3.13, 3.14; got 3.9"),
        ("2.6.0", "3.11.7", "python '3.11.7' must be MAJOR.MINOR, like 3.11"),
    ],
)
def test_python_mismatch_names_supported(torch: str, python: str, message: str) -> None:
    with pytest.raises(CompatError) as raised:
        resolve_base_image(torch, python, gpu=False)
    assert str(raised.value) == message
    assert raised.value.field == "python"


@pytest.mark.parametrize(
    ("gpu_type", "torch", "message"),
    [
        (
            "nvidia-b200",
            "2.5.1",
            "gpu_type nvidia-b200 (sm_100, Blackwell) needs torch >= 2.7.0 with CUDA >= 12.8; "
            "torch 2.5.1 only has CUDA 11.8, 12.1, 12.4 builds",
        ),
        (
            "nvidia-b200",
            "2.6.0",
            "gpu_type nvidia-b200 (sm_100, Blackwell) needs torch >= 2.7.0 with CUDA >= 12.8; "
            "torch 2.6.0 only has CUDA 11.8, 12.4, 12.6 builds",
        ),
        (
            "nvidia-v100",
            "2.15.0",
            "gpu_type nvidia-v100 (sm_70, Volta) is not supported by torch 2.15.0: its CUDA "
            "13.0, 13.2 builds dropped sm_70; the last torch for it is 2.14.1 (CUDA 12.6)",
        ),
        (
            "nvidia-p100",
            "2.15.0",
            "gpu_type nvidia-p100 (sm_60, Pascal) is not supported by torch 2.15.0: its CUDA "
            "13.0, 13.2 builds dropped sm_60; the last torch for it is 2.14.1 (CUDA 12.6)",
        ),
    ],
)
def test_arch_conflicts_teach_the_fix(gpu_type: str, torch: str, message: str) -> None:
    with pytest.raises(CompatError) as raised:
        check_gpu_type(gpu_type, torch)
    assert str(raised.value) == message
    assert raised.value.field == "gpu_type"
    with pytest.raises(CompatError):
        resolve_base_image(torch, "3.11", gpu=True, gpu_type=gpu_type)


def test_unknown_gpu_type_suggests_and_lists() -> None:
    with pytest.raises(CompatError) as raised:
        check_gpu_type("nvidia-h100", "2.9.1")
    message = str(raised.value)
    assert message.startswith("unknown gpu_type 'nvidia-h100'; did you mean nvidia-h100-80gb? ")
    assert message.endswith("known: " + ", ".join(known_gpu_types()))
    assert "\n" not in message


@pytest.mark.parametrize("gpu_type", ["nvidia-t4", "nvidia-a100-80gb", "NVIDIA-L4", "nvidia-h200"])
def test_current_gpus_pass_with_current_torch(gpu_type: str) -> None:
    check_gpu_type(gpu_type, "2.14.1")


def test_supported_versions_cover_every_release_since_2_4() -> None:
    versions = supported_torch_versions()
    for expected in [
        "2.4.0",
        "2.4.1",
        "2.5.0",
        "2.5.1",
        "2.6.0",
        "2.7.0",
        "2.7.1",
        "2.8.0",
        "2.9.0",
        "2.9.1",
        "2.10.0",
        "2.13.0",
        "2.14.1",
    ]:
        assert expected in versions
    assert versions == sorted(versions, key=version_key)


def test_messages_carry_no_position() -> None:
    # The caller prefixes "mlproject.yaml:LINE:COL: "; a position in the message would double it.
    for call in [
        lambda: resolve_base_image("2.5.3", "3.11", gpu=True),
        lambda: resolve_base_image("2.5.1", "3.13", gpu=True),
        lambda: check_gpu_type("nvidia-b200", "2.5.1"),
        lambda: check_gpu_type("tpu-v5", "2.5.1"),
    ]:
        with pytest.raises(CompatError) as raised:
            call()
        assert not re.search(r"mlproject\.yaml|:\d+:\d+", str(raised.value))


# --- consistency of the data: a bad edit to the JSON must fail here -------------------------


def test_every_cuda_build_has_image_and_index() -> None:
    table = torch_compat_table()
    referenced = {b.version for r in table.releases.versions for b in r.cuda}
    assert referenced == set(table.cuda.versions), "unused or missing CUDA image entries"
    for version, image in table.cuda.versions.items():
        assert image.index_url == CU + "cu" + version.replace(".", "")
        # The tag's CUDA must be the entry's CUDA, and cuDNN 8 tags are spelled "cudnn8".
        assert image.image.startswith(f"nvidia/cuda:{version}.")
        assert ("-cudnn8-" in image.image) == (image.cudnn == "8")
        assert image.image.endswith(f"-ubuntu{image.ubuntu}")
        assert image.system_python == {"22.04": "3.10", "24.04": "3.12"}[image.ubuntu]


def test_versions_are_sorted_and_unique() -> None:
    table = torch_compat_table()
    torches = [r.torch for r in table.releases.versions]
    assert torches == sorted(set(torches), key=version_key)
    for release in table.releases.versions:
        assert release.python == sorted(set(release.python), key=version_key)
        cudas = [b.version for b in release.cuda]
        assert cudas == sorted(set(cudas), key=version_key)
        assert release.cuda, f"torch {release.torch} has no CUDA build"


def test_every_gpu_capability_has_min_cuda() -> None:
    table = gpu_table()
    for name, gpu in table.gpus.types.items():
        capability = table.capabilities.versions[gpu.capability]
        assert re.fullmatch(r"\d+\.\d+", capability.min_cuda), name
        assert gpu.node_labels.gpu_product, f"{name} has no nvidia.com/gpu.product value"
        assert name == name.lower() and name.startswith("nvidia-")


def test_capability_torch_bounds_match_the_torch_table() -> None:
    # min_torch/last_torch in gpu_types.json are written down by hand; they must agree with
    # what the torch table says (null meaning "every release in the table").
    versions = supported_torch_versions()
    for sm, capability in gpu_table().capabilities.versions.items():
        gpus = [n for n, g in gpu_table().gpus.types.items() if g.capability == sm]
        assert gpus, f"{sm} has no gpu type"
        fitting = []
        for torch in versions:
            try:
                check_gpu_type(gpus[0], torch)
            except CompatError:
                continue
            fitting.append(torch)
        assert fitting, sm
        assert fitting == versions[versions.index(fitting[0]) : versions.index(fitting[-1]) + 1]
        assert (capability.min_torch or versions[0]) == fitting[0], sm
        assert (capability.last_torch or versions[-1]) == fitting[-1], sm
