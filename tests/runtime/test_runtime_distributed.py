"""Data-parallel training under real torchrun (gloo, 2 processes), the pods' exact command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import mlflow
from mlflow import MlflowClient


def test_torchrun_two_processes_train_one_model(toy) -> None:
    root, config = toy
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | {"OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    command += ["-m", "mlc.runtime.cli", "train", "--config", str(config())]  # as training_command() emits
    done = subprocess.run(command, cwd=root, env=environ, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    records = [json.loads((root / f"out/record.{rank}.json").read_text()) for rank in (0, 1)]
    assert [(r["rank"], r["world_size"], r["device"]) for r in records] == [(0, 2, "cpu"), (1, 2, "cpu")]
    # Gradients were all-reduced: both ranks end with the same weights from different shards.
    weights = [json.loads((root / f"out/weights.{rank}.json").read_text()) for rank in (0, 1)]
    assert weights[0] == weights[1], done.stderr[-3000:]
    assert done.stdout.count("registered toy-model version") == 1, done.stdout  # only rank 0 logs and registers
    mlflow.set_tracking_uri(f"sqlite:///{root}/.mlc/mlflow.db")
    client = MlflowClient()
    (version,) = client.search_model_versions("name='toy-model'")
    (run,) = client.search_runs([client.get_experiment_by_name("toy").experiment_id])
    assert version.run_id == run.info.run_id and run.data.tags["mlc.world_size"] == "2"
    assert client.get_model_version_by_alias("toy-model", "challenger").version == version.version
