"""The runtime config: everything `mlc-runtime` needs of one environment, as data.

The contract between the compiler and the runtime: the Kubernetes backend ships it as a
ConfigMap every pod mounts (`/etc/mlc/runtime-config.json`, also in `$MLC_RUNTIME_CONFIG`);
`mlc run` writes it to a local file. The runtime never re-resolves the spec. JSON with sorted
keys, shape (format_version 1):

    {
      "format_version": 1,
      "project": str, "environment": str, "namespace": str,
      "spec_digest": "sha256:<hex>", "compiler_version": str,
      "tracking_uri": str, "registered_model": str,
      "aliases": {"challenger": str, "champion": str, "previous": str},
      "data": {<dataset name>: {"uri": str, "format": "csv" | "parquet" | null}},
      "contract": {"target": str | null,
                   "features": {<name>: {"type", "min", "max", "nullable", "values"}}} | null,
      "train": {"entrypoint": "module:function", "params": {...}, "seed": int,
                "checkpoint": {"uri": str | null, "every": str}, "timeout_seconds": int,
                "nodes": int, "gpus_per_node": int, "spot": bool} | null,
      "evaluate": {"dataset": str, "metrics": [str], "first_model": "allow" | "block",
                   "gates": [{"metric": str, "min"|"max"|"max_drop"|"max_rise": float}]} | null,
      "serve": {"engine": str, "port": int,
                "batch": {"input": str, "output": str, "parallelism": int} | null} | null,
      "drift": {"current": {"uri": str, "window_seconds": int}, "method": str,
                "threshold": {"psi": float, "share": float}, "on_drift": "alert" | "retrain",
                "retrain_cronjob": str | null} | null,
      "metrics": {"pushgateway": str, "push_job": "mlc-drift",
                  "grouping": {"project": str, "environment": str},
                  "names": {<role>: <metric name>}},
      "exit_codes": {"config_error": 78}
    }

`exit_codes.config_error` is what the runtime exits with when this file is unusable: training
Jobs fail at once on it (podFailurePolicy FailJob) instead of retrying a broken config.
"""

from __future__ import annotations

import json
from typing import Any

from mlc.compiler.load.values import duration_seconds
from mlc.compiler.resolve.environment import ResolvedSpec

FORMAT_VERSION = 1
CONFIG_ERROR_EXIT_CODE = 78  # sysexits EX_CONFIG
DRIFT_PUSH_JOB = "mlc-drift"

# The metric names the runtime exports; alerts, autoscalers and analyses query these.
METRIC_NAMES = {
    "requests_in_flight": "mlc_requests_in_flight",
    "request_duration_seconds": "mlc_request_duration_seconds",
    "requests_total": "mlc_requests_total",
    "prediction_psi": "mlc_prediction_psi",
    "drift_feature_psi": "mlc_drift_feature_psi",
    "drift_feature_drifted": "mlc_drift_feature_drifted",
    "drift_dataset_drifted": "mlc_drift_dataset_drifted",
    "drift_share": "mlc_drift_share",
    "drift_last_success_timestamp_seconds": "mlc_drift_last_success_timestamp_seconds",
    "drift_rows": "mlc_drift_rows",
}


def retrain_enabled(resolved: ResolvedSpec) -> bool:
    """Whether the drift job starts retraining (and so needs the retraining CronJob and a Role)."""
    monitor = resolved.spec.monitor
    drift = monitor.drift if monitor is not None else None
    return drift is not None and drift.on_drift == "retrain" and resolved.spec.train is not None


def drift_grouping(resolved: ResolvedSpec) -> dict[str, str]:
    """The Pushgateway grouping key of the drift job's metrics (besides `job`)."""
    return {"project": resolved.name, "environment": resolved.environment}


def _contract(resolved: ResolvedSpec) -> dict[str, Any] | None:
    contract = resolved.spec.data.contract
    if contract is None:
        return None
    return contract.model_dump(mode="json")


