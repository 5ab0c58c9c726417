"""Monitoring: ServiceMonitors, the drift and feedback CronJobs (and their RBAC for retraining),
PrometheusRule, and the `promtool test rules` file that proves every alert fires when it should
and only then.

The alert test file (`<gitops.path>/tests/<env>/alerts.test.yaml`) names the rule file
`alerts.rules.yaml`, emitted beside it with the same rule groups as the PrometheusRule's `spec`,
so `promtool check rules alerts.rules.yaml` and `promtool test rules alerts.test.yaml` run in
that folder as written. Alerts carry static annotations so the expected alerts in the tests are
exact. Each alert is defined once, as an `AlertCase` holding its rule and the input series of a
firing and a quiet case.

Every alert queries a metric something exports: the server (scraped), the drift job (input
and prediction drift, pushed) or the feedback job (live quality, pushed). Live-quality alerts are
compiled from the gates: a live metric beyond its gate's `min` or `max`, over at least
`monitor.feedback.min_rows` labelled rows, for `LIVE_QUALITY_FOR`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from mlc.compiler.backends.kubernetes.images import image_reference
from mlc.compiler.backends.kubernetes.kserve import MLSERVER_METRICS_PORT
from mlc.compiler.backends.kubernetes.objects import manifest, object_meta, selector_labels, service_account_objects
from mlc.compiler.backends.kubernetes.pod import ContainerSpec, pod_spec
from mlc.compiler.backends.kubernetes.queries import (
    drift_selector,
    error_rate_query,
    feedback_selector,
    latency_histogram,
    latency_p95_ms_query,
    requests_counter,
    serving_selector,
)
from mlc.compiler.backends.kubernetes.serving import (
    CANARY_HASH_LABEL,
    METRICS_PORT_NAME,
    PORT_NAME,
    canary_steps,
    is_canary,
    serve_section,
)
from mlc.compiler.resolve.resolved import ResolvedSpec, Resources
from mlc.runtime.contract import (
    CONFIG_PATH,
    LATENCY_METRICS,
    METRIC_LABEL,
    OUTPUT_LABEL,
    QUERIED_METRICS,
    SERVER_PATHS,
    duration_seconds,
    job_arguments,
)

DRIFT_COMPONENT = "drift"
FEEDBACK_COMPONENT = "feedback"
MONITORING_COMPONENT = "monitoring"
RULE_FILE = "alerts.rules.yaml"
SCRAPE_INTERVAL = "30s"
PUSHGATEWAY_SERVICE_LABELS = {"app.kubernetes.io/name": "prometheus-pushgateway"}
PUSHGATEWAY_PORT = "http"
DRIFT_RESOURCES = Resources(cpu="1", memory="2Gi")
DRIFT_DEADLINE_SECONDS = 3600
SERVING_ALERT_FOR = "10m"
CANARY_SETTLE_MINUTES = 15  # beyond a canary's pauses: pods starting, the analysis' last runs
LIVE_QUALITY_FOR = "30m"  # a live metric beyond its gate this long (the feedback job keeps it between runs)
TEST_MINUTES = 240  # length of every input series


@dataclass(frozen=True)
class AlertCase:
    """One alert: its rule, and the series of a case that fires it and one that does not."""

    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    firing: dict[str, str]  # series -> promtool values notation
    quiet: dict[str, str]
    eval_minutes: int
    more_quiet: tuple[dict[str, str], ...] = ()  # further cases that must not fire


def _title(resolved: ResolvedSpec) -> str:
    return "".join(part.capitalize() for part in f"{resolved.name}-{resolved.environment}".split("-"))


def _stale_seconds(schedule: str) -> int:
    """Three schedule periods (at least 1h): how old the last successful drift run may get."""
    minute, hour, *_ = schedule.split() if not schedule.startswith("@") else ["0", "0"]
    if minute.startswith("*/") and hour == "*":
        period = int(minute[2:]) * 60
    elif hour == "*":
        period = 3600
    else:
        period = 86400
    return max(3 * period, 3600)


def alert_cases(resolved: ResolvedSpec) -> list[AlertCase]:
    """Every alert of the environment, with its promtool cases."""
    spec = resolved.spec
    monitor, serving = spec.monitor, resolved.serving
    if monitor is None:
        return []
    prefix = _title(resolved)
    cases: list[AlertCase] = []
    alerts = monitor.alerts
    series = serving_selector(resolved)
    if serving is not None and alerts.latency_p95_ms is not None:
        threshold = alerts.latency_p95_ms / 1000
        bucket = f"{latency_histogram(resolved)}_bucket"
        low, high = f"{threshold / 2:g}", f"{threshold * 2:g}"

        def buckets(below: str, above: str) -> dict[str, str]:
            return {
                _series(bucket, series, f'le="{low}"'): below,
                _series(bucket, series, f'le="{high}"'): above,
                _series(bucket, series, 'le="+Inf"'): above,
            }

        cases.append(
            AlertCase(
                name=f"{prefix}LatencyP95High",
                expr=f"{latency_p95_ms_query(resolved)} > {alerts.latency_p95_ms:g}",
                for_=SERVING_ALERT_FOR,
                severity="warning",
                summary=f"p95 latency of {resolved.names.serving} > {alerts.latency_p95_ms:g} ms",
                firing=buckets(f"0x{TEST_MINUTES}", f"0+60x{TEST_MINUTES}"),
                quiet=buckets(f"0+60x{TEST_MINUTES}", f"0+60x{TEST_MINUTES}"),
                eval_minutes=30,
            )
        )
    if serving is not None and serving.engine != "vllm" and alerts.error_rate is not None:
        total, status = requests_counter(resolved)
        cases.append(
            AlertCase(
                name=f"{prefix}ErrorRateHigh",
                expr=f"{error_rate_query(resolved)} > {alerts.error_rate:g}",
                for_=SERVING_ALERT_FOR,
                severity="critical",
                summary=f"5xx share of {resolved.names.serving} above {alerts.error_rate:g}",
                firing={
                    _series(total, series, f'{status}="200"'): f"0x{TEST_MINUTES}",
                    _series(total, series, f'{status}="500"'): f"0+60x{TEST_MINUTES}",
                },
                quiet={
                    _series(total, series, f'{status}="200"'): f"0+60x{TEST_MINUTES}",
                    _series(total, series, f'{status}="500"'): f"0x{TEST_MINUTES}",
                },
                eval_minutes=30,
            )
        )
    if resolved.pinned_deployment is not None:
        cases.append(_served_not_champion_case(resolved, prefix))
    drift = monitor.drift
    pushed = drift_selector(resolved)
    if drift is not None:
        drifted = QUERIED_METRICS["drift_dataset_drifted"]
        cases.append(
            AlertCase(
                name=f"{prefix}DataDrift",
                expr=f"max({drifted}{pushed}) > 0",
                for_="0m",
                severity="warning",
                summary=f"input data of {resolved.name} drifted",
                firing={f"{drifted}{pushed}": f"1x{TEST_MINUTES}"},
                quiet={f"{drifted}{pushed}": f"0x{TEST_MINUTES}"},
                eval_minutes=10,
            )
        )
        if alerts.prediction_psi is not None and monitor.prediction_log is not None:
            cases.append(_prediction_drift_case(resolved, prefix, alerts.prediction_psi))
        cases += _check_job_cases(
            resolved, prefix, "Drift", resolved.names.drift, drift.schedule, "drift_last_success_timestamp_seconds"
        )
    feedback = monitor.feedback
    if feedback is not None and spec.evaluate is not None:
        cases += [_live_quality_case(resolved, prefix, gate, feedback.min_rows) for gate in _live_gates(resolved)]
        cases += _check_job_cases(
            resolved,
            prefix,
            "Feedback",
            resolved.names.feedback,
            feedback.schedule,
            "feedback_last_success_timestamp_seconds",
        )
    return cases


def _check_job_cases(
    resolved: ResolvedSpec, prefix: str, what: str, cronjob: str, schedule: str, last_success: str
) -> list[AlertCase]:
    """A scheduled check's own health: its Job failed, or it has not succeeded for three periods."""
    selector = drift_selector(resolved) if what == "Drift" else feedback_selector(resolved)
    last = QUERIED_METRICS[last_success]
    stale = _stale_seconds(schedule)
    job = f'namespace="{resolved.namespace}",job_name=~"{cronjob}-.+"'
    failed = f"kube_job_status_failed{{{job}}}"
    labels = _job_labels(resolved, cronjob)
    minutes = stale // 60
    noun = "drift check" if what == "Drift" else "feedback job"
    check = "DriftCheck" if what == "Drift" else "Feedback"
    return [
        AlertCase(
            name=f"{prefix}{what}JobFailed",
            expr=f"max({failed}) > 0",
            for_="0m",
            severity="warning",
            summary=f"the {noun} of {resolved.name} failed",
            firing={_series("kube_job_status_failed", labels): f"1x{TEST_MINUTES}"},
            quiet={_series("kube_job_status_failed", labels): f"0x{TEST_MINUTES}"},
            eval_minutes=10,
        ),
        AlertCase(
            name=f"{prefix}{check}Stale",
            expr=f"(time() - max({last}{selector})) > {stale} or max(absent({last}{selector}))",
            for_="5m",
            severity="warning",
            summary=f"no successful {noun} of {resolved.name} for {minutes} minutes",
            firing={f"{last}{selector}": f"0x{minutes * 3}"},
            quiet={f"{last}{selector}": f"0+60x{minutes * 3}"},
            eval_minutes=minutes + 30,
        ),
    ]


