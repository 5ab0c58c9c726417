"""PrometheusRules pass `promtool check rules`, and the emitted `promtool test rules` files pass:
every alert has a case that fires it and one that does not."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import PurePosixPath

import pytest
import yaml

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


def test_churn_alerts_cover_latency_errors_drift_and_the_drift_job(rendered):
    (rule,) = [
        doc for path, doc in rendered["churn"].resources() if doc["kind"] == "PrometheusRule" and "/production/" in path
    ]
    names = {r["alert"].removeprefix("ChurnProduction") for g in rule["spec"]["groups"] for r in g["rules"]}
    assert names == {
        "LatencyP95High",
        "ErrorRateHigh",
        "PredictionDrift",
        "DataDrift",
        "DriftJobFailed",
        "DriftCheckStale",
    }


def test_promtool_checks_and_tests_every_rule(rendered, tmp_path):
    promtool = find_tool("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    ran = 0
    for case in rendered.values():
        for path, rule, _ in _rule_and_tests(case):
            folder = tmp_path / case.name / PurePosixPath(path).parent.name
            folder.mkdir(parents=True)
            (folder / "alerts.rules.yaml").write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
            shutil.copy(case.root / path, folder / "alerts.test.yaml")
            check = subprocess.run(
                [promtool, "check", "rules", "alerts.rules.yaml"],
                cwd=folder,
                capture_output=True,
                text=True,
                check=False,
            )
            assert check.returncode == 0, f"{case.name}:{path}\n{check.stdout}{check.stderr}"
            test = subprocess.run(
                [promtool, "test", "rules", "alerts.test.yaml"],
                cwd=folder,
                capture_output=True,
                text=True,
                check=False,
            )
            assert test.returncode == 0, f"{case.name}:{path}\n{test.stdout}{test.stderr}"
            assert "SUCCESS" in test.stdout + test.stderr
            ran += 1
    assert ran >= 3
