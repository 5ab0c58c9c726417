"""The mlc install commands as compiled, run for real: the serve builder's and CI's.

Each test compiles a copy of the churn example, takes the serve Dockerfile's builder command
that installs mlc and the pull-request workflow's "Install mlc" step as written, and runs them in
a fresh venv: from the wheel `mlc vendor` wrote into the repository (pip checks its sha256, a
changed byte is refused), and from a package index served on 127.0.0.1. Only what cannot be
here is substituted: the image's /tmp/mlc is a folder the test copies the wheel into, as the
Dockerfile's COPY does. `PIP_NO_DEPS` keeps the runs to mlc itself (its dependencies are the
lock's and pip's business, proven by test_docker_backend's builder test); the hash check is
pip's own either way.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pip
import pytest
import yaml

from dockerfile_instructions import builder_pip_commands, stages
from mlc.compiler import __version__
from mlc.compiler.pipeline import compile_spec_file
from spec_fixtures import REPO_ROOT, run_mlc

CHURN = REPO_ROOT / "examples" / "churn"
WHEEL = f"mlc-{__version__}-py3-none-any.whl"
IMAGE_WHEEL_FOLDER = "/tmp/mlc"


def _project(root: Path, runtime: str = "") -> Path:
    """A copy of churn, with `runtime` (YAML lines under `images:`) added to its spec."""
    shutil.copytree(CHURN, root, ignore=shutil.ignore_patterns("deploy", ".mlc", "mlc.lock"))
    spec = root / "mlproject.yaml"
    if runtime:
        spec.write_text(spec.read_text().replace("images:\n", f"images:\n{runtime}", 1))
    return spec


def _compiled(spec: Path) -> dict[str, str]:
    result = compile_spec_file(spec, "mlproject.yaml")
    assert result.ok, [d.render() for d in result.result.diagnostics]
    return {artifact.path: artifact.content.decode() for artifact in result.artifacts}


def _mlc_builder_command(artifacts: dict[str, str]) -> list[str]:
    """The serve builder's pip command that installs mlc, as compiled."""
    (command,) = [
        argv for argv in builder_pip_commands(artifacts["deploy/docker/serve.Dockerfile"]) if argv[-1].startswith("mlc")
    ]
    return command


def _install_steps(artifacts: dict[str, str]) -> list[dict]:
    """Every "Install mlc" step of the pull-request workflow, as compiled."""
    workflow = yaml.safe_load(artifacts[".github/workflows/mlc-pr.yaml"])
    return [step for job in workflow["jobs"].values() for step in job["steps"] if step.get("name") == "Install mlc"]


def _venv(root: Path) -> Path:
    """A fresh venv with this interpreter's pip copied in (seeding one with ensurepip takes seconds)."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    shutil.copytree(Path(pip.__file__).parent, site / "pip", ignore=shutil.ignore_patterns("__pycache__"))
    return venv


def _pip_env(venv: Path, **extra: str) -> dict[str, str]:
    """This machine's environment less its pip settings (its mirrors hold no mlc), the venv first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k != "VIRTUAL_ENV"}
    return env | {
        "PATH": f"{venv / 'bin'}{os.pathsep}{env['PATH']}",
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_DEPS": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        **extra,
    }


def _run_builder_command(command: list[str], image_root: Path, venv: Path, **env: str) -> subprocess.CompletedProcess:
    """Run the builder's `pip install ...` with the image's /tmp/mlc at `image_root`."""
    argv = [a.replace(f"file://{IMAGE_WHEEL_FOLDER}/", f"file://{image_root}/") for a in command[2:]]
    return subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *argv],
        capture_output=True,
        text=True,
        env=_pip_env(venv, **env),
        timeout=300,
    )


def _run_step(step: dict, folder: Path, venv: Path, **env: str) -> subprocess.CompletedProcess:
    """Run a workflow step's script with bash, as GitHub runs it, in the spec's folder."""
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", step["run"]],
        cwd=folder,
        capture_output=True,
        text=True,
        env=_pip_env(venv, **step.get("env", {}), **env),
        timeout=300,
    )


