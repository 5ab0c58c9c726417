"""`mlc-runtime batch` (sharded file scoring) and `fetch-model` (the KServe storage initializer)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import mlflow
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from served_project import (
    RUNTIME_CLI,
    get,
    rows_csv,
    running_server,
    runtime_env,
    toy_rows,
    tracking_uri,
    train_served_project,
)

from mlc.runtime.serve.batch_scoring import common_base, output_name, shard_paths


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("batch")
    return root, train_served_project(root)


def runtime(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RUNTIME_CLI, *args], cwd=root, env=runtime_env(**env), capture_output=True, text=True, timeout=600
    )


def test_shards_take_every_nth_sorted_file() -> None:
    paths = [f"/in/part-{i}.csv" for i in (3, 0, 4, 1, 2)]
    shards = [shard_paths(paths, i, 2) for i in range(2)]
    assert shards == [["/in/part-0.csv", "/in/part-2.csv", "/in/part-4.csv"], ["/in/part-1.csv", "/in/part-3.csv"]]
    with pytest.raises(ValueError, match="--shard must be in"):
        shard_paths(paths, 2, 2)
    assert output_name("/in/a/x.csv.gz", "/in") == "a/x.predictions.parquet"
    assert common_base(["/in/a/x.csv", "/in/b.parquet"]) == "/in"


def test_two_shards_score_five_files_once_each_like_the_pyfunc(project) -> None:
    root, config = project
    inputs = root / "batch-in"
    (inputs / "more").mkdir(parents=True)
    frames = {}
    for i in range(5):
        rows = toy_rows(50 + i, seed=100 + i)
        if i == 4:  # a parquet file in a subfolder, beside the CSVs
            pq.write_table(pa.Table.from_pandas(pd.DataFrame(rows)), inputs / "more/part-4.parquet")
        else:
            (inputs / f"part-{i}.csv").write_text(rows_csv(rows))
        frames[i] = pd.DataFrame(rows)
    done = [runtime(root, "batch", "--config", str(config), "--shard", str(i), "--shards", "2") for i in range(2)]
    for result in done:
        assert result.returncode == 0, result.stderr[-2000:]
    assert done[0].stdout.splitlines()[-1] == "shard 0 of 2: scored 3 file(s) with toy-model version 1"
    written = sorted(
        p.relative_to(root / "batch-out").as_posix() for p in (root / "batch-out").rglob("*") if p.is_file()
    )
    assert written == ["more/part-4.predictions.parquet", *[f"part-{i}.predictions.parquet" for i in range(4)]]

    mlflow.set_tracking_uri(tracking_uri(root))
    model = mlflow.pyfunc.load_model("models:/toy-model@champion")
    for i, frame in frames.items():
        name = "more/part-4" if i == 4 else f"part-{i}"
        scored = pd.read_parquet(root / "batch-out" / f"{name}.predictions.parquet")
        assert scored["row"].tolist() == list(range(len(frame)))
        want = model.predict(frame)
        assert scored["prediction"].tolist() == want["prediction"].tolist()
        assert scored["probability"].to_numpy() == pytest.approx(want["probability"].to_numpy(), rel=1e-6)


def test_batch_errors(project, tmp_path: Path) -> None:
    root, config = project
    broken = json.loads(config.read_text()) | {"serve": None}
    (tmp_path / "config.json").write_text(json.dumps(broken))
    no_batch = runtime(root, "batch", "--config", str(tmp_path / "config.json"))
    assert no_batch.returncode == 78 and "no serve.batch section" in no_batch.stderr
    wrong_shard = runtime(root, "batch", "--config", str(config), "--shard", "2", "--shards", "2")
    assert wrong_shard.returncode == 1 and "--shard 2 is not below --shards 2" in wrong_shard.stderr


def test_fetch_model_downloads_the_version_the_alias_names(project, tmp_path: Path) -> None:
    root, config = project
    dest = tmp_path / "mnt" / "models"
    done = runtime(
        root,
        "fetch-model",
        "--uri",
        "models:/toy-model@champion",
        "--dest",
        str(dest),
        MLFLOW_TRACKING_URI=tracking_uri(root),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == f"fetched toy-model version 1 (models:/toy-model@champion) into {dest}"
    assert (dest / "MLmodel").is_file() and not [p for p in dest.iterdir() if p.name.startswith(".fetch-")]
    assert json.loads((dest / "mlc-model.json").read_text())["version"] == "1"
    assert sorted(p for p in tmp_path.rglob("*") if not p.is_relative_to(dest)) == [tmp_path / "mnt"]

    rows = toy_rows(5, seed=3)
    mlflow.set_tracking_uri(tracking_uri(root))
    want = mlflow.pyfunc.load_model("models:/toy-model/1").predict(pd.DataFrame(rows))
    got = mlflow.pyfunc.load_model(str(dest)).predict(pd.DataFrame(rows))
    pd.testing.assert_frame_equal(got, want)

    # KServe's server container serves the fetched directory and still knows the version.
    with running_server(root, config, "--model-uri", str(dest)) as server:
        ready = json.loads(get(server.url + "/ready")[1])
    assert (ready["model"], ready["version"], ready["alias"], ready["uri"]) == ("toy-model", "1", "champion", str(dest))


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--uri", "models:/toy-model@nope"], True, "error: models:/toy-model@nope: "),
        (["--uri", "models:/missing-model/3"], True, "error: models:/missing-model/3: "),
        (["--uri", "runs:/abc/model"], True, "error: runs:/abc/model: expected models:/<name>@<alias>"),
        (["--uri", "models:/toy-model@champion"], False, "error: set MLFLOW_TRACKING_URI"),
    ],
)
def test_fetch_model_failures_are_one_line_and_exit_1(project, tmp_path: Path, args, env, message) -> None:
    root, _ = project
    environ = {"MLFLOW_TRACKING_URI": tracking_uri(root)} if env else {}
    done = runtime(root, "fetch-model", *args, "--dest", str(tmp_path / "dest"), **environ)
    assert done.returncode == 1
    assert done.stderr.startswith(message) and done.stderr.count("\n") == 1, done.stderr
