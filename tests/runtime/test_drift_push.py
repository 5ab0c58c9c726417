"""Pushing drift metrics to a real Pushgateway binary started on 127.0.0.1."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlc.runtime.cli import main
from mlc.runtime.drift.profile import build_profile, write_profile

BINARY = shutil.which("prometheus-pushgateway") or (
    "/usr/bin/prometheus-pushgateway" if Path("/usr/bin/prometheus-pushgateway").exists() else None
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def pushgateway(tmp_path):
    """URL of a pushgateway running for this test only."""
    if BINARY is None:
        pytest.skip("prometheus-pushgateway binary not installed (apt-get install prometheus-pushgateway)")
    port = _free_port()
    process = subprocess.Popen(
        [BINARY, f"--web.listen-address=127.0.0.1:{port}", f"--persistence.file={tmp_path / 'pg.data'}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/-/ready", timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("pushgateway did not become ready")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _metrics(url: str) -> list[str]:
    text = urllib.request.urlopen(f"{url}/metrics", timeout=5).read().decode()
    return [line for line in text.splitlines() if line.startswith("mlc_drift_")]


def _sample(lines: list[str], prefix: str) -> float:
    matches = [line for line in lines if line.startswith(prefix)]
    assert len(matches) == 1, (prefix, lines)
    return float(matches[0].rsplit(" ", 1)[1])


def test_drift_metrics_reach_the_pushgateway(pushgateway, tmp_path, write_parquet, columns):
    profile = tmp_path / "p.json"
    write_profile(build_profile(write_parquet(columns(5000, seed=1))), profile)
    data = write_parquet(columns(2000, seed=2, shift=1.0, shifted=("x0", "x1", "x2")))
    before = time.time()
    result = CliRunner().invoke(
        main, ["drift", "--profile", str(profile), "--data", str(data), "--push", pushgateway, "--project", "churn"]
    )
    assert result.exit_code == 1, result.output
    lines = _metrics(pushgateway)
    group = 'instance="",job="mlc-drift",project="churn"'
    assert _sample(lines, f"mlc_drift_dataset_drifted{{{group}}}") == 1
    assert _sample(lines, f"mlc_drift_share{{{group}}}") == pytest.approx(0.6)
    assert _sample(lines, f"mlc_drift_rows{{{group}}}") == 2000
    assert _sample(lines, f'mlc_drift_feature_drifted{{feature="x0",{group}}}') == 1
    assert _sample(lines, f'mlc_drift_feature_drifted{{feature="c0",{group}}}') == 0
    assert _sample(lines, f'mlc_drift_feature_psi{{feature="x0",{group}}}') > 0.2
    stamp = _sample(lines, f"mlc_drift_last_success_timestamp_seconds{{{group}}}")
    assert before - 1 <= stamp <= time.time() + 1

    # A failing check (empty data) exits 2 and leaves the success timestamp untouched.
    empty = write_parquet({"x0": [], "x1": [], "x2": [], "c0": [], "b0": []})
    failed = CliRunner().invoke(
        main, ["drift", "--profile", str(profile), "--data", str(empty), "--push", pushgateway, "--project", "churn"]
    )
    assert failed.exit_code == 2
    assert _sample(_metrics(pushgateway), f"mlc_drift_last_success_timestamp_seconds{{{group}}}") == stamp


def test_unreachable_pushgateway_is_a_clear_error(tmp_path, write_parquet, columns):
    profile = tmp_path / "p.json"
    write_profile(build_profile(write_parquet(columns(500, seed=1))), profile)
    result = CliRunner().invoke(
        main,
        [
            "drift",
            "--profile",
            str(profile),
            "--data",
            str(write_parquet(columns(200, seed=2))),
            "--push",
            f"http://127.0.0.1:{_free_port()}",
        ],
    )
    assert result.exit_code == 2
    assert "cannot push metrics" in result.output


def test_runtime_config_grouping_labels_reach_the_pushgateway(
    pushgateway, tmp_path, write_parquet, columns, runtime_config
):
    profile = tmp_path / "p.json"
    write_profile(build_profile(write_parquet(columns(5000, seed=1))), profile)
    current = write_parquet(columns(2000, seed=2))
    config = runtime_config(str(current))
    result = CliRunner().invoke(
        main, ["drift", "--config", str(config), "--profile", str(profile), "--push", pushgateway]
    )
    assert result.exit_code == 0, result.output
    group = 'environment="prod",instance="",job="mlc-drift",project="churn"'
    assert _sample(_metrics(pushgateway), f"mlc_drift_rows{{{group}}}") == 2000
