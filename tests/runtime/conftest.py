"""Shared fixtures for runtime tests: small datasets written on the fly, runtime configs, the CLI.

Drift tests use `write_parquet`, `columns` and `runtime_config`; train/gate/validate-data tests use
`write_config`, `run_runtime`, `runtime_command` and `toy` (a project with data and an entrypoint).
"""

from __future__ import annotations

import copy
import json
import os
import random
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from served_project import RUNTIME_CLI, TOY_CONFIG


@pytest.fixture
def write_parquet(tmp_path: Path) -> Callable[..., Path]:
    """Write columns (name -> list/array) to a Parquet file in tmp_path; returns its path."""
    counter = iter(range(1_000_000))

    def write(columns: dict, name: str | None = None) -> Path:
        path = tmp_path / (name or f"data{next(counter)}.parquet")
        pq.write_table(pa.table(columns), path)
        return path

    return write


def make_columns(n: int, seed: int, shift: float = 0.0, shifted: tuple[str, ...] = (), new_level: bool = False) -> dict:
    """3 numeric + 2 categorical columns; `shifted` columns get a mean shift / level swap."""
    rng = np.random.default_rng(seed)
    columns = {}
    for name in ("x0", "x1", "x2"):
        columns[name] = rng.normal(size=n) + (shift if name in shifted else 0.0)
    levels, probs = ["a", "b", "c"], [0.5, 0.3, 0.2]
    if "c0" in shifted:
        probs = [0.3, 0.3, 0.4]
    c0 = rng.choice(levels, size=n, p=probs).astype(object)
    if new_level:
        c0[: n // 10] = "brand-new"
    columns["c0"] = c0.tolist()
    columns["b0"] = (rng.random(n) < 0.3).tolist()
    return columns


@pytest.fixture
def columns() -> Callable[..., dict]:
    return make_columns


@pytest.fixture
def runtime_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a compiler runtime config (format_version 1, the fields drift reads)."""

    def write(current_uri: str, tracking_uri: str = "http://127.0.0.1:1", on_drift: str = "alert") -> Path:
        import json

        config = {
            "format_version": 1,
            "project": "churn",
            "environment": "prod",
            "spec_digest": "sha256:" + "0" * 64,
            "namespace": "ml-churn",
            "tracking_uri": tracking_uri,
            "registered_model": "churn",
            "aliases": {"challenger": "challenger", "champion": "champion", "previous": "previous"},
            "contract": {
                "target": "label",
                "features": {
                    "x0": {"type": "float"},
                    "x1": {"type": "float"},
                    "x2": {"type": "float"},
                    "c0": {"type": "category"},
                    "b0": {"type": "bool"},
                },
            },
            "drift": {
                "current": {"uri": current_uri, "window_seconds": 86400},
                "method": "auto",
                "threshold": {"psi": 0.2, "share": 0.5},
                "on_drift": on_drift,
                "retrain_cronjob": "churn-prod-retrain",
            },
            "metrics": {
                "pushgateway": "http://pushgateway:9091",
                "push_job": "mlc-drift",
                "grouping": {"project": "churn", "environment": "prod"},
            },
            "exit_codes": {"config_error": 78},
        }
        path = tmp_path / "runtime-config.json"
        path.write_text(json.dumps(config))
        return path

    return write


BASE_CONFIG: dict[str, Any] = {
    **TOY_CONFIG,
    "data": {"train": {"uri": "data/train.csv", "format": "csv"}, "eval": {"uri": "data/eval.csv", "format": "csv"}},
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


TOY_ENTRYPOINT = """
import json, os, time
from pathlib import Path

import torch


def train(ctx):
    x, y = ctx.load_training_data()
    state = ctx.load_checkpoint() or {"epoch": 0}
    record = {"rows": len(x), "params": ctx.params, "smoke": ctx.smoke, "rank": ctx.rank,
              "world_size": ctx.world_size, "task": ctx.task, "device": str(ctx.device),
              "start_epoch": state["epoch"], "columns": ctx.preprocessor.output_names}
    out = Path("out")  # the working directory is the project folder
    (out / f"record.{ctx.rank}.json").write_text(json.dumps(record))
    mode = ctx.params.get("mode", "fit")
    if mode == "none":
        return None
    if mode == "raise":
        raise RuntimeError("boom in user code")
    if mode == "tuple":
        return torch.nn.Linear(x.shape[1], 1), {"loss": 0.5}
    model = torch.nn.Linear(x.shape[1], 1)
    if "model" in state:
        model.load_state_dict(state["model"])
    trained = torch.nn.parallel.DistributedDataParallel(model) if ctx.distributed else model
    xs, ys = ctx.load_training_data(shard=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=ctx.params["lr"])
    for epoch in range(state["epoch"], ctx.params["epochs"]):
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(trained(xs).reshape(-1), ys)
        loss.backward()
        optimizer.step()
        ctx.log_metric("loss", loss.item(), step=epoch)
        ctx.save_checkpoint({"epoch": epoch + 1, "model": model.state_dict()})
        if mode == "slow":
            (out / "epoch").write_text(str(epoch))
            time.sleep(0.3)
        if ctx.should_stop:
            return None
    (out / f"weights.{ctx.rank}.json").write_text(json.dumps(model.weight.tolist()))
    return trained
"""

TRAIN_SECTION = {
    "entrypoint": "toy.train:train",
    "params": {"epochs": 40, "lr": 0.5},
    "seed": 3,
    "checkpoint": {"uri": "checkpoints/", "every": "epoch"},
    "timeout_seconds": 600,
    "nodes": 1,
    "gpus_per_node": 0,
    "spot": False,
}


def toy_rows(count: int, seed: int) -> str:
    rng = random.Random(seed)
    lines = ["x,n,color,label"]
    for _ in range(count):
        x = round(rng.uniform(0, 10), 3)
        n = "" if rng.random() < 0.1 else str(rng.randint(0, 5))
        lines.append(f"{x},{n},{rng.choice(['red', 'blue'])},{int(x > 5)}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def toy(tmp_path: Path, write_config):
    """A project folder: data, src/toy/train.py, and `config(**train_overrides) -> config path`."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data/train.csv").write_text(toy_rows(600, seed=1))
    (tmp_path / "data/eval.csv").write_text(toy_rows(200, seed=2))
    (tmp_path / "src/toy").mkdir(parents=True)
    (tmp_path / "src/toy/__init__.py").write_text("")
    (tmp_path / "src/toy/train.py").write_text(TOY_ENTRYPOINT)
    (tmp_path / "out").mkdir()

    def config(evaluate: dict | None = None, **train: object) -> Path:
        return write_config(train={**TRAIN_SECTION, **train}, evaluate=evaluate)

    return tmp_path, config