def _served_not_champion_case(resolved: ResolvedSpec, prefix: str) -> AlertCase:
    """A canary's pods serve the version their template pins; no pod serving `@champion` for longer
    than a canary takes means the rollout of the promoted version was aborted (or never started).
    The registry's alias is left as the gate set it: someone decides (fix and promote again, or
    `mlc-runtime rollback`, which pins the previous version)."""
    metric = QUERIED_METRICS["model_is_champion"]
    series = serving_selector(resolved)
    serve = serve_section(resolved)
    pauses = sum("pause" in step for step in canary_steps(serve))
    for_minutes = math.ceil(duration_seconds(serve.rollout.pause) * pauses / 60) + CANARY_SETTLE_MINUTES
    length = max(TEST_MINUTES, for_minutes * 2)
    stable, canary = (
        _series(metric, series, 'pod="stable",version="1"'),
        _series(metric, series, 'pod="canary",version="2"'),
    )
    return AlertCase(
        name=f"{prefix}ServedModelNotChampion",
        expr=f"max({metric}{series}) == 0",
        for_=f"{for_minutes}m",
        severity="critical",
        summary=f"no pod of {resolved.names.serving} serves @champion (a canary of the promoted version aborted?): "
        "promote again or run mlc-runtime rollback",
        firing={stable: f"0x{length}"},
        quiet={stable: f"1x{length}"},
        # Mid-rollout: the stable pods serve the old version, the canary's the champion.
        more_quiet=({stable: f"0x{length}", canary: f"1x{length}"},),
        eval_minutes=for_minutes + 10,
    )


