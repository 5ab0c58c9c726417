"""`mlc-runtime validate-data`: each contract rule on real CSV and parquet files, exit codes, the example."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlc.compiler.pipeline import resolve_spec_file
from mlc.compiler.resolve.environment import resolve_local
from mlc.compiler.resolve.runtime_config import runtime_config_json
from mlc.runtime.config import load_runtime_config
from mlc.runtime.contract.config import ConfigError
from mlc.runtime.data_check import check_dataset, render_data_report

REPO = Path(__file__).resolve().parents[2]
GOOD_ROWS = "x,n,color,label\n1.5,3,red,0\n2,,blue,1\n"


def write_csv(root: Path, text: str, name: str = "data/train.csv") -> None:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)


def violations(config_path: Path, dataset: str = "train") -> dict[str, dict[str, tuple[int, int]]]:
    """{column: {rule: (count, first row)}} of a check, run from the config's project folder."""
    report = check_dataset(load_runtime_config(config_path), dataset)
    return {c.name: {r.rule: (r.count, r.first_row) for r in c.violations.values()} for c in report.columns if not c.ok}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # data paths are relative to the spec's folder
    return tmp_path


def test_valid_csv_passes_with_nulls_where_allowed(project: Path, write_config) -> None:
    write_csv(project, GOOD_ROWS)
    report = check_dataset(load_runtime_config(write_config()), "train")
    assert report.valid and report.rows == 2
    assert "valid" in render_data_report(report).splitlines()[-1]


@pytest.mark.parametrize(
    ("rows", "column", "rule", "count_and_row"),
    [
        ("1,1,red,0\nabc,1,red,0\nx1,2,blue,1\n", "x", "not float", (2, 1)),
        ("1,2.5,red,0\n", "n", "not int", (1, 0)),
        ("1,2,red,0\n,3,red,0\n", "x", "null (not nullable)", (1, 1)),
        ("-0.5,1,red,0\n", "x", "below min 0", (1, 0)),
        ("1,1,red,0\n11,1,red,0\n12,1,red,0\n", "x", "above max 10", (2, 1)),
        ("1,-1,red,0\n", "n", "below min 0", (1, 0)),
        ("1,1,red,0\n1,1,green,0\n", "color", "not in values [red, blue]", (1, 1)),
        ("1,1,red,\n", "label", "null", (1, 0)),
    ],
)
def test_each_rule_counts_rows_and_names_the_first(
    project: Path, write_config, rows, column, rule, count_and_row
) -> None:
    write_csv(project, "x,n,color,label\n" + rows)
    assert violations(write_config()) == {column: {rule: count_and_row}}


def test_missing_feature_and_target_columns(project: Path, write_config) -> None:
    write_csv(project, "x,n\n1,2\n")
    report = check_dataset(load_runtime_config(write_config()), "train")
    assert {c.name for c in report.columns if not c.present} == {"color", "label"}
    text = render_data_report(report)
    assert "color" in text and "missing column" in text and text.endswith("2 of 4 column(s) break the contract\n")


def test_target_is_only_required_for_train_and_eval_sets(project: Path, write_config) -> None:
    write_csv(project, "x,n,color\n1,2,red\n", name="data/live.csv")
    config = write_config(data={"live": {"uri": "data/live.csv", "format": "csv"}})
    assert check_dataset(load_runtime_config(config), "live").valid


def test_parquet_types_and_a_directory_of_files(project: Path, write_config) -> None:
    (project / "data" / "train").mkdir(parents=True)
    good = pa.table({"x": [1.0, 2.0], "n": pa.array([1, None], pa.int64()), "color": ["red", "blue"], "label": [0, 1]})
    pq.write_table(good, project / "data/train/part-0.parquet")
    bad = pa.table(
        {"x": [True, False], "n": [1.5, 2.0], "color": pa.array(["red", "teal"]).dictionary_encode(), "label": [0, 1]}
    )
    pq.write_table(bad, project / "data/train/part-1.parquet")
    config = write_config(data={"train": {"uri": "data/train", "format": None}})
    assert violations(config) == {
        "x": {"not float": (2, 2)},  # a bool column cannot hold a float feature; rows count across files from 0
        "n": {"not int": (1, 2)},
        "color": {"not in values [red, blue]": (1, 3)},
    }


def test_a_glob_and_sample(project: Path, write_config) -> None:
    write_csv(project, GOOD_ROWS, name="data/a.csv")
    write_csv(project, "x,n,color,label\n99,1,red,0\n", name="data/b.csv")
    config = load_runtime_config(write_config(data={"train": {"uri": "data/*.csv", "format": None}}))
    assert check_dataset(config, "train").rows == 3
    assert check_dataset(config, "train", sample=2).valid  # the bad row is the third


