"""The drift check end to end: library result and the `mlc-runtime` CLI."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from mlc.runtime.cli import main
from mlc.runtime.config import load_runtime_config
from mlc.runtime.contract import FORMAT_VERSION
from mlc.runtime.contract.config import ConfigError
from mlc.runtime.drift.check import run_check
from mlc.runtime.drift.config import DriftConfig, drift_config
from mlc.runtime.drift.data import DataError
from mlc.runtime.drift.profile import build_profile, write_profile


@pytest.fixture
def reference(write_parquet, columns, tmp_path):
    """Path of a profile of 20k reference rows."""
    path = tmp_path / "profile.json"
    write_profile(build_profile(write_parquet(columns(20_000, seed=1))), path)
    return path


def _check(reference, data, **config):
    return run_check(json.loads(reference.read_text()), data, DriftConfig(**config))


def test_shifted_columns_and_only_those_are_flagged(reference, write_parquet, columns):
    result = _check(reference, write_parquet(columns(5000, seed=2, shift=0.6, shifted=("x0", "c0"))))
    flagged = {r.feature for r in result.features if r.drifted}
    assert flagged == {"x0", "c0"}
    assert result.drifted_share == pytest.approx(2 / 5)
    assert result.drifted is True  # share 0.4 >= the contract's default threshold 0.3
    assert not _check(
        reference, write_parquet(columns(5000, seed=2, shift=0.6, shifted=("x0", "c0"))), share_threshold=0.5
    ).drifted


def test_threshold_psi_is_the_size_a_real_change_needs_and_the_reason_says_so(reference, write_parquet, columns):
    """`threshold.psi` means what its name says whatever the method: a 0.2-std shift is real at 5000
    rows (p tiny) but its PSI (~0.04) is below the spec's 0.2, so it does not drift; at 0.02 it does."""
    data = write_parquet(columns(5000, seed=2, shift=0.2, shifted=("x0", "c0")))
    default = {r.feature: r for r in _check(reference, data).features}
    assert not default["x0"].drifted and default["x0"].p_value < 1e-6 and 0.02 < default["x0"].psi < 0.2
    assert default["x0"].reason.startswith(f"PSI {default['x0'].psi:.3g} below 0.2: a real but small change (KS p=")
    sensitive = {r.feature: r for r in _check(reference, data, psi_threshold=0.02).features}
    assert {name for name, r in sensitive.items() if r.drifted} == {"x0", "c0"}
    assert "and the change is real: KS p=" in sensitive["x0"].reason
    # x1 is unchanged: its sampling noise reaches PSI 0.02 at 5000 rows, and the verdict says why it is not drift.
    x1 = sensitive["x1"]
    assert not x1.drifted and x1.psi >= 0.02 and x1.p_value > x1.threshold
    assert x1.reason == (
        f"PSI {x1.psi:.3g} reaches 0.02, but 5000 rows cannot tell it from noise: "
        f"KS p={x1.p_value:.2g}, needs <= {x1.threshold:.2g}"
    )


def test_identical_distribution_at_small_sample_is_not_drift(reference, write_parquet, columns):
    for method in ("auto", "psi", "chi2", "ks"):
        result = _check(reference, write_parquet(columns(200, seed=3)), method=method)
        assert not any(r.drifted for r in result.features), method


def test_psi_method_uses_sample_size_aware_threshold(reference, write_parquet, columns):
    small = _check(reference, write_parquet(columns(100, seed=4)), method="psi", psi_threshold=0.1)
    # 100 bins at n_cur=100: the null quantile is far above the configured 0.1
    assert all(r.threshold > 0.5 for r in small.features if r.kind == "numeric")
    assert not any(r.drifted for r in small.features)
    shifted = _check(reference, write_parquet(columns(20_000, seed=4, shift=1.0, shifted=("x1",))), method="psi")
    assert [r.feature for r in shifted.features if r.drifted] == ["x1"]


