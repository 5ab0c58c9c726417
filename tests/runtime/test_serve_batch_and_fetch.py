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
    post,
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


def said(done: subprocess.CompletedProcess[str]) -> list[str]:
    """The runtime's own error and warning lines (MLflow logs its INFO lines to stderr too)."""
    return [line for line in done.stderr.splitlines() if line.startswith(("error: ", "warning: "))]


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


def test_batch_serve_and_validate_data_refuse_the_same_rows_by_the_same_numbers(project, tmp_path: Path) -> None:
    """One contract, one behaviour: the rows serve answers 400 to are the rows batch fails or skips,
    and validate-data points at them by the same 0-based numbers."""
    root, config = project
    rows = toy_rows(8, seed=7)
    rows[3]["x"] = -1  # below min 0
    rows[5]["color"] = "green"  # outside the closed set
    rows[6]["x"] = "abc"  # not a float
    text = rows_csv(rows)
    (root / "bad-in").mkdir(exist_ok=True)
    (root / "bad-in/part-0.csv").write_text(text)
    base = json.loads(config.read_text())

    def variant(invalid_rows: str, folder: str = "bad-in") -> Path:
        batch = {"input": f"{folder}/", "output": f"{folder}-out-{invalid_rows}/", "invalid_rows": invalid_rows}
        path = tmp_path / f"{folder}-{invalid_rows}.json"
        path.write_text(
            json.dumps(base | {"serve": base["serve"] | {"batch": batch}, "data": {"scored": {"uri": "bad-in/"}}})
        )
        return path

    with running_server(root, config) as server:
        status, refused = post(server.url + "/invocations", text, "text/csv")
        valid = [row for index, row in enumerate(rows) if index not in (3, 5, 6)]
        _, answered = post(server.url + "/invocations", rows_csv(valid), "text/csv")
    assert status == 400 and refused["violation_count"] == 3
    assert [v["row"] for v in refused["violations"]] == [3, 5, 6]
    assert refused["message"].startswith("row 3, column 'x': '-1' is below min 0")

    failed = runtime(root, "batch", "--config", str(variant("fail")), "--shards", "1")
    assert failed.returncode == 1
    assert said(failed) == [
        f"error: bad-in/part-0.csv: {refused['message']}: 3 row(s) break the data contract, nothing written "
        "for this file (serve.batch.invalid_rows is fail; skip scores the valid rows)"
    ]
    assert not (root / "bad-in-out-fail").exists() or not list((root / "bad-in-out-fail").rglob("*.parquet"))

    skipped = runtime(root, "batch", "--config", str(variant("skip")), "--shards", "1")
    assert skipped.returncode == 0, skipped.stderr
    first = refused["message"].removesuffix(" (and 2 more)")
    assert said(skipped) == [f"warning: bad-in/part-0.csv: skipped 3 row(s) breaking the data contract, first: {first}"]
    # Local files under the working directory (the spec's folder) are named as the spec names them.
    assert skipped.stdout.startswith("bad-in/part-0.csv: 5 rows -> bad-in-out-skip/part-0.predictions.parquet")
    assert "bad-in-out-skip/part-0.predictions.parquet (3 invalid row(s) skipped)" in skipped.stdout
    scored = pd.read_parquet(root / "bad-in-out-skip/part-0.predictions.parquet")
    assert scored["row"].tolist() == [0, 1, 2, 4, 7]
    assert scored["probability"].tolist() == pytest.approx([p["probability"] for p in answered["predictions"]])

    # A file without a required feature: no row can be scored, whatever invalid_rows says.
    (root / "no-x-in").mkdir(exist_ok=True)
    (root / "no-x-in/part-0.csv").write_text("n,color\n1,red\n")
    missing = runtime(root, "batch", "--config", str(variant("skip", "no-x-in")), "--shards", "1")
    assert missing.returncode == 1
    assert said(missing) == [
        "error: no-x-in/part-0.csv: column 'x': missing feature (valid: a number in [0, 10], not null); "
        "no row of the file can be scored"
    ]

    checked = runtime(root, "validate-data", "--config", str(variant("fail")), "--dataset", "scored")
    assert checked.returncode == 1
    assert "below min 0: 1 row(s), e.g. row 3: '-1'" in checked.stdout
    assert "not float: 1 row(s), e.g. row 6: 'abc'" in checked.stdout
    assert "not in values [red, blue]: 1 row(s), e.g. row 5: 'green'" in checked.stdout


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
        # What is missing is said with what there is.
        (
            ["--uri", "models:/toy-model@nope"],
            True,
            "error: models:/toy-model@nope: toy-model has no alias 'nope'; its aliases: challenger (version 1), champion (version 1)",
        ),
        (
            ["--uri", "models:/missing-model/3"],
            True,
            "error: models:/missing-model/3: no registered model 'missing-model'; registered models: toy-model",
        ),
        (
            ["--uri", "models:/toy-model/7"],
            True,
            "error: models:/toy-model/7: toy-model has no version 7; its versions: 1",
        ),
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


