"""What training tells people: progress lines, run names, where to look, and `-p` overrides
(recorded in MLflow), on a real entrypoint, real torch and a real MLflow sqlite store."""

from __future__ import annotations

import io
import json

import mlflow
import pytest
from mlflow import MlflowClient

from mlc.runtime.contract.config import RuntimeConfig
from mlc.runtime.param_overrides import OverrideError, overrides_tag, parse_overrides
from mlc.runtime.progress import ProgressState, TrainingProgress, clock, progress_line, rate
from mlc.runtime.training import TrainingResult, checkpoint_lineage, run_name, where_to_look
from spec_fixtures import git_commit_empty

LOOP_ENTRYPOINT = """
import torch


def train(ctx):
    x, y = ctx.load_training_data()
    model = torch.nn.Linear(x.shape[1], 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=ctx.params["lr"])
    seen = []
    for epoch in ctx.epochs():
        rows = 0
        for batch_x, batch_y in ctx.batches(x, y):
            rows += len(batch_x)
            optimizer.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(batch_x).reshape(-1), batch_y)
            loss.backward()
            optimizer.step()
        seen.append(rows)
        ctx.log_metric("train_loss", loss.item(), step=epoch)
    assert seen == [len(x)] * ctx.params["epochs"], seen
    return model
"""


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_clock_and_rate_read_as_people_write_them() -> None:
    assert [clock(7), clock(750), clock(3723)] == ["0:07", "12:30", "1:02:03"]
    assert [rate(850, 1.0), rate(52_300, 1.0), rate(2_400_000, 2.0), rate(5, 0)] == [
        "850 rows/s",
        "52.3k rows/s",
        "1.2M rows/s",
        "0 rows/s",
    ]


def test_a_progress_line_names_epoch_metrics_rate_and_time_left() -> None:
    state = ProgressState(3, 20, 1.0, 6000, 6.0, 34.0, (("train_loss", 0.41234), ("val_f1", 0.8)))
    assert progress_line(state, bar=False) == (
        "epoch  3/20  train_loss 0.4123, val_f1 0.8, 1,000 rows/s, 0:06 elapsed, about 0:34 left"
    )
    assert progress_line(state, bar=True).startswith("epoch  3/20 [###.................]  train_loss")
    last = ProgressState(20, 20, 1.0, 40000, 40.0, 0.0, ())
    assert progress_line(last, bar=False).endswith("1,000 rows/s, 0:40 elapsed, done")


def test_plain_lines_come_first_periodically_and_last_when_not_a_terminal() -> None:
    stream, now = io.StringIO(), FakeClock()
    progress = TrainingProgress(10, stream=stream, interval=5.0, now=now)
    for epoch in range(10):
        now.now += 1.0  # one second an epoch
        progress.metric("loss", 1.0 / (epoch + 1))
        progress.epoch_done(rows_per_epoch=100)
    lines = stream.getvalue().splitlines()
    # The first epoch, then one every 5 seconds (epochs 6), and the last.
    assert [line.split()[1] for line in lines] == ["1/10", "6/10", "10/10"]
    assert lines[0] == "epoch  1/10  loss 1, 100 rows/s, 0:01 elapsed, about 0:09 left"
    assert lines[-1] == "epoch 10/10  loss 0.1, 100 rows/s, 0:10 elapsed, done"
    assert "\r" not in stream.getvalue()


def test_a_terminal_gets_one_line_rewritten_in_place() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream, now = Terminal(), FakeClock()
    progress = TrainingProgress(2, stream=stream, interval=60.0, now=now)
    for _ in range(2):
        for _ in range(4):
            now.now += 0.25
            progress.rows(50)
        progress.epoch_done()
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("done\x1b[K\n")
    assert text.count("\r") >= 4  # rows refresh it within an epoch, not only at its end
    # Half of the second epoch (the first counted its rows): three quarters of the whole.
    assert "epoch 2/2 [###############.....]  200 rows/s, 0:02 elapsed, about 0:00 left" in text


def test_overrides_are_typed_like_the_spec_and_unknown_names_list_the_parameters() -> None:
    params = {"epochs": 20, "lr": 0.05, "optimizer": "adam", "shuffle": True, "layers": [64, 32]}
    assert parse_overrides(["lr=1", "epochs=5", "optimizer=sgd", "shuffle=false", "layers=[8]"], params) == {
        "lr": 1.0,
        "epochs": 5,
        "optimizer": "sgd",
        "shuffle": False,
        "layers": [8],
    }
    assert overrides_tag({"lr": 0.01, "epochs": 5}) == "lr=0.01 epochs=5"
    with pytest.raises(OverrideError) as unknown:
        parse_overrides(["lrate=0.1"], params)
    assert str(unknown.value) == (
        "-p lrate=0.1: 'lrate' is not a parameter of train.params; the parameters are: "
        'epochs=20, lr=0.05, optimizer="adam", shuffle=true, layers=[64, 32]'
    )
    with pytest.raises(OverrideError, match=r"epochs is an integer in train.params \(20\), got '2.5'"):
        parse_overrides(["epochs=2.5"], params)
    with pytest.raises(OverrideError, match="shuffle is a boolean"):
        parse_overrides(["shuffle=1"], params)
    with pytest.raises(OverrideError, match="write NAME=VALUE"):
        parse_overrides(["lr"], params)


