"""`mlc-runtime train`: a real entrypoint, real torch, a real MLflow sqlite store, real signals."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from spec_fixtures import git_commit_empty


def client_for(root: Path) -> MlflowClient:
    mlflow.set_tracking_uri(f"sqlite:///{root}/.mlc/mlflow.db")
    return MlflowClient()


def record(root: Path, rank: int = 0) -> dict:
    return json.loads((root / f"out/record.{rank}.json").read_text())


def test_train_logs_lineage_and_registers_one_pyfunc_model(toy, run_runtime) -> None:
    root, config = toy
    git_commit_empty(root)
    done = run_runtime("train", "--config", str(config()), cwd=root)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("registered toy-model version 1 as @challenger (MLflow run ")
    seen = record(root)
    assert (seen["rows"], seen["task"], seen["device"], seen["world_size"], seen["start_epoch"]) == (
        600,
        "binary",
        "cpu",
        1,
        0,
    )
    assert seen["columns"] == ["x", "n", "color=red", "color=blue"]  # the contract's order; closed category values

    client = client_for(root)
    version = client.get_model_version_by_alias("toy-model", "challenger")
    run = client.get_run(version.run_id)
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert run.data.tags["mlflow.source.git.commit"] == head
    assert run.data.tags["mlc.spec_digest"] == "sha256:" + "0" * 64
    assert run.data.tags["mlc.environment"] == "test"
    assert (
        run.data.tags["mlc.data_digest"]
        == "sha256:" + hashlib.sha256((root / "data/train.csv").read_bytes()).hexdigest()
    )
    assert run.data.params == {"epochs": "40", "lr": "0.5"}
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == list(range(40))
    assert version.tags["mlc.data_digest"] == run.data.tags["mlc.data_digest"]
    # A scheduled (or manual) training names no trigger (a monitor's retraining does: the test below).
    assert not any(key.startswith("mlc.retrain.") for key in [*version.tags, *run.data.tags])
    assert not (root / "checkpoints").exists() or not any((root / "checkpoints").iterdir())  # cleared on success

    # One model, raw features in: a DataFrame, or row dicts with a null and an unseen category.
    model = mlflow.pyfunc.load_model("models:/toy-model@challenger")
    frame = pd.read_csv(root / "data/eval.csv").drop(columns=["label"])
    out = model.predict(frame)
    assert list(out.columns) == ["prediction", "probability"] and len(out) == 200
    assert ((out.prediction == 1) == (frame.x > 5)).mean() > 0.8
    rows = model.predict([{"x": 9.5, "n": None, "color": "green"}, {"x": 0.5, "n": 1, "color": "red"}])
    assert rows.prediction.tolist() == [1, 0]


def test_smoke_caps_rows_and_epochs(toy, run_runtime) -> None:
    root, config = toy
    done = run_runtime("train", "--config", str(config(params={"epochs": 50, "lr": 0.5})), "--smoke", cwd=root)
    assert done.returncode == 0, done.stderr
    seen = record(root)
    assert (seen["rows"], seen["params"]["epochs"], seen["smoke"]) == (256, 1, True)
    run = client_for(root).get_run(client_for(root).get_model_version_by_alias("toy-model", "challenger").run_id)
    assert run.data.tags["mlc.smoke"] == "true" and run.data.params["epochs"] == "1"
    assert not (root / "checkpoints").exists()  # a smoke run never touches the real checkpoints


def test_a_retraining_a_monitor_started_links_its_run_and_version_to_the_check(toy, run_runtime) -> None:
    """The retraining Job's variables (retraining.py) become tags of the run and the new version."""
    root, config = toy
    env = {"MLC_RETRAIN_TRIGGER": "feedback", "MLC_RETRAIN_TRIGGER_RUN": "0123abcd"}
    done = run_runtime("train", "--config", str(config()), "--smoke", cwd=root, env=env)
    assert done.returncode == 0, done.stderr
    client = client_for(root)
    version = client.get_model_version_by_alias("toy-model", "challenger")
    expected = {"mlc.retrain.trigger": "feedback", "mlc.retrain.trigger_run_id": "0123abcd"}
    assert {k: v for k, v in version.tags.items() if k.startswith("mlc.retrain.")} == expected
    run = client.get_run(version.run_id)
    assert {k: v for k, v in run.data.tags.items() if k.startswith("mlc.retrain.")} == expected


@pytest.mark.parametrize(
    ("train", "code", "message"),
    [
        (
            {"params": {"mode": "none", "epochs": 1, "lr": 1}},
            1,
            "error: toy.train:train returned None; it must return the trained torch.nn.Module\n",
        ),
        ({"entrypoint": "nope.train:train"}, 1, "cannot import 'nope.train' from "),
        ({"entrypoint": "toy.train:missing"}, 1, "error: toy.train has no function 'missing'\n"),
        ({"entrypoint": "no-colon"}, 78, "train.entrypoint 'no-colon' must be module:function"),
    ],
)
def test_training_errors_are_one_line(toy, run_runtime, train, code, message) -> None:
    root, config = toy
    done = run_runtime("train", "--config", str(config(**train)), cwd=root)
    assert done.returncode == code and message in done.stderr and done.stderr.count("error: ") == 1


