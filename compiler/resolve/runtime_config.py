"""The runtime config of one environment, built from its `ResolvedSpec`.

Its shape, version and defaults are the contract's (`mlc.runtime.contract.config`), which the
runtime owns and reads: the compiler fills it in and writes it as JSON. The Kubernetes backend
ships it as a ConfigMap every pod mounts (`contract.CONFIG_PATH`, also in
`$MLC_RUNTIME_CONFIG`); `mlc run` writes it to a local file. The runtime never re-resolves the
spec.
"""

from __future__ import annotations

import json

from mlc.compiler.resolve.resolved import ResolvedSpec
from mlc.runtime.contract import (
    API_KEYS_DIR,
    DRIFT_PSI_THRESHOLD,
    DRIFT_PUSH_JOB,
    FORMAT_VERSION,
    QUERIED_METRICS,
    duration_seconds,
)
from mlc.runtime.contract.config import (
    Access,
    Aliases,
    Checkpoint,
    Contract,
    CurrentData,
    Dataset,
    Drift,
    DriftThreshold,
    Evaluate,
    Feedback,
    Gate,
    Labels,
    Metrics,
    PredictionLog,
    RateLimit,
    RuntimeConfig,
    Serve,
    ServeBatch,
    TrackingRequests,
    Train,
)


def _contract(resolved: ResolvedSpec) -> Contract | None:
    contract = resolved.spec.data.contract
    return None if contract is None else Contract.model_validate(contract.model_dump(mode="json"))


def _train(resolved: ResolvedSpec) -> Train | None:
    train = resolved.spec.train
    if train is None:
        return None
    return Train(
        entrypoint=train.entrypoint,
        params=train.params,
        seed=train.seed,
        checkpoint=Checkpoint(uri=train.checkpoint.uri, every=train.checkpoint.every),
        timeout_seconds=duration_seconds(train.timeout),
        nodes=train.distributed.nodes,
        gpus_per_node=train.resources.gpus,
        spot=train.spot,
    )


def _evaluate(resolved: ResolvedSpec) -> Evaluate | None:
    evaluate = resolved.spec.evaluate
    if evaluate is None:
        return None
    return Evaluate(
        dataset=evaluate.dataset,
        metrics=evaluate.metrics,
        first_model=evaluate.first_model,
        gates=[Gate.model_validate(gate.model_dump(mode="json")) for gate in evaluate.gates],
    )


def _access(resolved: ResolvedSpec) -> Access | None:
    access = resolved.serving.access if resolved.serving is not None else None
    if access is None:
        return None
    return Access(
        metrics_port=access.metrics_port,
        api_keys_dir=API_KEYS_DIR if access.api_keys_secret else None,
        rate_limit=None
        if access.rate_limit is None
        else RateLimit(requests_per_second=access.rate_limit[0], burst=access.rate_limit[1]),
        audit=access.audit,  # type: ignore[arg-type]
        trusted_proxies=list(access.trusted_proxies),
    )


def _serve(resolved: ResolvedSpec) -> Serve | None:
    serve = resolved.spec.serve
    if serve is None:
        return None
    batch = serve.batch
    return Serve(
        engine=serve.engine,
        port=serve.port,
        batch=None
        if batch is None
        else ServeBatch(
            input=batch.input, output=batch.output, parallelism=batch.parallelism, invalid_rows=batch.invalid_rows
        ),
        access=_access(resolved),
        pinned_deployment=resolved.pinned_deployment,
        limits=resolved.serving.limits if resolved.serving is not None else None,
    )


def _drift(resolved: ResolvedSpec) -> Drift | None:
    monitor = resolved.spec.monitor
    if monitor is None or monitor.drift is None or resolved.drift_current_uri is None:
        return None
    drift = monitor.drift
    return Drift(
        current=CurrentData(
            uri=resolved.drift_current_uri,
            window_seconds=duration_seconds(drift.current.window),
            prediction_log=resolved.drift_reads_log,
        ),
        method=drift.method,
        threshold=DriftThreshold(psi=drift.threshold.psi, share=drift.threshold.share),
        on_drift=drift.on_drift,
        retrain_cronjob=resolved.names.retraining if resolved.retrains_on_drift else None,
        check_predictions=monitor.prediction_log is not None,
        prediction_psi=monitor.alerts.prediction_psi or DRIFT_PSI_THRESHOLD,
    )


def _prediction_log(resolved: ResolvedSpec) -> PredictionLog | None:
    monitor = resolved.spec.monitor
    log = monitor.prediction_log if monitor is not None else None
    return None if log is None else PredictionLog(uri=log.uri, sample_rate=log.sample_rate)


def _feedback(resolved: ResolvedSpec) -> Feedback | None:
    monitor = resolved.spec.monitor
    feedback = monitor.feedback if monitor is not None else None
    if feedback is None or resolved.feedback_label_column is None:
        return None
    labels = feedback.labels
    return Feedback(
        labels=Labels(
            uri=labels.uri,
            id_column=labels.id_column,
            label_column=resolved.feedback_label_column,
            max_delay_seconds=duration_seconds(labels.max_delay),
        ),
        min_rows=feedback.min_rows,
        on_degrade=feedback.on_degrade,
        retrain_cronjob=resolved.names.retraining if resolved.retrains_on_degrade else None,
    )


def _tracking_requests(resolved: ResolvedSpec) -> TrackingRequests | None:
    registry = resolved.spec.registry
    if registry is None or (registry.timeout is None and registry.retries is None):
        return None  # the runtime applies the contract's defaults
    defaults = TrackingRequests()
    timeout = defaults.request_timeout_seconds if registry.timeout is None else duration_seconds(registry.timeout)
    retries = defaults.retries if registry.retries is None else registry.retries
    return TrackingRequests(request_timeout_seconds=timeout, retries=retries)


def runtime_config(resolved: ResolvedSpec) -> RuntimeConfig:
    """The runtime config of one environment."""
    spec = resolved.spec
    return RuntimeConfig(
        format_version=FORMAT_VERSION,
        project=resolved.name,
        environment=resolved.environment,
        namespace=resolved.namespace,
        spec_digest=f"sha256:{resolved.spec_digest}",
        compiler_version=resolved.compiler_version,
        tracking_uri=resolved.tracking_uri,
        tracking_requests=_tracking_requests(resolved),
        registered_model=resolved.registered_model,
        aliases=Aliases(),
        data={name: Dataset(uri=dataset.uri, format=dataset.format) for name, dataset in spec.data.datasets().items()},
        contract=_contract(resolved),
        train=_train(resolved),
        evaluate=_evaluate(resolved),
        serve=_serve(resolved),
        drift=_drift(resolved),
        prediction_log=_prediction_log(resolved),
        feedback=_feedback(resolved),
        metrics=Metrics(
            pushgateway=resolved.pushgateway,
            push_job=DRIFT_PUSH_JOB,
            grouping=resolved.drift_grouping,
            names=QUERIED_METRICS,
        ),
    )


def config_json(config: RuntimeConfig) -> str:
    """A config as the file the runtime reads: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(config.model_dump(mode="json"), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def runtime_config_json(resolved: ResolvedSpec) -> str:
    """The environment's runtime config as the file the runtime reads."""
    return config_json(runtime_config(resolved))