def test_unseen_category_gets_its_own_column(reference, write_parquet, columns):
    result = _check(reference, write_parquet(columns(3000, seed=5, new_level=True)))
    c0 = next(r for r in result.features if r.feature == "c0")
    assert c0.unseen_categories == ["brand-new"]
    assert c0.drifted and np.isfinite(c0.statistic) and np.isfinite(c0.psi)


def test_nan_inf_and_nulls_in_current_data_are_counted(reference, write_parquet, columns):
    data = columns(1000, seed=6)
    data["x0"] = pa.array([np.nan, np.inf, -np.inf, None] * 10 + list(data["x0"][40:]))
    data["c0"] = [None] * 100 + data["c0"][100:]
    result = _check(reference, write_parquet(data))
    by_name = {r.feature: r for r in result.features}
    assert by_name["x0"].null_rate_current == pytest.approx(20 / 1000)  # null + NaN
    assert by_name["x0"].n_current == 980  # infinities are in the overflow bins
    assert by_name["c0"].null_rate_current == pytest.approx(0.1)
    json.dumps(result.to_dict(), allow_nan=False)


def test_all_missing_current_column_is_reported_not_tested(reference, write_parquet, columns):
    data = columns(500, seed=7)
    data["x2"] = pa.array([None] * 500, pa.float64())
    result = _check(reference, write_parquet(data))
    x2 = next(r for r in result.features if r.feature == "x2")
    assert x2.note and not x2.drifted and x2.null_rate_current == 1.0
    assert result.features_tested == 4


def test_empty_current_data_is_an_error(reference, write_parquet):
    empty = write_parquet(
        {
            k: pa.array([], t)
            for k, t in [
                ("x0", pa.float64()),
                ("x1", pa.float64()),
                ("x2", pa.float64()),
                ("c0", pa.string()),
                ("b0", pa.bool_()),
            ]
        }
    )
    with pytest.raises(DataError, match="empty"):
        _check(reference, empty)


def _config(tmp_path, **drift):
    """A runtime config (the only input the runtime reads) with a contract and a drift section."""
    features = {"x0": "float", "x1": "float", "c0": "category", "b0": "bool", "note": "string"}
    config = {
        "format_version": FORMAT_VERSION,
        "project": "churn",
        "environment": "default",
        "spec_digest": "sha256:0",
        "tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",  # never a file in the working directory
        "registered_model": "churn",
        "contract": {"features": {name: {"type": kind} for name, kind in features.items()}},
        "drift": {
            "current": {"uri": "live/"},
            "method": "auto",
            "threshold": {"psi": 0.15, "share": 0.25},
            "retrain_cronjob": "churn-retrain",
            **drift,
        },
    }
    path = tmp_path / "runtime-config.json"
    path.write_text(json.dumps(config))
    return path


def test_drift_settings_come_from_the_runtime_config(tmp_path):
    config = drift_config(load_runtime_config(_config(tmp_path, on_drift="retrain")))
    assert config.features == {"x0": "numeric", "x1": "numeric", "c0": "categorical", "b0": "categorical"}
    assert config.skipped == ("note",)
    assert (config.method, config.psi_threshold, config.share_threshold) == ("auto", 0.15, 0.25)
    assert (config.project, config.on_drift) == ("churn", "retrain")
    with pytest.raises(ConfigError, match="method"):
        load_runtime_config(_config(tmp_path, method="wasserstein"))


def test_defaults_without_a_config_are_the_contracts():
    """A check run without a runtime config decides as one compiled from a spec that sets nothing."""
    from mlc.compiler.load.spec import DriftThreshold

    spec_defaults = DriftThreshold()
    assert (DriftConfig().psi_threshold, DriftConfig().share_threshold) == (spec_defaults.psi, spec_defaults.share)


