"""`gate`, `--promote` and `rollback`: the registry side of evaluation (MLflow aliases).

The gate loads `models:/<model>@challenger` and, when there is one, `@champion`, scores both on
`evaluate.dataset` exactly as serving would (the pyfunc, raw features in), measures latency by
timing single-row predictions, and applies `gates.evaluate_gates`. Promotion moves the old
champion to `previous` and the challenger to `champion`; rollback moves `previous` back to
`champion` (and drops `previous`, so a second rollback cannot bring the bad model back).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlc.runtime.contract import LATENCY_METRICS
from mlc.runtime.contract.config import RuntimeConfig
from mlc.runtime.errors import MlcRuntimeError, is_not_found, tracking_error_line
from mlc.runtime.gates import GateReport, evaluate_gates
from mlc.runtime.metrics import MetricError, output_scores, task_metric

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    from mlflow import MlflowClient

LATENCY_SAMPLE_ROWS = 100
LATENCY_WARMUP_CALLS = 5


class GateError(MlcRuntimeError):
    """The gate cannot reach a verdict (no challenger, unreadable data, unknown metric): fail closed."""


@dataclass(frozen=True)
class LoadedModel:
    version: str
    model: Any  # mlflow.pyfunc.PyFuncModel


def tracking_uri(config: RuntimeConfig) -> str:
    """`MLFLOW_TRACKING_URI` overrides the config's `tracking_uri`."""
    return os.environ.get("MLFLOW_TRACKING_URI") or config.tracking_uri


def _client(config: RuntimeConfig) -> MlflowClient:
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri(config))
    return MlflowClient()