def test_exit_codes_through_the_cli(project: Path, write_config, run_runtime) -> None:
    config = str(write_config())
    write_csv(project, GOOD_ROWS)
    assert run_runtime("validate-data", "--config", config, "--dataset", "train", cwd=project).returncode == 0
    write_csv(project, "x,n,color,label\n-1,1,red,0\n")
    done = run_runtime("validate-data", "--config", config, "--dataset", "train", cwd=project)
    assert done.returncode == 1 and "below min 0: 1 row(s), e.g. row 0: '-1'" in done.stdout
    (project / "data/train.csv").unlink()
    done = run_runtime("validate-data", "--config", config, "--dataset", "train", cwd=project)
    assert done.returncode == 2 and done.stderr == "error: data/train.csv: no such file or directory\n"
    (project / "data/broken.parquet").write_bytes(b"not parquet at all")
    broken = write_config(data={"train": {"uri": "data/broken.parquet", "format": "parquet"}})
    done = run_runtime("validate-data", "--config", str(broken), "--dataset", "train", cwd=project)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "cannot read parquet" in done.stderr


def test_unusable_config_exits_78_with_one_line(project: Path, write_config, run_runtime) -> None:
    path = write_config()
    cases = {
        "missing.json": "runtime config not found",
        "bad.json": "bad.json:1:2: not valid JSON",
        "v2.json": "format_version 2 is not supported",
    }
    (project / "bad.json").write_text("{nope")
    (project / "v2.json").write_text(json.dumps({**json.loads(path.read_text()), "format_version": 2}))
    for name, message in cases.items():
        done = run_runtime("validate-data", "--config", name, "--dataset", "train", cwd=project)
        assert done.returncode == 78 and message in done.stderr and done.stderr.count("\n") == 1, name
    done = run_runtime("validate-data", "--config", str(path), "--dataset", "nope", cwd=project)
    assert done.returncode == 78 and "no dataset 'nope' in the runtime config (datasets: train, eval)" in done.stderr
    with pytest.raises(ConfigError, match="project: Field required"):
        load_runtime_config(_without(path, "project"))


def _without(path: Path, key: str) -> Path:
    data = json.loads(path.read_text())
    del data[key]
    path.write_text(json.dumps(data))
    return path


def test_the_churn_example_data_meets_its_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "churn"
    shutil.copytree(REPO / "examples" / "churn", project)
    monkeypatch.chdir(project)
    config_path = project / "runtime-config.json"
    result = resolve_spec_file(project / "mlproject.yaml")
    assert result.project is not None
    config_path.write_text(runtime_config_json(resolve_local(result.project, result.resolved)))
    config = load_runtime_config(config_path)
    for dataset in ("train", "eval", "live"):
        if dataset in config.data:
            report = check_dataset(config, dataset)
            assert report.valid, render_data_report(report)


def test_without_a_dataset_the_error_lists_the_choices_and_data_checks_live_data(tmp_path: Path, run_runtime) -> None:
    project = tmp_path / "churn"
    shutil.copytree(REPO / "examples" / "churn", project)
    result = resolve_spec_file(project / "mlproject.yaml")
    assert result.project is not None
    # What `mlc run` runs here: the base, whose live data is a local file (environments read s3://).
    local = resolve_local(result.project, result.resolved)
    (project / "runtime-config.json").write_text(runtime_config_json(local))

    done = run_runtime("validate-data", "--config", "runtime-config.json", cwd=project)
    assert done.returncode == 2
    assert done.stderr == (
        "error: give --dataset NAME or --data URI, one of them: datasets: eval, train; "
        "or any data, e.g. the live data --data data/live.csv\n"
    )
    # Live data has no labels: its features are checked, the target is not asked for.
    done = run_runtime("validate-data", "--config", "runtime-config.json", "--data", "data/live.csv", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("dataset --data (data/live.csv): 1000 rows checked\n")
    assert "churned" not in done.stdout and done.stdout.endswith("\nvalid\n")
    (project / "data/broken.csv").write_text("tenure_months,monthly_charges,support_calls,plan,region\n-1,5,1,gold,x\n")
    done = run_runtime("validate-data", "--config", "runtime-config.json", "--data", "data/broken.csv", cwd=project)
    assert done.returncode == 1 and "not in values [basic, plus, pro]: 1 row(s), e.g. row 0: 'gold'" in done.stdout