def test_cli_profile_then_drift_exit_codes(tmp_path, write_parquet, columns):
    runner = CliRunner()
    ref = write_parquet(columns(10_000, seed=1))
    spec = _config(tmp_path)
    out = runner.invoke(main, ["profile", "--data", str(ref), "--config", str(spec), "-o", str(tmp_path / "p.json")])
    assert out.exit_code == 0, out.output
    assert set(json.loads((tmp_path / "p.json").read_text())["features"]) == {"x0", "x1", "c0", "b0"}
    args = ["drift", "--profile", str(tmp_path / "p.json"), "--config", str(spec), "--data"]
    same = runner.invoke(main, [*args, str(write_parquet(columns(3000, seed=3)))])
    assert same.exit_code == 0, same.output
    assert "no drift" in same.output
    shifted = write_parquet(columns(3000, seed=3, shift=0.5, shifted=("x0",)))
    drifted = runner.invoke(main, [*args, str(shifted), "--format", "json"])
    assert drifted.exit_code == 1, drifted.output
    document = json.loads(drifted.output)
    assert document["dataset"]["drifted"] is True
    assert {k for k, v in document["features"].items() if v["drifted"]} == {"x0"}
    for field in ("method", "statistic", "p_value", "threshold", "drifted"):
        assert field in document["features"]["x0"]


def test_cli_drift_against_reference_data_decides_as_a_saved_profile_does(tmp_path, write_parquet, columns):
    """`--reference` profiles the reference in the same process: the verdict, statistics and
    flags are those of `profile` followed by `drift --profile`, with the contract's kinds."""
    runner = CliRunner()
    ref = write_parquet(columns(10_000, seed=1))
    current = write_parquet(columns(3000, seed=3, shift=0.5, shifted=("x0",)))
    spec = _config(tmp_path)
    saved = tmp_path / "p.json"
    assert runner.invoke(main, ["profile", "--data", str(ref), "--config", str(spec), "-o", str(saved)]).exit_code == 0
    common = ["--config", str(spec), "--data", str(current), "--format", "json"]
    from_profile = runner.invoke(main, ["drift", "--profile", str(saved), *common])
    from_data = runner.invoke(main, ["drift", "--reference", str(ref), *common])
    assert from_data.exit_code == from_profile.exit_code == 1, from_data.output
    assert json.loads(from_data.output) == json.loads(from_profile.output)
    assert {k for k, v in json.loads(from_data.output)["features"].items() if v["drifted"]} == {"x0"}
    both = runner.invoke(main, ["drift", "--reference", str(ref), "--profile", str(saved), "--data", str(current)])
    assert both.exit_code == 2 and "exactly one of --profile, --model or --reference" in both.output
    empty = write_parquet({"x0": pa.array([], pa.float64())})
    no_rows = runner.invoke(main, ["drift", "--reference", str(empty), "--data", str(current)])
    assert no_rows.exit_code == 2 and no_rows.output.startswith("error: reference data is empty")