def _prediction_drift_case(resolved: ResolvedSpec, prefix: str, threshold: float) -> AlertCase:
    """The model's outputs drifted: PSI above `monitor.alerts.prediction_psi` and above what the
    window's row count reaches by chance (the drift job decides the latter: `mlc_prediction_drifted`)."""
    psi, drifted = QUERIED_METRICS["prediction_psi"], QUERIED_METRICS["prediction_drifted"]
    output = f'{OUTPUT_LABEL}="probability"'
    psi_series, drifted_series = (
        f"{psi}{drift_selector(resolved, output)}",
        f"{drifted}{drift_selector(resolved, output)}",
    )
    big = f"{threshold * 2:g}x{TEST_MINUTES}"
    return AlertCase(
        name=f"{prefix}PredictionDrift",
        expr=f"max({psi}{drift_selector(resolved)} > {threshold:g} and {drifted}{drift_selector(resolved)} == 1)",
        for_="0m",
        severity="warning",
        summary=f"the predictions of {resolved.name} drifted (PSI above {threshold:g}, beyond chance)",
        firing={psi_series: big, drifted_series: f"1x{TEST_MINUTES}"},
        # The same PSI on a window too small to tell it from noise: the drift job says not drifted.
        quiet={psi_series: big, drifted_series: f"0x{TEST_MINUTES}"},
        more_quiet=({psi_series: f"{threshold / 2:g}x{TEST_MINUTES}", drifted_series: f"1x{TEST_MINUTES}"},),
        eval_minutes=10,
    )