def test_id_columns_pass_through_batch_and_serve_untouched_and_never_reach_the_model(project, tmp_path: Path) -> None:
    """`data.contract.ids`: batch writes them beside each prediction (as read: CSV ids stay text, so
    leading zeros survive), serve echoes them per prediction; the model scores what it would
    without them."""
    root, config = project
    with_ids = json.loads(config.read_text())
    with_ids["contract"]["ids"] = ["customer_id"]
    with_ids["serve"]["batch"] = {"input": "ids-in/", "output": "ids-out/", "parallelism": 1}
    config_ids = tmp_path / "config-ids.json"
    config_ids.write_text(json.dumps(with_ids))
    rows = toy_rows(30, seed=7)
    lines = rows_csv(rows).splitlines()
    (root / "ids-in").mkdir()
    (root / "ids-in/part.csv").write_text(
        "\n".join([f"customer_id,{lines[0]}", *(f"{i:05d},{line}" for i, line in enumerate(lines[1:]))]) + "\n"
    )
    done = runtime(root, "batch", "--config", str(config_ids))
    assert done.returncode == 0, done.stderr[-2000:]
    scored = pd.read_parquet(root / "ids-out/part.predictions.parquet")
    assert list(scored.columns) == ["row", "customer_id", "prediction", "probability"]
    assert scored["customer_id"].tolist() == [f"{i:05d}" for i in range(30)]  # text, zeros kept
    mlflow.set_tracking_uri(tracking_uri(root))
    want = mlflow.pyfunc.load_model("models:/toy-model@champion").predict(pd.DataFrame(rows))
    assert scored["probability"].to_numpy() == pytest.approx(want["probability"].to_numpy(), rel=1e-6)

    # A file without the id column cannot be joined back: it fails, naming the column.
    (root / "ids-in/part.csv").write_text(rows_csv(rows))
    missing = runtime(root, "batch", "--config", str(config_ids))
    assert missing.returncode == 1
    [line] = said(missing)
    assert line.startswith("error: ") and line.endswith(
        "ids-in/part.csv: no id column 'customer_id' (data.contract.ids): predictions could not be "
        "joined back to their rows"
    )

    records = [{"customer_id": f"c-{i}", **row} for i, row in enumerate(rows[:3])]
    with running_server(root, config_ids) as server:
        # The fast path (canonical JSON), the arrow path (a number as text), CSV, and no ids sent.
        status, fast = post(server.url + "/invocations", json.dumps({"dataframe_records": records}))
        texty = [{**records[0], "x": str(records[0]["x"])}, *records[1:]]
        _, slow = post(server.url + "/invocations", json.dumps({"dataframe_records": texty}))
        csv_body = "customer_id," + rows_csv(rows[:3]).splitlines()[0] + "\n"
        csv_body += "\n".join(f"c-{i},{line}" for i, line in enumerate(rows_csv(rows[:3]).splitlines()[1:])) + "\n"
        _, from_csv = post(server.url + "/invocations", csv_body, "text/csv")
        _, without = post(server.url + "/invocations", json.dumps({"dataframe_records": rows[:3]}))
    assert status == 200
    assert fast["ids"] == slow["ids"] == from_csv["ids"] == [{"customer_id": f"c-{i}"} for i in range(3)]
    assert fast["predictions"] == without["predictions"]  # the id is never a model input
    assert "ids" not in without
