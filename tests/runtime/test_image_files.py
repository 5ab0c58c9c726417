"""The serve image's packages, built as its Dockerfile builds them, proven by a real start.

The serve Dockerfile installs CPU torch and `mlc[serve]` with `pip install --no-compile`, then runs
`python -m mlc.runtime.image_files serve`: files no import reaches go, and bytecode is compiled
for the modules the start imports. Here the same commands build a fresh venv (torch from this
machine's wheel, `mlc[serve]` from a copy of this checkout; nothing else: no pandas, no full
MLflow), then a real `mlc-runtime serve` of that venv loads a model from a real MLflow tracking
server and answers a prediction. Every module the start imported must already have had its
bytecode: the start writes none into the venv.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from real_services import mlflow_server
from served_project import MODEL, post, running_server, toy_rows, tracking_uri, train_served_project

from mlc.runtime.image_files import UNUSED
from package_source import package_source_copy

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

TORCH = "torch==2.13.0"  # the Makefile's pin: a CPU wheel on this machine's disk


def bytecode_files(venv: Path) -> set[Path]:
    return set(venv.rglob("*.pyc"))


@pytest.fixture(scope="module")
def serve_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv built by the serve Dockerfile's builder commands (the package index is this machine's)."""
    root = tmp_path_factory.mktemp("serve-image")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    source = package_source_copy(root / "mlc-src")
    for requirement in (TORCH, f"{source}[serve]"):
        installed = subprocess.run(
            [python, "-m", "pip", "install", "--quiet", "--no-compile", requirement],
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert installed.returncode == 0, installed.stderr[-3000:]
    built = subprocess.run(
        [python, "-m", "mlc.runtime.image_files", "serve"], capture_output=True, text=True, timeout=900
    )
    assert built.returncode == 0, built.stderr[-3000:]
    assert "compiled" in built.stdout
    return venv


def test_the_serve_venv_has_only_the_serve_extra_and_no_unused_files(serve_venv: Path) -> None:
    site = next((serve_venv / "lib").glob("python3*/site-packages"))
    assert not [path for pattern in UNUSED for path in site.glob(pattern)]
    assert (site / "torch" / "bin" / "torch_shm_manager").exists()  # torch's import checks for it
    # What serving never imports stays out of the image: pandas (batch), scipy (train, drift),
    # the Kubernetes client (drift), full MLflow's server stack.
    for absent in ("pandas", "scipy", "kubernetes", "sqlalchemy", "flask"):
        assert not (site / absent).exists(), absent
    imported = subprocess.run(
        [
            str(serve_venv / "bin" / "python"),
            "-c",
            "import torch; print(torch.nn.Linear(2, 1)(torch.ones(1, 2)).shape)",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert imported.returncode == 0, imported.stderr[-2000:]
    assert "torch.Size([1, 1])" in imported.stdout


def test_a_real_start_finds_bytecode_for_every_module_it_imports(serve_venv: Path, tmp_path: Path) -> None:
    root = tmp_path / "project"
    config = train_served_project(root)
    compiled = bytecode_files(serve_venv)
    assert any("torch" in path.parts for path in compiled)

    with mlflow_server(tmp_path / "mlflow", tracking_uri(root), basic_auth=False) as tracking:
        served = json.loads(config.read_text()) | {"tracking_uri": tracking.url}
        (config.parent / "served.json").write_text(json.dumps(served))
        python = str(serve_venv / "bin" / "python")
        # The image sets PYTHONDONTWRITEBYTECODE; unset here, so a module the image has no
        # bytecode for shows up as a new .pyc in the venv.
        with running_server(root, config.parent / "served.json", python=python, PYTHONDONTWRITEBYTECODE="") as server:
            status, body = post(server.url + "/invocations", json.dumps({"dataframe_records": toy_rows(3, seed=5)}))
            assert status == 200, body
            assert len(body["predictions"]) == 3
            assert MODEL in server.log()

    written = sorted(str(path.relative_to(serve_venv)) for path in bytecode_files(serve_venv) - compiled)
    assert not written, f"the start compiled modules the image has no bytecode for: {written[:50]}"