def _live_gates(resolved: ResolvedSpec) -> list[Any]:
    """The gates a live metric can break: an absolute `min` or `max` on a quality metric."""
    evaluate = resolved.spec.evaluate
    assert evaluate is not None
    return [
        gate
        for gate in evaluate.gates
        if (gate.min is not None or gate.max is not None) and gate.metric not in LATENCY_METRICS
    ]


def _live_quality_case(resolved: ResolvedSpec, prefix: str, gate: Any, min_rows: int) -> AlertCase:
    """A live metric beyond its gate over enough labelled rows, for `LIVE_QUALITY_FOR`."""
    below = gate.min is not None
    bound = gate.min if below else gate.max
    metric = QUERIED_METRICS["live_metric"]
    rows = QUERIED_METRICS["live_labelled_rows"]
    matcher = f'{METRIC_LABEL}="{gate.metric}"'
    value_series = f"{metric}{feedback_selector(resolved, matcher)}"
    rows_series = f"{rows}{feedback_selector(resolved)}"
    title = "".join(part.capitalize() for part in gate.metric.split("_"))
    delta = max(abs(bound), 0.1) / 2
    bad, good = (bound - delta, bound + delta) if below else (bound + delta, bound - delta)
    enough, few = f"{min_rows * 2}x{TEST_MINUTES}", f"{max(min_rows // 2, 1)}x{TEST_MINUTES}"
    minutes = 60
    return AlertCase(
        name=f"{prefix}Live{title}{'Below' if below else 'Above'}Gate",
        expr=f"max({value_series}) {'<' if below else '>'} {bound:g} and on() max({rows_series}) >= {min_rows}",
        for_=LIVE_QUALITY_FOR,
        severity="critical",
        summary=f"live {gate.metric} of {resolved.name} {'below' if below else 'above'} its gate "
        f"({'min' if below else 'max'} {bound:g}) over {min_rows}+ labelled predictions",
        firing={value_series: f"{bad:g}x{TEST_MINUTES}", rows_series: enough},
        quiet={value_series: f"{good:g}x{TEST_MINUTES}", rows_series: enough},
        # As bad, but over too few labelled rows to tell a worse model from an unlucky sample.
        more_quiet=({value_series: f"{bad:g}x{TEST_MINUTES}", rows_series: few},),
        eval_minutes=minutes,
    )


def _series(metric: str, selector: str, extra: str = "") -> str:
    return metric + (selector[:-1] + "," + extra + "}" if extra else selector)


def _job_labels(resolved: ResolvedSpec, cronjob: str) -> str:
    return f'{{namespace="{resolved.namespace}",job_name="{cronjob}-29000000"}}'


def _rule_labels(resolved: ResolvedSpec, case: AlertCase) -> dict[str, str]:
    return {
        "severity": case.severity,
        "project": resolved.name,
        "environment": resolved.environment,
    }


def _rule_annotations(case: AlertCase) -> dict[str, str]:
    return {"summary": case.summary}


def alert_rule_groups(resolved: ResolvedSpec, cases: list[AlertCase]) -> dict[str, Any]:
    """The rule groups: a PrometheusRule's `spec`, and the rule file its promtool tests read."""
    rules = [
        {
            "alert": case.name,
            "expr": case.expr,
            "for": case.for_,
            "labels": _rule_labels(resolved, case),
            "annotations": _rule_annotations(case),
        }
        for case in cases
    ]
    return {"groups": [{"name": f"{resolved.name}.{resolved.environment}.alerts", "rules": rules}]}


