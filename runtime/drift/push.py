"""Export drift metrics to a Prometheus Pushgateway (`mlc.runtime.metrics_push`).

Metrics (the PrometheusRule alerts use exactly these names), pushed with
``PUT <url>/metrics/job/mlc-drift/project/<project>[/environment/<env>]`` (the grouping of
the compiler's runtime config `metrics.grouping`), so every push replaces the previous one for
that group:

- ``mlc_drift_feature_psi{feature="..."}``: PSI of the feature (reference bins or levels).
- ``mlc_drift_feature_drifted{feature="..."}``: 1 if the feature drifted, else 0.
- ``mlc_drift_dataset_drifted``: 1 if the dataset verdict is drift, else 0.
- ``mlc_drift_share``: share of tested features that drifted.
- ``mlc_drift_rows``: rows of current data checked.
- ``mlc_prediction_psi{output="..."}`` and ``mlc_prediction_drifted{output="..."}``: the same
  for each output of the model, when the window's predictions were checked (prediction log).
- ``mlc_drift_last_success_timestamp_seconds``: Unix time of this successful check. Only a
  completed check pushes, so a failing check (bad or empty data) leaves it stale, which is
  what a "drift check not running" alert watches.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from mlc.runtime.contract import DRIFT_PUSH_JOB, FEATURE_LABEL, OUTPUT_LABEL, QUERIED_METRICS
from mlc.runtime.drift.check import DriftResult
from mlc.runtime.metrics_push import PushError, gauge_lines, push_text
from mlc.runtime.metrics_push import push_url as _push_url

__all__ = ["PushError", "exposition", "push_metrics", "push_url"]


def exposition(result: DriftResult, now: float | None = None, predictions: DriftResult | None = None) -> str:
    """Metrics of one check in the Prometheus text exposition format."""
    now = time.time() if now is None else now
    name = QUERIED_METRICS
    tested = [r for r in result.features if r.psi is not None]
    lines = gauge_lines(
        name["drift_feature_psi"],
        "Population stability index of a feature.",
        [({FEATURE_LABEL: r.feature}, r.psi) for r in tested],
    )
    lines += gauge_lines(
        name["drift_feature_drifted"],
        "1 if the feature drifted.",
        [({FEATURE_LABEL: r.feature}, int(r.drifted)) for r in result.features],
    )
    if predictions is not None:
        outputs = [r for r in predictions.features if r.psi is not None]
        lines += gauge_lines(
            name["prediction_psi"],
            "Population stability index of a model output in the window vs the eval set at training.",
            [({OUTPUT_LABEL: r.feature}, r.psi) for r in outputs],
        )
        lines += gauge_lines(
            name["prediction_drifted"],
            "1 if the output drifted (PSI above monitor.alerts.prediction_psi and above chance).",
            [({OUTPUT_LABEL: r.feature}, int(r.drifted)) for r in predictions.features],
        )
    gauges = [
        (name["drift_dataset_drifted"], "1 if the dataset drifted.", int(result.drifted)),
        (name["drift_share"], "Share of tested features that drifted.", result.drifted_share),
        (name["drift_rows"], "Rows of current data checked.", result.rows_current),
        (name["drift_last_success_timestamp_seconds"], "Unix time of the last successful drift check.", now),
    ]
    for metric, help_text, value in gauges:
        lines += gauge_lines(metric, help_text, [({}, value)])
    return "\n".join(lines) + "\n"


def push_url(base_url: str, grouping: Mapping[str, str]) -> str:
    """Grouping-key URL of the drift job's group."""
    return _push_url(base_url, DRIFT_PUSH_JOB, grouping)


def push_metrics(
    base_url: str,
    grouping: Mapping[str, str],
    result: DriftResult,
    timeout: float = 10.0,
    predictions: DriftResult | None = None,
) -> None:
    """PUT the check's metrics to the Pushgateway, replacing this group's previous push."""
    push_text(base_url, DRIFT_PUSH_JOB, grouping, exposition(result, predictions=predictions), timeout)