def _installed_version(venv: Path) -> str:
    probe = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import mlc.compiler, mlc.runtime.contract; print(mlc.compiler.__version__)",
        ],
        capture_output=True,
        text=True,
        cwd=venv,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert (venv / "bin" / "mlc-runtime").is_file()
    return probe.stdout.strip()


def _tampered(wheel: Path) -> None:
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0xFF
    wheel.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def vendored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """churn with the wheel `mlc vendor` wrote (the default `images.runtime`)."""
    spec = _project(tmp_path_factory.mktemp("vendored") / "churn")
    code, out, err = run_mlc("vendor", "-f", str(spec))
    assert code == 0, err
    assert f"wrote {spec.parent / 'wheels' / WHEEL}" in out or f"wrote wheels/{WHEEL}" in out
    return spec


def test_vendor_writes_the_same_bytes_again(vendored: Path, tmp_path: Path) -> None:
    wheel = vendored.parent / "wheels" / WHEEL
    again = _project(tmp_path / "churn")
    assert run_mlc("vendor", "-f", str(again))[0] == 0
    assert (again.parent / "wheels" / WHEEL).read_bytes() == wheel.read_bytes()
    assert run_mlc("vendor", "-f", str(again))[1].startswith("unchanged")


def test_the_builder_installs_the_vendored_wheel_with_its_sha256_checked(vendored: Path, tmp_path: Path) -> None:
    wheel = vendored.parent / "wheels" / WHEEL
    artifacts = _compiled(vendored)
    builder = stages(artifacts["deploy/docker/serve.Dockerfile"])[-2]
    assert f'COPY ["wheels/{WHEEL}", "{IMAGE_WHEEL_FOLDER}/"]' in builder
    command = _mlc_builder_command(artifacts)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert command[-1] == f"mlc[serve] @ file://{IMAGE_WHEEL_FOLDER}/{WHEEL}#sha256={digest}"

    image_root = tmp_path / "image-tmp-mlc"  # what COPY puts at /tmp/mlc
    image_root.mkdir()
    shutil.copy(wheel, image_root / WHEEL)
    venv = _venv(tmp_path)
    # No index at all: the wheel in the build context is the only source.
    installed = _run_builder_command(command, image_root, venv, PIP_NO_INDEX="1")
    assert installed.returncode == 0, installed.stderr[-3000:]
    assert _installed_version(venv) == __version__

    _tampered(image_root / WHEEL)
    fresh = _venv(tmp_path / "tampered")
    refused = _run_builder_command(command, image_root, fresh, PIP_NO_INDEX="1")
    assert refused.returncode != 0
    assert "DO NOT MATCH THE HASHES" in refused.stderr, refused.stderr[-2000:]
    assert not (fresh / "bin" / "mlc-runtime").exists()