def emit_prometheus_rule(resolved: ResolvedSpec, cases: list[AlertCase]) -> dict[str, Any]:
    """Alerts for latency, errors and data drift, and the drift job itself."""
    return manifest(
        "monitoring.coreos.com/v1",
        "PrometheusRule",
        object_meta(resolved, resolved.names.alerts, MONITORING_COMPONENT),
        spec=alert_rule_groups(resolved, cases),
    )


def emit_alert_rules(resolved: ResolvedSpec) -> dict[str, Any] | None:
    """The rule file `RULE_FILE` the promtool tests name: the PrometheusRule's groups, as Prometheus reads them."""
    cases = alert_cases(resolved)
    return alert_rule_groups(resolved, cases) if cases else None


def emit_alert_tests(resolved: ResolvedSpec) -> dict[str, Any] | None:
    """The `promtool test rules` file: a firing and a quiet test for every alert."""
    cases = alert_cases(resolved)
    if not cases:
        return None
    tests = []
    for case in cases:
        runs = [(True, case.firing), (False, case.quiet), *((False, quiet) for quiet in case.more_quiet)]
        for index, (firing, series) in enumerate(runs):
            expected = (
                [
                    {
                        "exp_labels": _rule_labels(resolved, case),
                        "exp_annotations": _rule_annotations(case),
                    }
                ]
                if firing
                else []
            )
            tests.append(
                {
                    "name": f"{case.name} {'fires' if firing else 'stays quiet'}{f' ({index})' if index > 1 else ''}",
                    "interval": "1m",
                    "input_series": [{"series": name, "values": values} for name, values in series.items()],
                    "alert_rule_test": [
                        {
                            "eval_time": f"{case.eval_minutes}m",
                            "alertname": case.name,
                            "exp_alerts": expected,
                        }
                    ],
                }
            )
    return {"rule_files": [RULE_FILE], "evaluation_interval": "1m", "tests": tests}


def emit_serving_monitor(resolved: ResolvedSpec) -> dict[str, Any]:
    """ServiceMonitor on `/metrics` of the serving port (canary pods keep their hash label)."""
    port = METRICS_PORT_NAME if resolved.serving is not None and resolved.serving.access is not None else PORT_NAME
    endpoint: dict[str, Any] = {"port": port, "path": SERVER_PATHS["metrics"], "interval": SCRAPE_INTERVAL}
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(resolved, "serving")},
        "endpoints": [endpoint],
    }
    if is_canary(resolved):
        spec["podTargetLabels"] = [CANARY_HASH_LABEL]
    return manifest(
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
        object_meta(resolved, resolved.names.serving, "serving"),
        spec=spec,
    )


def emit_kserve_pod_monitor(resolved: ResolvedSpec) -> dict[str, Any]:
    """PodMonitor on MLServer's metrics port of the KServe predictor pods (no Service exposes it)."""
    return manifest(
        "monitoring.coreos.com/v1",
        "PodMonitor",
        object_meta(resolved, resolved.names.serving, "serving"),
        spec={
            "selector": {"matchLabels": selector_labels(resolved, "serving")},
            "podMetricsEndpoints": [
                {"portNumber": MLSERVER_METRICS_PORT, "path": "/metrics", "interval": SCRAPE_INTERVAL}
            ],
        },
    )


def pushgateway_namespace(url: str) -> str:
    """The namespace of an in-cluster Pushgateway URL (`http://<svc>.<ns>.svc:9091`)."""
    parts = (urlparse(url).hostname or "").split(".")
    return parts[1] if len(parts) > 2 and parts[2] == "svc" else "monitoring"


def emit_pushgateway_monitor(resolved: ResolvedSpec) -> dict[str, Any]:
    """Scrape the Pushgateway with `honorLabels`, so pushed `job`/`project` labels survive."""
    return manifest(
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
        object_meta(resolved, f"{resolved.names.drift}-pushgateway", DRIFT_COMPONENT),
        spec={
            "namespaceSelector": {"matchNames": [pushgateway_namespace(resolved.pushgateway)]},
            "selector": {"matchLabels": PUSHGATEWAY_SERVICE_LABELS},
            "endpoints": [{"port": PUSHGATEWAY_PORT, "interval": SCRAPE_INTERVAL, "honorLabels": True}],
        },
    )