@pytest.mark.parametrize("problem", ["missing", "empty", "garbage", "bad-profile", "columns"])
def test_cli_user_errors_exit_2_with_one_line(problem, tmp_path, write_parquet, columns, reference):
    data = write_parquet(columns(100, seed=1))
    profile = reference
    if problem == "missing":
        data = tmp_path / "nope.parquet"
    elif problem == "empty":
        data = write_parquet(
            {k: pa.array([], pa.float64()) for k in ("x0", "x1", "x2")}
            | {"c0": pa.array([], pa.string()), "b0": pa.array([], pa.bool_())}
        )
    elif problem == "garbage":
        data = tmp_path / "garbage.parquet"
        data.write_bytes(b"\x00" * 100)
    elif problem == "bad-profile":
        profile = tmp_path / "bad.json"
        profile.write_text("{not json")
    elif problem == "columns":
        data = write_parquet({"other": [1.0, 2.0]})
    result = CliRunner().invoke(main, ["drift", "--profile", str(profile), "--data", str(data)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("error: ")
    assert "Traceback" not in result.output


def test_cli_help_does_not_import_heavy_modules():
    import subprocess
    import sys

    code = (
        "import sys; from mlc.runtime.cli import main\n"
        "heavy = {'pyarrow', 'scipy', 'matplotlib', 'mlflow', 'kubernetes', 'numpy'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_flood_of_unseen_levels_is_bounded_and_flagged(reference, write_parquet, columns, monkeypatch):
    from mlc.runtime.drift import check

    monkeypatch.setattr(check, "MAX_UNSEEN_LEVELS", 5)
    data = columns(2000, seed=8)
    data["c0"] = [f"id-{i}" for i in range(2000)]
    result = _check(reference, write_parquet(data))
    c0 = next(r for r in result.features if r.feature == "c0")
    assert len(c0.unseen_categories) == 6 and check.OTHER_UNSEEN in c0.unseen_categories
    assert c0.drifted


def test_cli_on_drift_retrain_starts_the_projects_cronjob(tmp_path, write_parquet, columns, monkeypatch):
    from mlc.runtime import retraining as retrain

    calls = []
    monkeypatch.setattr(
        retrain,
        "start_retraining",
        lambda name, namespace=None, trigger="", run_id=None: (
            calls.append((name, namespace, trigger, run_id)) or "job-1"
        ),
    )
    runner = CliRunner()
    spec = _config(tmp_path, on_drift="retrain")
    tracking = json.loads(spec.read_text())["tracking_uri"]
    write_profile(build_profile(write_parquet(columns(5000, seed=1))), tmp_path / "p.json")
    args = ["drift", "--profile", str(tmp_path / "p.json"), "--config", str(spec), "--data"]
    assert runner.invoke(main, [*args, str(write_parquet(columns(2000, seed=3)))]).exit_code == 0
    assert calls == []
    shifted = write_parquet(columns(2000, seed=3, shift=1.0, shifted=("x0", "x1")))
    result = runner.invoke(main, [*args, str(shifted), "--namespace", "ml"])
    assert result.exit_code == 1, result.output
    ((name, namespace, trigger, run_id),) = calls
    assert (name, namespace, trigger) == ("churn-retrain", "ml", "drift")
    assert "started retraining job job-1" in result.output
    # The check that started it is an MLflow run the new model version will point to.
    from mlflow import MlflowClient

    run = MlflowClient(tracking_uri=tracking).get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["mlc.check"] == "drift"
    assert run.data.metrics["drifted_features"] == 2
    experiment = MlflowClient(tracking_uri=tracking).get_experiment(run.info.experiment_id)
    assert experiment.name == "churn-monitoring"


def test_trivial_but_significant_change_at_huge_n_needs_min_psi():
    from mlc.runtime.drift.check import Comparison, apply_fdr, evaluate

    # A tiny tilt seen with a million rows on each side: p ~ 1e-7 but PSI ~ 3e-4.
    rng = np.random.default_rng(0)
    p = np.full(100, 0.01)
    q = p * (1 + 0.016 * (np.arange(100) - 49.5) / 49.5)
    comparison = Comparison(
        "x",
        "numeric",
        [str(i) for i in range(100)],
        rng.multinomial(1_000_000, p),
        rng.multinomial(1_000_000, q / q.sum()),
        0,
        1_000_000,
        0,
        1_000_000,
    )
    for min_psi, drifted in ((0.0, True), (0.01, False)):
        result = evaluate(comparison, "auto", 0.2, 0.05)
        apply_fdr([result], 0.05, min_psi)
        assert result.p_value < 1e-4 and result.psi < 0.01
        assert result.drifted is drifted


def test_a_check_never_imports_pandas_or_scipy(reference, write_parquet, columns):
    """Both cost ~0.3-0.6 s per process: a third of a typical check."""
    import subprocess
    import sys

    data = write_parquet(columns(500, seed=9))
    code = (
        "import json, sys\n"
        "from mlc.runtime.drift.check import run_check\n"
        "from mlc.runtime.drift.config import DriftConfig\n"
        f"run_check(json.load(open({str(reference)!r})), {str(data)!r}, DriftConfig())\n"
        "print(sorted({'pandas', 'scipy'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_csv_current_data_and_directories_of_files(reference, tmp_path, columns):
    import pyarrow.csv as pacsv

    folder = tmp_path / "current"
    folder.mkdir()
    for part in range(2):
        table = pa.table(columns(1000, seed=10 + part, shift=1.0, shifted=("x0",)))
        pacsv.write_csv(table, folder / f"part-{part}.csv")
    result = _check(reference, folder)
    assert result.rows_current == 2000
    assert [r.feature for r in result.features if r.drifted] == ["x0"]


def test_text_in_a_numeric_column_is_a_clear_error(reference, write_parquet, columns):
    data = columns(100, seed=11)
    data["x1"] = ["not a number"] * 100
    result = CliRunner().invoke(main, ["drift", "--profile", str(reference), "--data", str(write_parquet(data))])
    assert result.exit_code == 2
    assert result.output.startswith("error: column 'x1'") and result.output.count("\n") == 1


def test_runtime_config_supplies_features_data_and_retraining(
    tmp_path, write_parquet, columns, runtime_config, monkeypatch
):
    from mlc.runtime import retraining as retrain

    calls = []
    monkeypatch.setattr(
        retrain,
        "start_retraining",
        lambda name, namespace=None, trigger="", run_id=None: (
            calls.append((name, namespace, trigger, run_id)) or "job-2"
        ),
    )
    write_profile(build_profile(write_parquet(columns(5000, seed=1))), tmp_path / "p.json")
    shifted = write_parquet(columns(2000, seed=3, shift=1.0, shifted=("x0", "x1", "x2")))
    config_path = runtime_config(str(shifted), on_drift="retrain")
    config = drift_config(load_runtime_config(config_path))
    assert config.model_uri == "models:/churn@champion"
    assert config.grouping == {"project": "churn", "environment": "prod"}
    result = CliRunner().invoke(main, ["drift", "--config", str(config_path), "--profile", str(tmp_path / "p.json")])
    assert result.exit_code == 1, result.output
    # The tracking server is unreachable: the check is not recorded (a warning), the retraining starts anyway.
    assert calls == [("churn-prod-retrain", "ml-churn", "drift", None)]
    assert "warning: the drift check was not recorded in MLflow" in result.output


def test_unusable_runtime_config_exits_78(tmp_path, runtime_config):
    bad = tmp_path / "bad" / "runtime-config.json"
    bad.parent.mkdir()
    bad.write_text('{"format_version": 1}')
    result = CliRunner().invoke(main, ["drift", "--config", str(bad), "--profile", "p.json"])
    assert result.exit_code == 78
    assert result.output.startswith("error: ") and "project: Field required" in result.output
    without_drift = runtime_config("live.parquet")
    config = json.loads(without_drift.read_text())
    del config["drift"]
    without_drift.write_text(json.dumps(config))
    result = CliRunner().invoke(main, ["drift", "--config", str(without_drift), "--profile", "p.json"])
    assert result.exit_code == 78
    assert result.output.startswith("error: ") and "drift section" in result.output


def test_the_window_reads_only_the_folders_recent_files(tmp_path, write_parquet, columns, reference):
    """`monitor.drift.current.window`: of a folder new files land in, only those written in the
    last window are current data; a URI naming one file is that file, whatever its age."""
    import os
    import shutil
    import time

    folder = tmp_path / "live"
    folder.mkdir()
    old, new = folder / "old.parquet", folder / "new.parquet"
    shutil.move(write_parquet(columns(1000, seed=4, shift=1.0, shifted=("x0",))), old)
    shutil.move(write_parquet(columns(600, seed=5)), new)
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))

    assert _check(reference, folder).rows_current == 1600  # no window: every file
    windowed = _check(reference, folder, window_seconds=86400)
    assert (windowed.rows_current, windowed.drifted) == (600, False)  # the shifted old file is out
    assert _check(reference, old, window_seconds=86400).rows_current == 1000  # named: read whole
    an_hour_ago = time.time() - 3600
    os.utime(new, (an_hour_ago, an_hour_ago))
    with pytest.raises(DataError, match="no data file was written in the window"):
        _check(reference, folder, window_seconds=60)
