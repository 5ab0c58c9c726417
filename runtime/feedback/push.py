"""Export live quality to a Prometheus Pushgateway (job `mlc-feedback`, the drift job's grouping).

- ``mlc_live_metric{metric="f1"}``: each live metric over the window's labelled rows (a metric
  with no labelled row is left out, so an alert never compares a missing value).
- ``mlc_live_labelled_rows``: labelled rows it was computed on; alerts need `min_rows` of them.
- ``mlc_live_predictions``: logged predictions of the champion in the window.
- ``mlc_live_label_share``: the share of those that got a label so far.
- ``mlc_feedback_last_success_timestamp_seconds``: when this run finished (stale: the job stopped).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

from mlc.runtime.contract import FEEDBACK_PUSH_JOB, METRIC_LABEL, QUERIED_METRICS
from mlc.runtime.feedback.quality import LiveQuality
from mlc.runtime.metrics_push import gauge_lines, push_text


def exposition(quality: LiveQuality, now: float | None = None) -> str:
    """The feedback job's metrics in the text exposition format."""
    now = time.time() if now is None else now
    name = QUERIED_METRICS
    measured = [({METRIC_LABEL: metric}, value) for metric, value in quality.metrics.items() if math.isfinite(value)]
    lines = gauge_lines(name["live_metric"], "An evaluation metric on live predictions with labels.", measured)
    for metric, help_text, value in (
        (name["live_labelled_rows"], "Logged predictions with a label, in the feedback window.", quality.labelled),
        (name["live_predictions"], "Logged predictions of the champion in the feedback window.", quality.predictions),
        (name["live_label_share"], "Share of the window's logged predictions with a label.", quality.label_share),
        (name["feedback_last_success_timestamp_seconds"], "Unix time of the last successful feedback run.", now),
    ):
        lines += gauge_lines(metric, help_text, [({}, value)])
    return "\n".join(lines) + "\n"


def push_quality(base_url: str, grouping: Mapping[str, str], quality: LiveQuality) -> None:
    """PUT the live metrics, replacing the previous run's."""
    push_text(base_url, FEEDBACK_PUSH_JOB, grouping, exposition(quality))