def _check_cronjob(
    resolved: ResolvedSpec, job: str, name: str, component: str, schedule: str, retrain: bool
) -> dict[str, Any]:
    """`mlc-runtime <job>` on a schedule, pushing to the Pushgateway (with its own service account
    when it may start retraining)."""
    role = "train" if resolved.train_image_ref else "serve"
    container = ContainerSpec(
        name=job,
        image=image_reference(resolved, role),
        command=["mlc-runtime", *job_arguments(job, CONFIG_PATH), "--push", resolved.pushgateway],
        resources=DRIFT_RESOURCES,
        uses_data=True,
    )
    pod = pod_spec(resolved, container, restart_policy="Never", service_account=name if retrain else None)
    return manifest(
        "batch/v1",
        "CronJob",
        object_meta(resolved, name, component),
        spec={
            "schedule": schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 1,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": selector_labels(resolved, component)},
                "spec": {
                    "backoffLimit": 1,
                    "activeDeadlineSeconds": DRIFT_DEADLINE_SECONDS,
                    "ttlSecondsAfterFinished": 86400,
                    "template": {
                        "metadata": {"labels": selector_labels(resolved, component)},
                        "spec": pod,
                    },
                },
            },
        },
    )


def emit_drift_cronjob(resolved: ResolvedSpec) -> dict[str, Any]:
    """`mlc-runtime drift` on `monitor.drift.schedule`, pushing to the Pushgateway."""
    monitor = resolved.spec.monitor
    assert monitor is not None and monitor.drift is not None
    return _check_cronjob(
        resolved, "drift", resolved.names.drift, DRIFT_COMPONENT, monitor.drift.schedule, resolved.retrains_on_drift
    )


def emit_feedback_cronjob(resolved: ResolvedSpec) -> dict[str, Any]:
    """`mlc-runtime feedback` on `monitor.feedback.schedule`, pushing live quality to the Pushgateway."""
    monitor = resolved.spec.monitor
    assert monitor is not None and monitor.feedback is not None
    return _check_cronjob(
        resolved,
        "feedback",
        resolved.names.feedback,
        FEEDBACK_COMPONENT,
        monitor.feedback.schedule,
        resolved.retrains_on_degrade,
    )


def emit_retrain_rbac(resolved: ResolvedSpec, name: str, component: str) -> list[dict[str, Any]]:
    """ServiceAccount, Role, RoleBinding of a check that starts retraining: read the retraining
    CronJob, create Jobs; nothing else."""
    return service_account_objects(
        resolved,
        name,
        component,
        [
            {
                "apiGroups": ["batch"],
                "resources": ["cronjobs"],
                "resourceNames": [resolved.names.retraining],
                "verbs": ["get"],
            },
            {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]},
        ],
    )


def emit_monitoring(resolved: ResolvedSpec) -> list[dict[str, Any]]:
    """Every monitoring resource of one environment."""
    spec = resolved.spec
    resources: list[dict[str, Any]] = []
    if resolved.serving is not None and resolved.serving.has_deployment:
        resources.append(emit_serving_monitor(resolved))
    if resolved.serving is not None and resolved.serving.engine == "kserve":
        resources.append(emit_kserve_pod_monitor(resolved))
    monitor = spec.monitor
    pushes = monitor is not None and (monitor.drift is not None or monitor.feedback is not None)
    if monitor is not None and monitor.drift is not None:
        resources.append(emit_drift_cronjob(resolved))
    if pushes:
        resources.append(emit_pushgateway_monitor(resolved))
    if resolved.retrains_on_drift:
        resources.extend(emit_retrain_rbac(resolved, resolved.names.drift, DRIFT_COMPONENT))
    if monitor is not None and monitor.feedback is not None:
        resources.append(emit_feedback_cronjob(resolved))
        if resolved.retrains_on_degrade:
            resources.extend(emit_retrain_rbac(resolved, resolved.names.feedback, FEEDBACK_COMPONENT))
    cases = alert_cases(resolved)
    if cases:
        resources.append(emit_prometheus_rule(resolved, cases))
    return resources
