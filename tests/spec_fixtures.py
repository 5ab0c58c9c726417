"""Helpers shared by the tests: repository paths and a project directory factory.

(A module of its own rather than `conftest`: test folders have their own conftest.py files, and
importing a helper by the name `conftest` would pick whichever folder came first on sys.path.)
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
REFERENCE_SPEC = SHARED / "design" / "mlproject.reference.yaml"
# The smallest project that validates: a model trained from two local files.
MINIMAL_SPEC = """apiVersion: mlc/v1
kind: MLProject
metadata:
  name: demo
images:
  registry: ghcr.io/acme
data:
  train: {uri: data/train.csv}
  eval: {uri: data/eval.csv}
train:
  entrypoint: demo.model:train
"""


def make_project(root: Path, spec_text: str, package: str = "demo", lock: str = "numpy==2.0.0\n") -> Path:
    """Write `spec_text` as root/mlproject.yaml plus a requirements.lock and a train module."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "requirements.lock").write_text(lock)
    module = root / "src" / package
    module.mkdir(parents=True, exist_ok=True)
    (module / "__init__.py").write_text("")
    (module / "model.py").write_text("def train(ctx):\n    return None\n")
    spec = root / "mlproject.yaml"
    spec.write_text(spec_text)
    return spec


def run_mlc(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    """Run the `mlc` CLI in-process from `cwd`: exit code, stdout, stderr."""
    from click.testing import CliRunner

    from mlc.compiler.cli import main

    old = os.getcwd()
    try:
        if cwd:
            os.chdir(cwd)
        result = CliRunner().invoke(main, list(args))
    finally:
        os.chdir(old)
    return result.exit_code, result.stdout, result.stderr


def git_commit_empty(root: Path) -> str:
    """`git init` in `root` and one empty commit (training names its run after the commit); its sha."""
    identity = ["-c", "user.name=t", "-c", "user.email=t@e"]
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), *identity, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    return subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
