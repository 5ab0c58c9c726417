"""Shared fixtures of the plan/apply/bot tests: a project in a real git repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

SPEC = """\
apiVersion: mlc/v1
kind: MLProject
metadata:
  name: {name}
code:
  python: "3.11"
  requirements: requirements.lock
  source: src/
  framework:
    torch: "2.5.1"
images:
  registry: ghcr.io/acme
data:
  train:
    uri: s3://acme-ml/demo/train.csv
  eval:
    uri: s3://acme-ml/demo/eval.csv
train:
  entrypoint: pkg.model:train
  params: {{epochs: 5}}
  resources: {{cpu: 2, memory: 4Gi, gpus: 0}}
serve:
  engine: runtime
  replicas: {{min: 1, max: 3}}
  autoscale: {{on: cpu}}
environments:
  staging:
    serve: {{replicas: {{min: 1, max: 2}}}}
  production:
    serve: {{replicas: {{min: {replicas}, max: 30}}}}
gitops:
  path: deploy
"""


def write_project(directory: Path, name: str = "demo", replicas: int = 3, serve: bool = True) -> Path:
    """A valid project in `directory`; returns the spec path."""
    (directory / "src" / "pkg").mkdir(parents=True, exist_ok=True)
    (directory / "src" / "pkg" / "__init__.py").write_text("")
    (directory / "src" / "pkg" / "model.py").write_text("def train(ctx):\n    return None\n")
    (directory / "requirements.lock").write_text("numpy==2.1.0\n")
    text = SPEC.format(name=name, replicas=replicas)
    if not serve:
        text = _without_serve(text)
    spec = directory / "mlproject.yaml"
    spec.write_text(text)
    return spec


def _without_serve(text: str) -> str:
    lines = text.splitlines(keepends=True)
    start = lines.index("serve:\n")
    kept = lines[:start] + lines[start + 4 :]
    # the environment overlays only touch serve: give them something else to say
    env = kept.index("environments:\n")
    overlays = ["  staging:\n", "    metadata: {labels: {tier: staging}}\n"]
    overlays += ["  production:\n", "    metadata: {labels: {tier: production}}\n"]
    return "".join(kept[: env + 1] + overlays + kept[env + 5 :])


def git(cwd: Path, *args: str) -> str:
    """Run git in `cwd` and return its stdout."""
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def git_bytes(cwd: Path, *args: str) -> bytes:
    """Run git in `cwd` and return its stdout as bytes (for binary files)."""
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True).stdout


def init_repo(directory: Path) -> Path:
    """A git repository with an identity and one initial commit."""
    directory.mkdir(parents=True, exist_ok=True)
    git(directory, "init", "-q", "-b", "main")
    git(directory, "config", "user.name", "Test User")
    git(directory, "config", "user.email", "test@example.com")
    git(directory, "config", "commit.gpgsign", "false")
    (directory / "README.md").write_text("project\n")
    git(directory, "add", "README.md")
    git(directory, "commit", "-q", "-m", "initial")
    return directory


def committed_project_repo(directory: Path) -> Path:
    """A git repository holding one project whose files are committed."""
    root = init_repo(directory)
    write_project(root)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "project")
    return root