def test_the_ci_step_installs_the_vendored_wheel_from_the_checkout(vendored: Path, tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    shutil.copytree(vendored.parent, checkout)
    steps = _install_steps(_compiled(checkout / "mlproject.yaml"))
    assert {step["env"]["MLC_REQUIREMENT"].split(" @ ")[0] for step in steps} == {"mlc", "mlc[runtime]"}
    step = next(step for step in steps if step["env"]["MLC_REQUIREMENT"].startswith("mlc[runtime]"))
    venv = _venv(tmp_path)
    installed = _run_step(step, checkout, venv, PIP_NO_INDEX="1")
    assert installed.returncode == 0, installed.stderr[-3000:]
    assert _installed_version(venv) == __version__

    _tampered(checkout / "wheels" / WHEEL)
    refused = _run_step(step, checkout, _venv(tmp_path / "tampered"), PIP_NO_INDEX="1")
    assert refused.returncode != 0
    assert "DO NOT MATCH THE HASHES" in refused.stderr, refused.stderr[-2000:]


@pytest.fixture
def package_index(vendored: Path, tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A PEP 503 simple index on 127.0.0.1 holding the vendored wheel; the paths it was asked for."""
    root = tmp_path / "index"
    (root / "simple" / "mlc").mkdir(parents=True)
    (root / "files").mkdir()
    wheel = vendored.parent / "wheels" / WHEEL
    shutil.copy(wheel, root / "files" / WHEEL)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    (root / "simple" / "mlc" / "index.html").write_text(
        f'<!DOCTYPE html><html><body><a href="../../files/{WHEEL}#sha256={digest}">{WHEEL}</a></body></html>\n'
    )
    requested: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            requested.append(self.path)

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple", requested
    finally:
        server.shutdown()
        server.server_close()


def test_an_index_source_installs_from_that_index_in_the_image_and_in_ci(
    package_index: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, requested = package_index
    spec = _project(tmp_path / "churn", f"  runtime:\n    index_url: {url}\n")
    artifacts = _compiled(spec)
    command = _mlc_builder_command(artifacts)
    assert command[2:] == ["--no-compile", "--index-url", url, f"mlc[serve]=={__version__}"]
    assert "wheels/" not in artifacts["deploy/docker/serve.Dockerfile.dockerignore"]

    venv = _venv(tmp_path)
    installed = _run_builder_command(command, tmp_path, venv)
    assert installed.returncode == 0, installed.stderr[-3000:]
    assert _installed_version(venv) == __version__
    assert f"/files/{WHEEL}" in requested

    requested.clear()
    step = _install_steps(artifacts)[0]
    assert step["env"]["PIP_INDEX_URL"] == url
    ci_venv = _venv(tmp_path / "ci")
    installed = _run_step(step, spec.parent, ci_venv)
    assert installed.returncode == 0, installed.stderr[-3000:]
    assert _installed_version(ci_venv) == __version__
    assert f"/files/{WHEEL}" in requested


def test_a_locked_index_install_checks_the_hashes_first(package_index: tuple[str, list[str]], tmp_path: Path) -> None:
    url, requested = package_index
    spec = _project(tmp_path / "churn", f"  runtime:\n    index_url: {url}\n")
    code, out, err = run_mlc("vendor", "-f", str(spec))
    assert code == 0, err
    lock = spec.parent / "mlc.runtime.lock"
    assert "wrote" in out and lock.is_file()
    artifacts = _compiled(spec)
    commands = builder_pip_commands(artifacts["deploy/docker/serve.Dockerfile"])
    locked = [argv for argv in commands if "--require-hashes" in argv and argv[-1].endswith("mlc.runtime.lock")]
    options = ["--no-compile", "--no-deps", "--require-hashes", "--index-url", url]
    assert locked == [["pip", "install", *options, "-r", f"{IMAGE_WHEEL_FOLDER}/mlc.runtime.lock"]]
    assert commands.index(locked[0]) + 1 == commands.index(_mlc_builder_command(artifacts))
    assert "!mlc.runtime.lock" in artifacts["deploy/docker/serve.Dockerfile.dockerignore"]

    image_root = tmp_path / "image-tmp-mlc"
    image_root.mkdir()
    shutil.copy(lock, image_root / lock.name)  # the Dockerfile's COPY
    venv = _venv(tmp_path)
    for argv in ([*locked[0][:-1], str(image_root / lock.name)], _mlc_builder_command(artifacts)):
        installed = _run_builder_command(argv, image_root, venv)
        assert installed.returncode == 0, installed.stderr[-3000:]
    assert _installed_version(venv) == __version__

    step = _install_steps(artifacts)[0]
    assert step["env"]["MLC_LOCKED_INSTALL"] == "--no-deps --require-hashes -r mlc.runtime.lock"
    ci_venv = _venv(tmp_path / "ci")
    installed = _run_step(step, spec.parent, ci_venv)
    assert installed.returncode == 0, installed.stderr[-3000:]
    assert _installed_version(ci_venv) == __version__

    # The index now serves other bytes under the same name: both refuse them before installing.
    served = next((tmp_path / "index" / "files").glob("*.whl"))
    _tampered(served)
    requested.clear()
    refused = _run_step(step, spec.parent, _venv(tmp_path / "ci-tampered"))
    assert refused.returncode != 0 and "DO NOT MATCH THE HASHES" in refused.stderr, refused.stderr[-2000:]
    fresh = _venv(tmp_path / "image-tampered")
    refused = _run_builder_command([*locked[0][:-1], str(image_root / lock.name)], image_root, fresh)
    assert refused.returncode != 0 and "DO NOT MATCH THE HASHES" in refused.stderr, refused.stderr[-2000:]
