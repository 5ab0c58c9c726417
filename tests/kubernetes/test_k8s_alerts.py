"""PrometheusRules pass `promtool check rules`, and the emitted `promtool test rules` files pass,
run as written beside the rule file they name: every alert has a case that fires it and one that
does not. No alert queries a metric nothing exports."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import PurePosixPath

import pytest

from k8s_cases import CHURN
from k8s_validators import find_tool


def _rule_and_tests(case):
    for path, docs in case.documents.items():
        pure = PurePosixPath(path)
        if pure.name != "alerts.test.yaml":
            continue
        env = pure.parent.name
        root = pure.parents[2]
        (rule,) = [
            doc
            for p, ds in case.documents.items()
            if PurePosixPath(p).parent == root / env
            for doc in ds
            if doc["kind"] == "PrometheusRule"
        ]
        yield path, rule, docs[0]


def test_every_environment_with_alerts_has_a_test_file(rendered):
    for case in rendered.values():
        rules = [doc for _, doc in case.resources() if doc["kind"] == "PrometheusRule"]
        tests = list(_rule_and_tests(case))
        assert len(rules) == len(tests), case.name


def test_every_alert_has_a_firing_and_a_quiet_case(rendered):
    checked = 0
    for case in rendered.values():
        for path, rule, tests in _rule_and_tests(case):
            alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
            firing = {
                t["alert_rule_test"][0]["alertname"] for t in tests["tests"] if t["alert_rule_test"][0]["exp_alerts"]
            }
            quiet = {
                t["alert_rule_test"][0]["alertname"]
                for t in tests["tests"]
                if not t["alert_rule_test"][0]["exp_alerts"]
            }
            assert alerts == firing == quiet, f"{case.name}:{path}"
            checked += len(alerts)
    assert checked >= 6


def test_churn_alerts_cover_latency_errors_drift_live_quality_and_both_jobs(rendered):
    (rule,) = [
        doc for path, doc in rendered["churn"].resources() if doc["kind"] == "PrometheusRule" and "/production/" in path
    ]
    names = {r["alert"].removeprefix("ChurnProduction") for g in rule["spec"]["groups"] for r in g["rules"]}
    assert names == {
        "LatencyP95High",
        "ErrorRateHigh",
        "DataDrift",
        "PredictionDrift",
        "DriftJobFailed",
        "DriftCheckStale",
        "LiveF1BelowGate",
        "FeedbackJobFailed",
        "FeedbackStale",
        "ServedModelNotChampion",  # production serves through a canary: its pods are pinned to a version
    }


def test_the_rule_file_beside_the_tests_holds_the_prometheus_rules_groups(rendered):
    checked = 0
    for case in rendered.values():
        for path, rule, tests in _rule_and_tests(case):
            rules_path = str(PurePosixPath(path).with_name(tests["rule_files"][0]))
            assert case.documents[rules_path] == [rule["spec"]], f"{case.name}:{rules_path}"
            checked += 1
    assert checked >= 3


def test_promtool_checks_and_tests_every_rule_as_written(rendered):
    """`promtool test rules` in the emitted folder, on the emitted files, exactly as they were written."""
    promtool = find_tool("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    ran = 0
    for case in rendered.values():
        for path, _, _ in _rule_and_tests(case):
            folder = case.root / PurePosixPath(path).parent
            for command in (["check", "rules", "alerts.rules.yaml"], ["test", "rules", "alerts.test.yaml"]):
                done = subprocess.run([promtool, *command], cwd=folder, capture_output=True, text=True, check=False)
                assert done.returncode == 0, (
                    f"{case.name}:{path}: promtool {' '.join(command)}\n{done.stdout}{done.stderr}"
                )
                assert "SUCCESS" in done.stdout + done.stderr
            ran += 1
    assert ran >= 3


def test_prediction_psi_without_a_prediction_log_compiles_no_alert_and_says_so_at_its_line(tmp_path):
    """Nothing would export mlc_prediction_psi: the setting is accepted with a warning naming what is
    missing, and no alert queries it (with the log, test_alerts_fire_and_stay_quiet runs its cases)."""
    from mlc.compiler.cli.views import render_diagnostics
    from mlc.compiler.pipeline import compile_spec_file

    text = (CHURN / "mlproject.yaml").read_text()
    # The example less its prediction log (and the feedback job, which reads the log too).
    spec = (
        text[: text.index("  prediction_log:")]
        + text[text.index("  drift:\n") : text.index("  feedback:")]
        + text[text.index("  alerts:") :]
    )
    # ...and the environments' own logs and labels; production's drift then reads a live folder.
    spec = "".join(
        line.replace("{current: {uri: null}}", "{current: {uri: s3://acme-ml/churn/production/live/}}")
        for line in spec.splitlines(keepends=True)
        if "prediction_log: {" not in line and "feedback: {labels:" not in line
    )
    line = next(i for i, text_line in enumerate(spec.splitlines(), 1) if "prediction_psi: 0.25" in text_line)
    shutil.copytree(CHURN, tmp_path / "churn")
    (tmp_path / "churn" / "mlproject.yaml").write_text(spec)
    compiled = compile_spec_file(tmp_path / "churn" / "mlproject.yaml", "mlproject.yaml")
    assert compiled.ok, [d.render() for d in compiled.result.diagnostics]
    assert render_diagnostics(compiled.result.diagnostics).splitlines()[0] == (
        f"mlproject.yaml:{line}:21: warning: monitor.alerts.prediction_psi: not compiled: the drift job checks the "
        "model's predictions in the prediction log, and there is no monitor.prediction_log; no alert is emitted for it"
    )
    compiled_text = b"".join(artifact.content for artifact in compiled.artifacts)
    assert b"mlc_prediction_psi" not in compiled_text.replace(b'"prediction_psi": "mlc_prediction_psi"', b"")
    assert b"PredictionDrift" not in compiled_text


def test_the_loops_alerts_are_compiled_from_the_gates_and_the_prediction_log():
    """The churn example: prediction drift (with its threshold), one live-quality alert per min/max
    gate on a quality metric (f1 min 0.45; not roc_auc's max_drop nor latency's max), and the feedback
    job's own health."""
    from mlc.compiler.backends.kubernetes.monitoring import alert_cases
    from mlc.compiler.pipeline import compile_spec_file

    compiled = compile_spec_file(CHURN / "mlproject.yaml", "mlproject.yaml")
    assert compiled.ok
    (staging,) = [r for r in compiled.result.resolved if r.environment == "staging"]
    cases = {case.name: case for case in alert_cases(staging)}
    assert {
        "ChurnStagingPredictionDrift",
        "ChurnStagingLiveF1BelowGate",
        "ChurnStagingFeedbackJobFailed",
        "ChurnStagingFeedbackStale",
    } <= set(cases)
    assert not [name for name in cases if "RocAuc" in name or ("Latency" in name and "Live" in name)]
    live = cases["ChurnStagingLiveF1BelowGate"]
    selector = '{job="mlc-feedback",project="churn",environment="staging"'
    assert live.expr == (
        f'max(mlc_live_metric{selector},metric="f1"}}) < 0.45 and on() max(mlc_live_labelled_rows{selector}}}) >= 200'
    )
    assert (live.for_, len(live.more_quiet)) == ("30m", 1)  # too few labelled rows: quiet
    drift = cases["ChurnStagingPredictionDrift"]
    assert "> 0.25 and mlc_prediction_drifted" in drift.expr
