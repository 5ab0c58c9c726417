"""Runtime test fixtures: a runtime config on disk and the `mlc-runtime` CLI as a subprocess."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

RUNTIME_CLI = [sys.executable, "-c", "from mlc.runtime.cli import main; main()"]

BASE_CONFIG: dict[str, Any] = {
    "format_version": 1,
    "project": "toy",
    "environment": "test",
    "namespace": "ml-toy",
    "spec_digest": "sha256:" + "0" * 64,
    "compiler_version": "0.1.0",
    "tracking_uri": "sqlite:///.mlc/mlflow.db",
    "registered_model": "toy-model",
    "aliases": {"challenger": "challenger", "champion": "champion", "previous": "previous"},
    "data": {"train": {"uri": "data/train.csv", "format": "csv"}, "eval": {"uri": "data/eval.csv", "format": "csv"}},
    "contract": {
        "target": "label",
        "features": {
            "x": {"type": "float", "min": 0.0, "max": 10.0, "nullable": False, "values": None},
            "n": {"type": "int", "min": 0.0, "max": None, "nullable": True, "values": None},
            "color": {"type": "category", "min": None, "max": None, "nullable": False, "values": ["red", "blue"]},
        },
    },
    "train": None,
    "evaluate": None,
    "exit_codes": {"config_error": 78},
}


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`overrides` deep-merged over a copy of `base` (a None value replaces)."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """`write_config(**overrides) -> path`: the base config with overrides, in tmp_path/.mlc/."""

    def factory(**overrides: Any) -> Path:
        path = tmp_path / ".mlc" / "test" / "runtime-config.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(merge(BASE_CONFIG, overrides), indent=2))
        return path

    return factory


@pytest.fixture
def runtime_command() -> list[str]:
    """The `mlc-runtime` command line, for tests that drive the process themselves (signals)."""
    return list(RUNTIME_CLI)


@pytest.fixture
def run_runtime() -> Callable[..., subprocess.CompletedProcess[str]]:
    """`run_runtime(*args, cwd=..., env=...)`: `mlc-runtime` in a subprocess, this interpreter and PYTHONPATH."""

    def runner(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | (env or {})
        return subprocess.run([*RUNTIME_CLI, *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=600)

    return runner
