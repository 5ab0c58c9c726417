"""The churn example end to end through the compiler's `mlc run`: train, then gate and promote."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
from mlflow import MlflowClient

REPO = Path(__file__).resolve().parents[2]
MLC = [sys.executable, "-c", "from mlc.compiler.cli import main; main()"]
RUNTIME = [sys.executable, "-c", "from mlc.runtime.cli import main; main()"]


def test_mlc_run_train_then_gate_promotes_the_first_model(tmp_path: Path) -> None:
    project = tmp_path / "churn"
    shutil.copytree(REPO / "examples" / "churn", project)
    # `mlc run` starts `mlc-runtime` from PATH: this interpreter's, importing this checkout.
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environ['PATH']}"

    def mlc(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*MLC, *args], cwd=project, env=environ, capture_output=True, text=True, timeout=600)

    trained = mlc("run", "train")  # the base: local data (staging and production read S3)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "registered churn-classifier version 1 as @challenger" in trained.stdout
    mlflow.set_tracking_uri(f"sqlite:///{project}/.mlc/mlflow.db")
    client = MlflowClient()
    version = client.get_model_version_by_alias("churn-classifier", "challenger")
    assert client.get_run(version.run_id).data.tags["mlc.environment"] == "local"

    gated = mlc("run", "gate", "--report", "gate.md", "--promote")
    assert gated.returncode == 0, gated.stdout + gated.stderr[-3000:]
    assert "promoted churn-classifier version 1 to @champion" in gated.stdout
    assert "## Gate passed" in (project / "gate.md").read_text()
    assert client.get_registered_model("churn-classifier").aliases == {"challenger": 1, "champion": 1}
    assert (project / ".mlc" / "artifacts").is_dir()  # the local store keeps its artifacts under .mlc/

    # Training logged the drift reference profile with the model: the champion's drift check reads it.
    drift = subprocess.run(
        [*RUNTIME, "drift", "--model", "models:/churn-classifier@champion", "--data", "data/live.csv"],
        cwd=project,
        env={**environ, "MLFLOW_TRACKING_URI": "sqlite:///.mlc/mlflow.db"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert drift.returncode in (0, 1), drift.stderr  # 0 no drift, 1 drift: either way a verdict
    assert "1000 current rows vs 4000 reference rows" in drift.stdout  # the reference is the training data
