"""Data the runtime must refuse in one line, with the contract's exit codes, never a traceback.

Duplicate column names (CSV headers, parquet schemas), a folder of parquet files whose schemas
differ, and a dataset with no rows; and `train` / `gate` refusing the rows `validate-data`
refuses, before they use them. Every case runs the real `mlc-runtime` in a subprocess.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlc.runtime.contract import ExitCode


def one_error_line(done) -> str:
    """The process's stderr, asserted to be one `error:` line and no traceback."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


@pytest.fixture
def data_config(tmp_path: Path, write_config):
    """`data_config(uri) -> config path`, the uri as the `train` dataset (csv or parquet by suffix)."""

    def make(uri: str) -> str:
        return str(write_config(data={"train": {"uri": uri, "format": None}}))

    (tmp_path / "data").mkdir(exist_ok=True)
    return make


def test_a_duplicate_csv_header_is_an_error_naming_the_column(tmp_path: Path, data_config, run_runtime) -> None:
    (tmp_path / "data/dup.csv").write_text("x,n,x,color,label\n1,2,3,red,0\n")
    config = data_config("data/dup.csv")
    expected = "data/dup.csv: column 'x' appears 2 times in the header: every column needs its own name"
    checked = run_runtime("validate-data", "--config", config, "--dataset", "train", cwd=tmp_path)
    assert checked.returncode == ExitCode.ERROR and expected in one_error_line(checked)
    profiled = run_runtime("profile", "--data", "data/dup.csv", "-o", "p.json", cwd=tmp_path)
    assert profiled.returncode == ExitCode.ERROR and expected in one_error_line(profiled)
    (tmp_path / "ref.csv").write_text("x,n,color,label\n1,2,red,0\n")
    assert run_runtime("profile", "--data", "ref.csv", "-o", "ref.json", cwd=tmp_path).returncode == 0
    drifted = run_runtime("drift", "--profile", "ref.json", "--data", "data/dup.csv", cwd=tmp_path)
    assert drifted.returncode == ExitCode.ERROR and expected in one_error_line(drifted)  # 1 would mean "drift"


def test_a_duplicate_parquet_field_is_refused_too(tmp_path: Path, data_config, run_runtime) -> None:
    table = pa.Table.from_arrays(
        [pa.array([1.0]), pa.array([2.0]), pa.array(["red"]), pa.array([0])], names=["x", "x", "color", "label"]
    )
    pq.write_table(table, tmp_path / "data/dup.parquet")
    checked = run_runtime(
        "validate-data", "--config", data_config("data/dup.parquet"), "--dataset", "train", cwd=tmp_path
    )
    assert checked.returncode == ExitCode.ERROR
    assert "data/dup.parquet: column 'x' appears 2 times" in one_error_line(checked)


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        ({"x": [3.0], "label": [1]}, "b.parquet: no column 'color', which "),
        ({"x": [3.0], "color": [7], "label": [1]}, "b.parquet: column 'color' is int64 here but string in "),
    ],
    ids=["a-column-missing", "a-column-retyped"],
)
def test_a_parquet_folder_of_mixed_schemas_is_an_error_naming_the_file(
    tmp_path: Path, run_runtime, second, expected
) -> None:
    folder = tmp_path / "live"
    folder.mkdir()
    pq.write_table(pa.table({"x": [1.0, 2.0], "color": ["red", "blue"], "label": [0, 1]}), folder / "a.parquet")
    pq.write_table(pa.table(second), folder / "b.parquet")
    profiled = run_runtime("profile", "--data", "live", "-o", "p.json", cwd=tmp_path)
    assert profiled.returncode == ExitCode.ERROR and expected in one_error_line(profiled)
    pq.write_table(pa.table({"x": [1.0, 2.0], "color": ["red", "blue"]}), tmp_path / "ref.parquet")
    assert run_runtime("profile", "--data", "ref.parquet", "-o", "ref.json", cwd=tmp_path).returncode == 0
    drifted = run_runtime("drift", "--profile", "ref.json", "--data", "live", cwd=tmp_path)
    assert drifted.returncode == ExitCode.ERROR and expected in one_error_line(drifted)


def test_a_dataset_without_rows_is_invalid(tmp_path: Path, data_config, run_runtime) -> None:
    (tmp_path / "data/empty.csv").write_text("x,n,color,label\n")
    checked = run_runtime(
        "validate-data", "--config", data_config("data/empty.csv"), "--dataset", "train", cwd=tmp_path
    )
    assert checked.returncode == ExitCode.FAILED, checked.stdout + checked.stderr
    assert checked.stdout.splitlines()[-1] == "invalid: no data rows (a header alone, or empty files)"


def test_train_and_gate_refuse_the_rows_validate_data_refuses(toy, run_runtime) -> None:
    root, config = toy
    evaluate = {"dataset": "eval", "metrics": ["accuracy"], "first_model": "allow", "gates": []}
    path = str(config(evaluate=evaluate))
    good = (root / "data/train.csv").read_text()
    # x is a float in [0, 10]: 11.5 reads as a float, so training's preprocessing took it before.
    (root / "data/train.csv").write_text(good + "11.5,1,red,1\n")
    checked = run_runtime("validate-data", "--config", path, "--dataset", "train", cwd=root)
    assert checked.returncode == ExitCode.FAILED and "above max 10: 1 row(s), e.g. row 600" in checked.stdout
    trained = run_runtime("train", "--config", path, cwd=root)
    assert trained.returncode == ExitCode.FAILED
    line = one_error_line(trained)
    assert line.startswith("error: dataset train (data/train.csv) breaks the data contract: x: above max 10: 1 row(s)")
    assert "`mlc-runtime validate-data --dataset train` reports every rule" in line
    assert not list((root / ".mlc").glob("mlflow.db")), "refused before anything was logged"

    (root / "data/train.csv").write_text(good)
    trained = run_runtime("train", "--config", path, cwd=root)
    assert trained.returncode == 0, trained.stderr
    (root / "data/eval.csv").write_text((root / "data/eval.csv").read_text() + "5,1,green,1\n")
    gated = run_runtime("gate", "--config", path, "--json", "gate.json", cwd=root)
    assert gated.returncode == ExitCode.ERROR  # no verdict on rows serving would refuse: fail closed
    assert "dataset eval (data/eval.csv) breaks the data contract: color: not in values [red, blue]" in one_error_line(
        gated
    )
    assert not (root / "gate.json").exists()
    assert json.loads((root / ".mlc/test/runtime-config.json").read_text())["evaluate"]["dataset"] == "eval"
