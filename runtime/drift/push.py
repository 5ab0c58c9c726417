"""Export drift metrics to a Prometheus Pushgateway (plain HTTP PUT, text exposition format).

Metrics (the PrometheusRule alerts use exactly these names), pushed with
``PUT <url>/metrics/job/mlc-drift/project/<project>[/environment/<env>]`` (the grouping of
the compiler's runtime config `metrics.grouping`), so every push replaces the previous one for
that group:

- ``mlc_drift_feature_psi{feature="..."}``: PSI of the feature (reference bins or levels).
- ``mlc_drift_feature_drifted{feature="..."}``: 1 if the feature drifted, else 0.
- ``mlc_drift_dataset_drifted``: 1 if the dataset verdict is drift, else 0.
- ``mlc_drift_share``: share of tested features that drifted.
- ``mlc_drift_rows``: rows of current data checked.
- ``mlc_drift_last_success_timestamp_seconds``: Unix time of this successful check. Only a
  completed check pushes, so a failing check (bad or empty data) leaves it stale, which is
  what a "drift check not running" alert watches.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping

from mlc.runtime.contract import DRIFT_PUSH_JOB, FEATURE_LABEL, QUERIED_METRICS
from mlc.runtime.drift.check import DriftResult
from mlc.runtime.errors import MlcRuntimeError


class PushError(MlcRuntimeError):
    """The Pushgateway could not be reached or refused the metrics."""


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def exposition(result: DriftResult, now: float | None = None) -> str:
    """Metrics of one check in the Prometheus text exposition format."""
    now = time.time() if now is None else now
    name = QUERIED_METRICS
    psi, drifted = name["drift_feature_psi"], name["drift_feature_drifted"]
    lines = [f"# HELP {psi} Population stability index of a feature.", f"# TYPE {psi} gauge"]
    lines += [f'{psi}{{{FEATURE_LABEL}="{_label(r.feature)}"}} {r.psi!r}' for r in result.features if r.psi is not None]
    lines += [f"# HELP {drifted} 1 if the feature drifted.", f"# TYPE {drifted} gauge"]
    lines += [f'{drifted}{{{FEATURE_LABEL}="{_label(r.feature)}"}} {int(r.drifted)}' for r in result.features]
    gauges = [
        (name["drift_dataset_drifted"], "1 if the dataset drifted.", int(result.drifted)),
        (name["drift_share"], "Share of tested features that drifted.", result.drifted_share),
        (name["drift_rows"], "Rows of current data checked.", result.rows_current),
        (name["drift_last_success_timestamp_seconds"], "Unix time of the last successful drift check.", now),
    ]
    for name, help_text, value in gauges:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value!r}"]
    return "\n".join(lines) + "\n"


def push_url(base_url: str, grouping: Mapping[str, str]) -> str:
    """Grouping-key URL: the job label, then each grouping label in order."""
    path = "".join(f"/{urllib.parse.quote(k, safe='')}/{urllib.parse.quote(v, safe='')}" for k, v in grouping.items())
    return f"{base_url.rstrip('/')}/metrics/job/{DRIFT_PUSH_JOB}{path}"


def push_metrics(base_url: str, grouping: Mapping[str, str], result: DriftResult, timeout: float = 10.0) -> None:
    """PUT the check's metrics to the Pushgateway, replacing this group's previous push."""
    request = urllib.request.Request(
        push_url(base_url, grouping),
        data=exposition(result).encode(),
        method="PUT",
        headers={"Content-Type": "text/plain; version=0.0.4"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise PushError(
            f"pushgateway {base_url} refused metrics: HTTP {exc.code} "
            f"{exc.read().decode(errors='replace').strip()[:200]}"
        ) from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PushError(f"cannot push metrics to {base_url}: {reason}") from exc