def test_run_names_say_what_ran_and_checkpoint_lineages_keep_overrides_apart() -> None:
    config = RuntimeConfig.model_validate(
        {
            "format_version": 1,
            "project": "churn",
            "environment": "staging",
            "spec_digest": "sha256:" + "ab" * 32,
            "tracking_uri": "sqlite:///.mlc/mlflow.db",
            "registered_model": "churn",
        }
    )
    assert run_name(config, "1a2b3c4d5e6f", smoke=False) == "churn-train-staging-1a2b3c4"
    assert run_name(config, None, smoke=True) == "churn-train-staging-smoke"
    plain = checkpoint_lineage(config, {})
    assert plain == "churn-staging-abababababab"
    assert checkpoint_lineage(config, {"lr": 0.01}) != checkpoint_lineage(config, {"lr": 0.02})
    assert checkpoint_lineage(config, {"lr": 0.01}).startswith(plain + "-p")


def test_where_to_look_gives_the_ui_command_locally_and_the_page_on_a_server() -> None:
    local = TrainingResult("r1", "1", "n", "3", "sqlite:///.mlc/mlflow.db")
    assert where_to_look(local) == (
        "see the run: mlflow ui --backend-store-uri sqlite:///.mlc/mlflow.db   "
        "then open http://127.0.0.1:5000/#/experiments/3/runs/r1"
    )
    server = TrainingResult("r1", "1", "n", "3", "https://mlflow.example.com/")
    assert where_to_look(server) == "see the run: https://mlflow.example.com/#/experiments/3/runs/r1"


def test_train_with_overrides_records_them_names_the_run_and_shows_progress(toy, run_runtime) -> None:
    root, config = toy
    (root / "src/toy/loop.py").write_text(LOOP_ENTRYPOINT)
    head = git_commit_empty(root)
    path = config(entrypoint="toy.loop:train", params={"epochs": 40, "lr": 0.5, "batch_size": 128})
    done = run_runtime("train", "--config", str(path), "-p", "epochs=3", "-p", "lr=0.1", cwd=root)
    assert done.returncode == 0, done.stderr
    name = f"toy-train-test-{head[:7]}"
    first, hint = done.stdout.splitlines()[-2:]
    assert first.startswith(f"registered toy-model version 1 as @challenger (MLflow run {name}, id ")
    assert hint.startswith("see the run: mlflow ui --backend-store-uri sqlite:///.mlc/mlflow.db   then open ")
    progress = [line for line in done.stderr.splitlines() if line.startswith("epoch ")]
    assert [line.split("  ")[0] for line in progress] == ["epoch 1/3", "epoch 3/3"]  # first and last, not a TTY
    assert progress[-1].endswith("done") and "train_loss " in progress[-1] and " rows/s, " in progress[-1]
    # Our line says what was registered, once: not MLflow's own two lines on stderr as well.
    assert "Successfully registered model" not in done.stderr and "Created version" not in done.stderr

    mlflow.set_tracking_uri(f"sqlite:///{root}/.mlc/mlflow.db")
    client = MlflowClient()
    run = client.get_run(client.get_model_version_by_alias("toy-model", "challenger").run_id)
    assert run.info.run_name == name
    assert run.data.params == {"epochs": "3", "lr": "0.1", "batch_size": "128"}
    assert run.data.tags["mlc.overrides"] == "epochs=3 lr=0.1"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [0, 1, 2]
    assert hint.endswith(f"#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}")


def test_an_override_naming_no_parameter_is_refused_before_training(toy, run_runtime) -> None:
    root, config = toy
    done = run_runtime("train", "--config", str(config()), "-p", "learning_rate=0.1", cwd=root)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: -p learning_rate=0.1: 'learning_rate' is not a parameter of train.params; "
        "the parameters are: epochs=40, lr=0.5"
    )
    assert not (root / ".mlc/mlflow.db").exists()  # nothing started
    assert json.loads(config().read_text())["train"]["params"] == {"epochs": 40, "lr": 0.5}
