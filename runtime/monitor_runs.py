"""The MLflow runs of monitoring checks that start a retraining: the link from a new model version
back to what triggered it.

A drift check or a feedback job that is about to start retraining first records itself as a run
of the experiment `<project>-monitoring` (its verdict's numbers as metrics, its report as an
artifact, tags saying what it was); the retraining Job carries that run's id, and training tags
the new run and model version with it (`retraining.trigger_tags`). Checks that start nothing log
no run: their numbers are in Prometheus.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from mlc.runtime.contract import MONITOR_EXPERIMENT_SUFFIX

CHECK_TAG = "mlc.check"  # drift | feedback


def log_check_run(
    tracking_uri: str,
    project: str,
    check: str,
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    reports: Mapping[str, str],
) -> str:
    """Record one check as an MLflow run; its run id. Non-finite metrics are left out."""
    # A check must not hang for minutes on an unreachable server (MLflow retries 7 times by default).
    for variable, value in (("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1"), ("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")):
        os.environ.setdefault(variable, value)
    from mlflow import MlflowClient

    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=tracking_uri)
    name = f"{project}{MONITOR_EXPERIMENT_SUFFIX}"
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        experiment_id = experiment.experiment_id
    else:
        location = None
        if tracking_uri.startswith("sqlite:///"):  # beside the database, as training's experiment
            location = (Path(tracking_uri.removeprefix("sqlite:///")).parent / "artifacts").absolute().as_uri()
        experiment_id = client.create_experiment(name, artifact_location=location)
    run = client.create_run(experiment_id, tags={CHECK_TAG: check, "mlc.project": project, **tags})
    run_id = run.info.run_id
    for key, value in metrics.items():
        if math.isfinite(value):
            client.log_metric(run_id, key, float(value))
    with tempfile.TemporaryDirectory(prefix="mlc-check-") as scratch:
        for filename, text in reports.items():
            path = os.path.join(scratch, filename)
            Path(path).write_text(text, encoding="utf-8")
            client.log_artifact(run_id, path)
    client.set_terminated(run_id)
    return run_id