def _train(resolved: ResolvedSpec) -> dict[str, Any] | None:
    train = resolved.spec.train
    if train is None:
        return None
    return {
        "entrypoint": train.entrypoint,
        "params": train.params,
        "seed": train.seed,
        "checkpoint": {"uri": train.checkpoint.uri, "every": train.checkpoint.every},
        "timeout_seconds": duration_seconds(train.timeout),
        "nodes": train.distributed.nodes,
        "gpus_per_node": train.resources.gpus,
        "spot": train.spot,
    }


def _evaluate(resolved: ResolvedSpec) -> dict[str, Any] | None:
    evaluate = resolved.spec.evaluate
    if evaluate is None:
        return None
    return {
        "dataset": evaluate.dataset,
        "metrics": evaluate.metrics,
        "first_model": evaluate.first_model,
        "gates": [gate.model_dump(mode="json", exclude_none=True) for gate in evaluate.gates],
    }


def _serve(resolved: ResolvedSpec) -> dict[str, Any] | None:
    serve = resolved.spec.serve
    if serve is None:
        return None
    batch = serve.batch
    return {
        "engine": serve.engine,
        "port": serve.port,
        "batch": None
        if batch is None
        else {"input": batch.input, "output": batch.output, "parallelism": batch.parallelism},
    }


def _drift(resolved: ResolvedSpec) -> dict[str, Any] | None:
    monitor = resolved.spec.monitor
    if monitor is None or monitor.drift is None:
        return None
    drift = monitor.drift
    return {
        "current": {
            "uri": drift.current.uri,
            "window_seconds": duration_seconds(drift.current.window),
        },
        "method": drift.method,
        "threshold": {"psi": drift.threshold.psi, "share": drift.threshold.share},
        "on_drift": drift.on_drift,
        "retrain_cronjob": resolved.names.retraining if retrain_enabled(resolved) else None,
    }


def runtime_config(resolved: ResolvedSpec) -> dict[str, Any]:
    """The runtime config of one environment, as data (shape in the module docstring)."""
    spec = resolved.spec
    return {
        "format_version": FORMAT_VERSION,
        "project": resolved.name,
        "environment": resolved.environment,
        "namespace": resolved.namespace,
        "spec_digest": f"sha256:{resolved.spec_digest}",
        "compiler_version": resolved.compiler_version,
        "tracking_uri": resolved.tracking_uri,
        "registered_model": resolved.registered_model,
        "aliases": {"challenger": "challenger", "champion": "champion", "previous": "previous"},
        "data": {
            name: {"uri": dataset.uri, "format": dataset.format} for name, dataset in spec.data.datasets().items()
        },
        "contract": _contract(resolved),
        "train": _train(resolved),
        "evaluate": _evaluate(resolved),
        "serve": _serve(resolved),
        "drift": _drift(resolved),
        "metrics": {
            "pushgateway": resolved.pushgateway,
            "push_job": DRIFT_PUSH_JOB,
            "grouping": drift_grouping(resolved),
            "names": METRIC_NAMES,
        },
        "exit_codes": {"config_error": CONFIG_ERROR_EXIT_CODE},
    }


def runtime_config_json(resolved: ResolvedSpec) -> str:
    """The config as the file the runtime reads: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(runtime_config(resolved), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


RUNTIME_JOBS = ("validate-data", "train", "gate", "rollback", "serve", "drift", "batch")


def runtime_arguments(job: str, resolved: ResolvedSpec, config_path: str) -> list[str]:
    """`mlc-runtime` arguments of one job, as every place that runs it (pods, `mlc run`) passes them.

    Placement-specific flags come on top: the Pushgateway in the cluster, the shard of a batch pod.
    """
    if job not in RUNTIME_JOBS:
        raise ValueError(f"unknown job {job!r}; jobs: {', '.join(RUNTIME_JOBS)}")
    arguments = [job, "--config", config_path]
    if job == "serve" and resolved.spec.serve is not None:
        arguments += ["--port", str(resolved.spec.serve.port)]
    return arguments