def _version_by_alias(client: MlflowClient, model: str, alias: str) -> str | None:
    """The version `alias` names; None when the model or alias does not exist. A refusal is a
    GateError saying so (a missing credential must not read as "no challenger")."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(model, alias).version)
    except MlflowException as error:
        if is_not_found(error):
            return None
        raise GateError(tracking_error_line(error, client.tracking_uri)) from None


def _load(config: RuntimeConfig, alias: str, version: str) -> LoadedModel:
    import mlflow

    try:
        return LoadedModel(version, mlflow.pyfunc.load_model(f"models:/{config.registered_model}/{version}"))
    except Exception as error:  # a model that does not load cannot pass a gate
        raise GateError(f"cannot load {config.registered_model}@{alias} (version {version}): {error}") from None


def model_scores(model: Any, table: pa.Table, target: str) -> tuple[str, np.ndarray, np.ndarray]:
    """(task, encoded truth, scores) of a model on a table of raw features and the target."""

    from mlc.runtime.model_package import ContractModel

    wrapper = model.unwrap_python_model()
    if not isinstance(wrapper, ContractModel) or wrapper.preprocessor.target is None:
        raise GateError("the model was not registered by mlc-runtime train (no contract preprocessor)")
    encoding = wrapper.preprocessor.target
    truth = encoding.encode(table.column(target))
    output = model.predict(table.drop_columns([target]).to_pandas())
    return encoding.task, truth, output_scores(encoding.task, encoding.classes, output)


def latency_ms(model: Any, table: pa.Table, target: str) -> dict[str, float]:
    """p50 and p95 of single-row predictions (milliseconds) over the first rows of the table."""
    import numpy as np

    frame = table.drop_columns([target]).slice(0, LATENCY_SAMPLE_ROWS).to_pandas()
    rows = [frame.iloc[[i]] for i in range(len(frame))]
    for row in rows[:LATENCY_WARMUP_CALLS]:
        model.predict(row)
    timings = []
    for row in rows:
        start = time.perf_counter()
        model.predict(row)
        timings.append((time.perf_counter() - start) * 1000)
    return {"latency_p50_ms": float(np.percentile(timings, 50)), "latency_p95_ms": float(np.percentile(timings, 95))}


def model_metrics(model: Any, table: pa.Table, target: str, names: list[str]) -> dict[str, float]:
    """Every requested metric of one model on the evaluation table."""
    task, truth, scores = model_scores(model, table, target)
    values: dict[str, float] = {}
    latency = latency_ms(model, table, target) if LATENCY_METRICS & set(names) else {}
    for name in names:
        try:
            values[name] = latency[name] if name in LATENCY_METRICS else task_metric(name, task, truth, scores)
        except MetricError as error:
            raise GateError(f"metric {error}") from None
    return values


def evaluation_table(config: RuntimeConfig) -> tuple[pa.Table, str]:
    from mlc.runtime.data_check import require_valid_dataset
    from mlc.runtime.datasets import DataError, locate_data_files, read_table

    evaluate, contract = config.require_evaluate(), config.require_contract()
    if contract.target is None:
        raise GateError("the data contract has no target: there is nothing to evaluate against")
    dataset = config.dataset(evaluate.dataset)
    try:
        require_valid_dataset(config, evaluate.dataset)  # scores on rows serving would refuse prove nothing
        files = locate_data_files(dataset.uri, dataset.format)
        table = read_table(files, text_columns=[*contract.features, contract.target])
    except DataError as error:
        raise GateError(str(error)) from None
    if contract.target not in table.column_names:
        raise GateError(f"{dataset.uri}: no target column {contract.target!r}")
    return table, contract.target


def run_gate(config: RuntimeConfig, baseline_alias: str | None = None, absolute_enforced: bool = True) -> GateReport:
    """Evaluate challenger (and champion) and apply the gates; GateError when no verdict is possible.

    With `baseline_alias` the relative gates compare with that model (a pull request's base branch
    trained the same way), which must exist, instead of the champion.
    """
    evaluate = config.require_evaluate()
    client = _client(config)
    aliases = config.aliases
    challenger_version = _version_by_alias(client, config.registered_model, aliases.challenger)
    if challenger_version is None:
        raise GateError(f"no {config.registered_model}@{aliases.challenger}: run `mlc-runtime train` first")
    compared_with = baseline_alias or aliases.champion
    champion_version = _version_by_alias(client, config.registered_model, compared_with)
    if baseline_alias is not None and champion_version is None:
        raise GateError(f"no {config.registered_model}@{baseline_alias}: train the baseline first")
    table, target = evaluation_table(config)
    names = list(dict.fromkeys([*evaluate.metrics, *(gate.metric for gate in evaluate.gates)]))
    challenger = model_metrics(_load(config, aliases.challenger, challenger_version).model, table, target, names)
    champion = None
    if champion_version is not None:
        champion = model_metrics(_load(config, compared_with, champion_version).model, table, target, names)
    results, passed, notes = evaluate_gates(
        evaluate.gates, challenger, champion, evaluate.first_model, absolute_enforced
    )
    return GateReport(
        config.registered_model,
        challenger_version,
        champion_version,
        challenger,
        champion,
        results,
        passed,
        notes,
        dataset=evaluate.dataset,
        rows=table.num_rows,
        challenger_alias=aliases.challenger,
        champion_alias=compared_with,
    )


def promote(config: RuntimeConfig, report: GateReport) -> str:
    """Move the passing challenger to champion (the old champion to previous); what was done."""
    client = _client(config)
    aliases, model = config.aliases, config.registered_model
    tags = client.get_model_version(model, report.challenger_version).tags
    if tags.get("mlc.smoke") == "true":
        # Trained by `train --smoke` on a few hundred rows to test the pipeline, not to serve.
        raise GateError(f"{model} version {report.challenger_version} is a smoke-test model; it is never promoted")
    if report.champion_version == report.challenger_version:
        # Pinned again all the same: a promotion whose pin failed is completed by running the gate again.
        done = f"version {report.challenger_version} is already @{aliases.champion}; nothing to promote"
        return _pinned(config, report.challenger_version, done)
    if report.champion_version is not None:
        client.set_registered_model_alias(model, aliases.previous, report.champion_version)
    client.set_registered_model_alias(model, aliases.champion, report.challenger_version)
    before = f"; version {report.champion_version} is now @{aliases.previous}" if report.champion_version else ""
    done = f"promoted {model} version {report.challenger_version} to @{aliases.champion}{before}"
    return _pinned(config, report.challenger_version, done)


def _pinned(config: RuntimeConfig, version: str, done: str) -> str:
    """`done`, after pinning `version` in the serving Deployment when a canary rollout serves it.

    The alias moves first (the registry's record of what should serve); a pin that fails says so
    and leaves the pods on the version they serve, which then export `mlc_model_is_champion` 0.
    """
    deployment = config.serve.pinned_deployment if config.serve is not None else None
    if deployment is None:
        return done
    from mlc.runtime.serving_pin import PinError, pin_in_cluster

    try:
        return f"{done}\n{pin_in_cluster(config.namespace, deployment, version)}"
    except PinError as error:
        raise PinError(f"{done}, but {error}; the serving pods keep their version until it is pinned") from None


def rollback(config: RuntimeConfig) -> str:
    """Move `previous` back to `champion`; GateError when there is no previous version."""
    client = _client(config)
    aliases, model = config.aliases, config.registered_model
    previous = _version_by_alias(client, model, aliases.previous)
    if previous is None:
        raise GateError(f"no {model}@{aliases.previous} to roll back to")
    current = _version_by_alias(client, model, aliases.champion)
    client.set_registered_model_alias(model, aliases.champion, previous)
    client.delete_registered_model_alias(model, aliases.previous)
    return _pinned(
        config, previous, f"rolled back {model} @{aliases.champion} from version {current} to version {previous}"
    )
