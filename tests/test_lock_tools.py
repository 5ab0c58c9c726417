"""Locks made by the tools the docs name (`uv pip compile`, pip-tools' `pip-compile`), for real:
they validate as written, and pip installs them the way the image's builder stage does.

Hermetic: the packages come from a folder of wheels this test writes (no index is contacted),
which is also what makes pip-compile show its known trap: it copies pip's index options into the
lock (`--find-links <this machine's folder>`), which the image build cannot see.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mlc.compiler.pipeline import resolve_spec_file
from mlc.compiler.validate.project_files import requirements_use_hashes
from spec_fixtures import MINIMAL_SPEC, make_project

BIN = Path(sys.executable).parent


def write_wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> None:
    """A minimal pure-Python wheel (one module), enough for resolvers and pip to install."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": f"VERSION = {version!r}\n",
        f"{dist}/METADATA": "Metadata-Version: 2.1\n"
        + f"Name: {name}\nVersion: {version}\n"
        + "".join(f"Requires-Dist: {r}\n" for r in requires),
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }

    def record_line(path: str, text: str) -> str:
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        return f"{path},sha256={digest},{len(text.encode())}\n"

    files[f"{dist}/RECORD"] = "".join(record_line(p, t) for p, t in files.items()) + f"{dist}/RECORD,,\n"
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as wheel:
        for path, text in files.items():
            wheel.writestr(path, text)


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    """A find-links folder: `appkit` needs `basekit`, of which two versions exist."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    write_wheel(folder, "appkit", "1.2.0", ("basekit>=2",))
    write_wheel(folder, "basekit", "1.0.0")
    write_wheel(folder, "basekit", "2.1.0")
    return folder


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.skip(f"{name} is not installed (the dev extra installs it)")
    return str(path)


def run(*command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # pip-compile reads pip's configuration (files and PIP_* variables): none, so this machine's
    # indexes stay out of the locks and only the test's folder is used.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, UV_NO_CONFIG="1")
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def validate(tmp_path: Path, lock: str) -> list[str]:
    spec = make_project(tmp_path / "project", MINIMAL_SPEC, lock=lock)
    return [d.render() for d in resolve_spec_file(spec, "mlproject.yaml").diagnostics]


def installed_from(lock: Path, wheels: Path, target: Path) -> set[str]:
    """Install `lock` as the builder stage does (hash-checked when it has hashes): what landed."""
    hashes = ["--require-hashes"] if requirements_use_hashes(lock) else []
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheels)]
    run(*command, *hashes, "--target", str(target), "-r", str(lock), cwd=lock.parent)
    return {p.name for p in target.glob("*.dist-info")}


@pytest.mark.parametrize("hashes", [False, True], ids=["plain", "hashed"])
def test_a_uv_lock_validates_and_installs(tmp_path: Path, wheels: Path, hashes: bool) -> None:
    (tmp_path / "requirements.in").write_text("appkit\n")
    options = ["--generate-hashes"] if hashes else []
    run(
        tool("uv"), "pip", "compile", "requirements.in", "-o", "requirements.lock", "--no-index",
        "--find-links", str(wheels), "--python-version", "3.11", *options, "-q", cwd=tmp_path,
    )  # fmt: skip
    lock = tmp_path / "requirements.lock"
    assert "basekit==2.1.0" in lock.read_text()
    assert validate(tmp_path, lock.read_text()) == []
    assert requirements_use_hashes(lock) is hashes
    assert installed_from(lock, wheels, tmp_path / "site") == {"appkit-1.2.0.dist-info", "basekit-2.1.0.dist-info"}


def test_a_pip_compile_lock_names_this_machine_unless_told_not_to(tmp_path: Path, wheels: Path) -> None:
    """pip-compile writes the index options it was given into the lock; the validator refuses them
    at their line with the flags that leave them out, and the lock made with those validates."""
    (tmp_path / "requirements.in").write_text("appkit\n")
    compile_lock = [tool("pip-compile"), "-q", "--no-index", "--find-links", str(wheels), "requirements.in"]
    run(*compile_lock, "-o", "as-is.lock", cwd=tmp_path)
    as_is = (tmp_path / "as-is.lock").read_text()
    found = validate(tmp_path, as_is)
    line = next(n for n, text in enumerate(as_is.splitlines(), start=1) if text.startswith("--find-links"))
    assert [f.splitlines()[0] for f in found] == [
        f"requirements.lock:{line}:1: error: --find-links names a location on this machine, which the image "
        "build cannot see"
    ]
    assert "--no-emit-index-url --no-emit-find-links" in found[0]

    run(
        *compile_lock,
        "--no-emit-index-url",
        "--no-emit-find-links",
        "--generate-hashes",
        "-o",
        "clean.lock",
        cwd=tmp_path,
    )
    lock = tmp_path / "clean.lock"
    assert validate(tmp_path, lock.read_text()) == []
    assert requirements_use_hashes(lock)
    assert installed_from(lock, wheels, tmp_path / "site") == {"appkit-1.2.0.dist-info", "basekit-2.1.0.dist-info"}