def test_an_entrypoint_exception_shows_the_users_frames_then_one_line(toy, run_runtime) -> None:
    root, config = toy
    done = run_runtime("train", "--config", str(config(params={"mode": "raise", "epochs": 1, "lr": 1})), cwd=root)
    assert done.returncode == 1
    lines = done.stderr.rstrip("\n").splitlines()
    # The traceback starts at the entrypoint's own frame: no mlc-runtime, click or importlib frames above it.
    start = lines.index("Traceback (most recent call last):")
    assert lines[start + 1] == f'  File "{root / "src/toy/train.py"}", line 20, in train'
    assert not [line for line in lines if "click" in line or "mlc/runtime" in line or "runtime/training.py" in line]
    assert lines[-2:] == [
        "RuntimeError: boom in user code",
        "error: toy.train:train raised RuntimeError: boom in user code",
    ]
    (run,) = client_for(root).search_runs([client_for(root).get_experiment_by_name("toy").experiment_id])
    assert run.info.status == "FAILED"  # the MLflow run records the failure too


def test_an_entrypoint_returning_a_tuple_fails_saying_what_it_returned(toy, run_runtime) -> None:
    root, config = toy
    done = run_runtime("train", "--config", str(config(params={"mode": "tuple", "epochs": 1, "lr": 1})), cwd=root)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "error: toy.train:train returned a tuple (Linear, dict); it must return the trained torch.nn.Module alone "
        "(log metrics with ctx.log_metric)"
    )
    assert "Traceback" not in done.stderr and "AttributeError" not in done.stderr


def test_an_entrypoint_module_failing_at_import_shows_its_own_frames(toy, run_runtime) -> None:
    root, config = toy
    (root / "src/toy/broken.py").write_text("import os\n\nTHRESHOLD = undefined_name + 1\n")
    done = run_runtime("train", "--config", str(config(entrypoint="toy.broken:train")), cwd=root)
    assert done.returncode == 1
    lines = done.stderr.rstrip("\n").splitlines()
    assert lines[:2] == [
        "Traceback (most recent call last):",
        f'  File "{root / "src/toy/broken.py"}", line 3, in <module>',
    ]
    assert lines[-1] == "error: importing toy.broken raised NameError: name 'undefined_name' is not defined"
    assert "importlib" not in done.stderr and "click" not in done.stderr


def test_a_config_without_train_is_a_config_error(toy, run_runtime, write_config) -> None:
    root, _ = toy
    done = run_runtime("train", "--config", str(write_config(train=None)), cwd=root)
    assert done.returncode == 78 and "no train section" in done.stderr


def test_sigterm_checkpoints_then_a_rerun_resumes_in_the_same_run(toy, runtime_command) -> None:
    root, config = toy
    path = str(config(params={"mode": "slow", "epochs": 30, "lr": 0.5}))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    process = subprocess.Popen(
        [*runtime_command, "train", "--config", path], cwd=root, env=environ, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while not ((root / "out/epoch").exists() and int((root / "out/epoch").read_text() or 0) >= 2):
        assert process.poll() is None and time.monotonic() < deadline, "training ended before it could be stopped"
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "SIGTERM: the entrypoint stopped early" in stderr
    stopped_at = int((root / "out/epoch").read_text())
    assert list((root / "checkpoints").glob("*/checkpoint.pt"))
    client = client_for(root)
    assert client.search_registered_models() == []  # nothing registered by a stopped run
    (killed_run,) = client.search_runs([client.get_experiment_by_name("toy").experiment_id])
    assert killed_run.info.status == "KILLED"

    done = subprocess.run(
        [*runtime_command, "train", "--config", path],
        cwd=root,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert record(root)["start_epoch"] == stopped_at + 1  # resumed after the last saved epoch
    version = client.get_model_version_by_alias("toy-model", "challenger")
    assert version.run_id == killed_run.info.run_id  # the same MLflow run, continued
    steps = [m.step for m in client.get_metric_history(version.run_id, "loss")]
    assert sorted(steps) == list(range(30))
    assert not list((root / "checkpoints").glob("*/checkpoint.pt"))  # cleared: the next retraining starts fresh


def test_runtime_help_does_not_import_heavy_packages() -> None:
    code = "import sys; from mlc.runtime.cli import main; heavy = {'torch', 'mlflow', 'pyarrow', 'scipy'} & set(sys.modules); print(sorted(heavy))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ)
    assert done.stdout.strip() == "[]"
