"""The `mlc-runtime` command: subcommands run inside the compiled artifacts."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

import click

from mlc.runtime.contract import (
    COMPLETION_INDEX_VARIABLE,
    CONFIG_PATH,
    CONFIG_VARIABLE,
    DEFAULT_SERVE_PORT,
    DRIFT_FDR,
    FORMAT_VERSION,
    SERVED_VERSION_VARIABLE,
    ExitCode,
    version_model_uri,
)

if TYPE_CHECKING:
    from mlc.runtime.contract.config import RuntimeConfig, ServeLimits

_Command = TypeVar("_Command", bound=Callable[..., object])


def runtime_version() -> str:
    """The installed distribution's version (the runtime ships in the `mlc` package with the compiler)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlc")
    except PackageNotFoundError:  # run from a source checkout that was never installed
        return "unknown (not installed)"


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"mlc-runtime {runtime_version()} (reads runtime config format_version {FORMAT_VERSION})")
    ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    "-V",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and the runtime config format it reads, then exit.",
)
def main() -> None:
    """Run a step of an mlc project: train, gate, drift, serve."""
    # MLflow's usage telemetry would call out of every training pod and CI job (and its thread
    # rewrites os.environ while requests reads it). Off unless the user turns it on.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # MLflow's notes on creating a local store and on the pyfunc wrapper's type hints say nothing a
    # user can act on, and bury the lines that do (training progress, the gate's verdict); its
    # warnings still show.
    for name in ("mlflow.store.db.utils", "mlflow.models.signature"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _no_blas_threads() -> None:
    """Before numpy loads: one OpenBLAS thread. Drift counts with numpy but never calls BLAS,
    and OpenBLAS's idle worker threads spin for a while after loading, taking 5-9% of the
    cores the counting uses (measured with perf on the 1M-row benchmark)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _fail(message: str, code: int = ExitCode.ERROR) -> NoReturn:
    """One clear line on stderr, exit 2: user errors never show a traceback."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@main.command()
@click.option("--data", help="Reference Parquet/CSV data: a file, directory or glob, local or remote (s3://, gs://).")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A runtime config: feature types from its data contract (default: inferred from the data).",
)
@click.option(
    "--merge",
    "shards",
    multiple=True,
    type=click.Path(),
    help="Merge these profile shards instead of reading --data (repeatable).",
)
@click.option("-o", "--output", required=True, type=click.Path(), help="Profile JSON to write.")
@click.option("--bins", default=100, show_default=True, help="Reference-quantile bins.")
def profile(data: str | None, config_path: Path | None, shards: tuple[str, ...], output: str, bins: int) -> None:
    """Build a reference profile (or merge profile shards) for drift checks."""
    _no_blas_threads()
    from mlc.runtime.drift.config import contract_features
    from mlc.runtime.drift.data import DataError
    from mlc.runtime.drift.profile import (
        ProfileError,
        build_profile,
        merge_profiles,
        read_profile,
        write_profile,
    )

    if bool(data) == bool(shards):
        _fail("give exactly one of --data or --merge")
    try:
        if shards:
            result = merge_profiles([read_profile(path) for path in shards])
        else:
            features = contract_features(load_config(config_path))[0] if config_path else None
            result = build_profile(data, features or None, bins=bins)
        write_profile(result, output)
    except (DataError, ProfileError, ValueError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror or exc}")
    click.echo(f"profiled {result['rows']} rows, {len(result['features'])} features -> {output}", err=True)


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(),
    envvar=CONFIG_VARIABLE,
    help=f"The compiler's runtime config JSON (env {CONFIG_VARIABLE}): features, "
    "method, thresholds, current data, champion model, metric grouping.",
)
@click.option("--profile", "profile_path", type=click.Path(), help="Reference profile JSON.")
@click.option("--model", help="models:/<name>@<alias> (or /<version>): use its logged profile.")
@click.option(
    "--reference",
    help="Reference Parquet/CSV data to profile in this process instead of reading a saved profile "
    "(a file, directory or glob, local or remote): one command compares two datasets.",
)
@click.option(
    "--data",
    help="Current Parquet/CSV data: a file, directory or glob, local or remote (s3://, gs://) "
    "(default: the runtime config's drift.current.uri).",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--report", type=click.Path(), help="Write an HTML report here.")
@click.option("--push", help="Pushgateway URL to push drift metrics to.")
@click.option("--project", help="Project label for pushed metrics (default: the config's project).")
@click.option(
    "--fdr", type=float, default=DRIFT_FDR, show_default=True, help="False discovery rate for the per-feature tests."
)
@click.option(
    "--min-psi",
    type=float,
    help="Smallest PSI a feature needs to count as drifted (default: the config's threshold.psi, else 0.2).",
)
@click.option(
    "--on-drift",
    type=click.Choice(["none", "retrain"]),
    help="What to do on dataset drift (default: the config's drift.on_drift).",
)
@click.option("--retrain-cronjob", help="Retraining CronJob name (default: the config's drift.retrain_cronjob).")
@click.option("--namespace", help="Kubernetes namespace of the CronJob (default: in-cluster).")
def drift(
    config_path: str | None,
    profile_path: str | None,
    model: str | None,
    reference: str | None,
    data: str | None,
    fmt: str,
    report: str | None,
    push: str | None,
    project: str | None,
    fdr: float,
    min_psi: float | None,
    on_drift: str | None,
    retrain_cronjob: str | None,
    namespace: str | None,
) -> None:
    """Compare current data with the reference profile. Exit 0 no drift, 1 drift, 2 error
    (78 when the runtime config is unusable).

    Current data is the config's drift.current: the prediction log's last window (by default),
    or files. With a prediction log and a model whose training profiled its predictions, the
    log's window of predictions is checked too (prediction drift).
    """
    import dataclasses
    import json

    _no_blas_threads()
    from mlc.runtime.drift.check import render_text, run_check, run_prediction_check
    from mlc.runtime.drift.config import DriftConfig, drift_config
    from mlc.runtime.drift.data import DataError
    from mlc.runtime.drift.profile import ProfileError, read_profile

    if not 0 < fdr < 1:
        _fail("--fdr must be between 0 and 1")
    base = DriftConfig()
    if config_path:  # pydantic (the config's models) only then: a check without one starts faster
        from mlc.runtime.contract.config import ConfigError

        try:
            base = drift_config(load_config(Path(config_path)))
        except ConfigError as exc:
            _fail(str(exc), ExitCode.CONFIG_ERROR)
    # The config's window selects its own current data; data named on the command line is read whole.
    window = None if data else base.window_seconds
    config = dataclasses.replace(
        base, fdr=fdr, min_psi=min_psi, window_seconds=window, current_is_log=base.current_is_log and not data
    )
    model = model or (None if profile_path or reference else config.model_uri)
    data = data or config.current_uri
    if [bool(profile_path), bool(model), bool(reference)].count(True) != 1:
        _fail("give exactly one of --profile, --model or --reference")
    retrain = (on_drift or config.on_drift) == "retrain"
    cronjob = retrain_cronjob or config.retrain_cronjob
    if retrain and cronjob is None:  # a name the compiler did not write would be a guess
        _fail("retraining on drift needs --retrain-cronjob (a runtime config names it when the spec retrains)")
    if not data:
        _fail("give --data (or a runtime config with drift.current.uri)")
    predictions = None
    try:
        if model:
            from mlc.runtime.drift.mlflow_profile import load_model_profiles
            from mlc.runtime.tracking_client import bound_tracking_requests

            bound_tracking_requests(os.environ, None)  # after load_config's, so the config's values win

            profiles = load_model_profiles(model, config.tracking_uri)
            profiled, prediction_reference = profiles.features, profiles.predictions
        elif reference:
            from mlc.runtime.drift.profile import build_profile

            profiled, prediction_reference = build_profile(reference, config.features), None
        else:
            profiled, prediction_reference = read_profile(profile_path), None
        result = run_check(profiled, data, config)
    except (DataError, ProfileError) as exc:
        _fail(str(exc))
    if prediction_reference is not None and config.predictions_uri:
        windowed = dataclasses.replace(config, window_seconds=base.window_seconds)
        try:
            predictions = run_prediction_check(prediction_reference, config.predictions_uri, windowed)
        except (DataError, ProfileError) as exc:  # the inputs' verdict stands; predictions wait for the log
            click.echo(f"warning: predictions not checked: {exc}", err=True)
    text = render_text(result, predictions)
    if fmt == "json":
        document = result.to_dict()
        if predictions is not None:
            document["predictions"] = predictions.to_dict()
        click.echo(json.dumps(document, indent=2, sort_keys=True))
    else:
        click.echo(text)
    if report:
        from mlc.runtime.drift.report import write_report

        try:
            write_report(result, report, predictions)
        except OSError as exc:
            _fail(f"cannot write report {report}: {exc.strerror or exc}")
    project = project or config.project or "default"
    if push:
        from mlc.runtime.drift.push import PushError, push_metrics

        grouping = {**(config.grouping or {}), "project": project}
        try:
            push_metrics(push, grouping, result, predictions=predictions)
        except PushError as exc:
            _fail(str(exc))
    drifted = result.drifted or (predictions is not None and predictions.drifted)
    if drifted and retrain and cronjob is not None:
        metrics = {"drift_share": result.drifted_share, "drifted_features": result.drifted_features}
        if predictions is not None:
            metrics["drifted_outputs"] = predictions.drifted_features
        job = _start_retraining(
            "drift", cronjob, namespace or config.namespace, config.tracking_uri, project, metrics, text, model
        )
        click.echo(f"started retraining job {job}", err=True)
    sys.exit(ExitCode.FAILED if drifted else ExitCode.OK)


def _start_retraining(
    trigger: str,
    cronjob: str,
    namespace: str | None,
    tracking_uri: str | None,
    project: str,
    metrics: dict[str, float],
    report: str,
    model: str | None,
) -> str:
    """Record the check as an MLflow run, then start the retraining Job carrying that run's id;
    the Job's name. The one path drift and feedback share (`retraining.start_retraining`)."""
    from mlc.runtime.retraining import RetrainError, start_retraining

    run_id = None
    if tracking_uri:
        from mlc.runtime.monitor_runs import log_check_run

        try:
            tags = {"mlc.model": model} if model else {}
            run_id = log_check_run(tracking_uri, project, trigger, metrics, tags, {f"{trigger}.txt": report})
        except Exception as error:  # the tracking server down must not stop a needed retraining
            click.echo(f"warning: the {trigger} check was not recorded in MLflow: {error}", err=True)
    try:
        return start_retraining(cronjob, namespace, trigger, run_id)
    except RetrainError as exc:
        _fail(str(exc))


# --- train, gate, rollback, validate-data (branch runtime-train) ---------------------------------
# Each command: load the config, call one library function, render, exit with the documented code.
# Every user error is one line on stderr (`_fail`); an unusable config exits with `exit_codes.config_error`.


def config_option(command: _Command) -> _Command:
    """`--config PATH` (default `$MLC_RUNTIME_CONFIG`), shared by every command."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        envvar=CONFIG_VARIABLE,
        required=True,
        help=f"The runtime config JSON (default: ${CONFIG_VARIABLE}).",
    )(command)


def challenger_alias_option(command: _Command) -> _Command:
    """`--challenger-alias ALIAS` of `train` and `gate`."""
    return click.option(
        "--challenger-alias",
        metavar="ALIAS",
        help="Register/evaluate the challenger under ALIAS instead of the config's (e.g. pr-42: "
        "a pull request's smoke model never moves the shared @challenger).",
    )(command)


def _with_challenger_alias(config: RuntimeConfig, alias: str | None) -> RuntimeConfig:
    """`config` whose challenger alias is `alias`; usage error for a name MLflow or mlc reserves."""
    if alias is None:
        return config
    aliases = config.aliases
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,255}", alias) or re.fullmatch(r"latest|v\d+", alias, re.IGNORECASE):
        raise click.BadParameter(
            "letters, digits, '_' and '-', and not 'latest' or 'v<number>' (MLflow reserves them)",
            param_hint="--challenger-alias",
        )
    if alias in (aliases.champion, aliases.previous):
        role = "champion" if alias == aliases.champion else "previous"
        raise click.BadParameter(
            f"{alias!r} is the {role} alias; a challenger needs its own", param_hint="--challenger-alias"
        )
    return config.model_copy(update={"aliases": aliases.model_copy(update={"challenger": alias})})


def load_config(path: Path) -> RuntimeConfig:
    from mlc.runtime.config import load_runtime_config
    from mlc.runtime.contract.config import ConfigError
    from mlc.runtime.tracking_client import bound_tracking_requests

    try:
        config = load_runtime_config(path)
    except ConfigError as error:
        _fail(str(error), ExitCode.CONFIG_ERROR)
    bound_tracking_requests(os.environ, config.tracking_requests)
    return config


@main.command("validate-data")
@config_option
@click.option("--dataset", "dataset_name", help="A dataset name of the config's `data` (train, eval, ...).")
@click.option(
    "--data",
    "data_uri",
    help="Any data instead: a file, directory or glob, local or remote (live data, a batch input); "
    "its features are checked, a target is not required.",
)
@click.option("--sample", type=click.IntRange(min=1), help="Check only the first N rows.")
def validate_data(config_path: Path, dataset_name: str | None, data_uri: str | None, sample: int | None) -> None:
    """Check a dataset against the data contract: exit 0 valid, 1 violations, 2 unreadable."""
    from mlc.runtime.contract.config import ConfigError
    from mlc.runtime.data_check import check_data, check_dataset, data_choices, render_data_report
    from mlc.runtime.datasets import DataError

    config = load_config(config_path)
    if bool(dataset_name) == bool(data_uri):
        given = "not both" if dataset_name else "one of them"
        _fail(f"give --dataset NAME or --data URI, {given}: {data_choices(config)}", 2)
    try:
        report = check_dataset(config, dataset_name, sample) if dataset_name else check_data(config, data_uri, sample)
    except ConfigError as error:
        _fail(str(error), config.exit_codes.config_error)
    except DataError as error:
        _fail(str(error), 2)
    click.echo(render_data_report(report), nl=False)
    sys.exit(0 if report.valid else 1)


@main.command()
@config_option
@click.option("--smoke", is_flag=True, help="A quick check: at most a few hundred rows, 1 epoch, CPU is fine.")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override a train.params value for this run (repeatable), e.g. -p lr=0.01; recorded as the tag mlc.overrides.",
)
@challenger_alias_option
def train(config_path: Path, smoke: bool, params: tuple[str, ...], challenger_alias: str | None) -> None:
    """Train with the project's entrypoint; log to MLflow; register a version as @challenger.

    Exit 0 trained and registered, 1 training failed (an error in the project's code shows that
    code's traceback) or a -p override is not one of train.params, 143 stopped by SIGTERM after
    checkpointing, config_error (78) unusable config.
    """
    from mlflow.exceptions import MlflowException

    from mlc.runtime.contract.config import ConfigError
    from mlc.runtime.datasets import DataError
    from mlc.runtime.param_overrides import OverrideError, parse_overrides
    from mlc.runtime.preprocessor import PreprocessError
    from mlc.runtime.training import EntrypointError, Preempted, TrainingError, run_training, where_to_look

    config = _with_challenger_alias(load_config(config_path), challenger_alias)
    try:
        overrides = parse_overrides(params, config.require_train().params)
    except ConfigError as error:
        _fail(str(error), config.exit_codes.config_error)
    except OverrideError as error:
        _fail(str(error), 1)
    try:
        result = run_training(config, smoke=smoke, overrides=overrides)
    except ConfigError as error:
        _fail(str(error), config.exit_codes.config_error)
    except EntrypointError as error:
        # The project's code failed: its own frames first, then the one line that says so.
        click.echo(error.traceback, err=True, nl=False)
        _fail(str(error), 1)
    except (DataError, PreprocessError, TrainingError) as error:
        _fail(str(error), 1)
    except Preempted as error:
        _fail(str(error), ExitCode.PREEMPTED)
    except MlflowException as error:  # the tracking server refused or failed a request
        from mlc.runtime.errors import tracking_error_line
        from mlc.runtime.training import configure_tracking

        _fail(tracking_error_line(error, configure_tracking(config, os.environ)), 1)
    if result.model_version is not None:
        click.echo(
            f"registered {config.registered_model} version {result.model_version} "
            f"as @{config.aliases.challenger} (MLflow run {result.run_name}, id {result.run_id})"
        )
        if hint := where_to_look(result):
            click.echo(hint)


@main.command()
@config_option
@click.option(
    "--report", "markdown_path", type=click.Path(path_type=Path, dir_okay=False), help="Write the report as markdown."
)
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), help="Write the report as JSON.")
@click.option("--promote", is_flag=True, help="On pass: challenger -> @champion, the old champion -> @previous.")
@challenger_alias_option
@click.option(
    "--completion-index",
    type=click.IntRange(min=0),
    help="The pod's index in a multi-node training Job: only index 0, whose rank 0 registered the model, gates.",
)
@click.option(
    "--baseline-alias",
    help="Compare with this alias instead of @champion (a pull request: its base branch's code trained the same "
    "way); it must exist. Not with --promote.",
)
@click.option(
    "--absolute",
    type=click.Choice(["enforce", "advisory"]),
    default="enforce",
    show_default=True,
    help="advisory: min/max gates are reported but do not decide (a smoke model is not held to production bounds).",
)
def gate(
    config_path: Path,
    markdown_path: Path | None,
    json_path: Path | None,
    promote: bool,
    challenger_alias: str | None,
    completion_index: int | None,
    baseline_alias: str | None,
    absolute: str,
) -> None:
    """Evaluate @challenger against @champion on the eval set and apply the gates.

    Exit 0 pass, 1 fail, 2 error: anything that prevents a verdict fails closed (config_error,
    78, for an unusable config). A training pod runs it after `train` (the same gate as CI's).
    """
    from mlc.runtime.gates import render_gate_json, render_gate_markdown
    from mlc.runtime.promotion import promote as promote_challenger
    from mlc.runtime.promotion import run_gate

    if completion_index:
        click.echo(f"completion index {completion_index}: only the pod of index 0 (it registered the model) gates")
        return
    if baseline_alias is not None and promote:
        raise click.UsageError("--baseline-alias compares two candidates; neither is promoted (drop --promote)")
    config = _with_challenger_alias(load_config(config_path), challenger_alias)
    try:
        report = run_gate(config, baseline_alias, absolute_enforced=absolute == "enforce")
        markdown = render_gate_markdown(report)
        if markdown_path is not None:
            markdown_path.write_text(markdown)
        if json_path is not None:
            json_path.write_text(render_gate_json(report))
        outcome = promote_challenger(config, report) if promote and report.passed else None
    except Exception as error:  # fail closed: no verdict is never a pass
        _fail(_gate_error_line(error, config), 2)
    click.echo(markdown, nl=False)
    if outcome:
        click.echo(outcome)
    sys.exit(0 if report.passed else 1)


@main.command()
@config_option
def rollback(config_path: Path) -> None:
    """Move @champion back to @previous (exit 0; 2 when there is nothing to roll back to)."""
    from mlc.runtime.promotion import rollback as roll_back

    config = load_config(config_path)
    try:
        click.echo(roll_back(config))
    except Exception as error:
        _fail(_gate_error_line(error, config), 2)


def _gate_error_line(error: Exception, config: RuntimeConfig) -> str:
    """Our own errors say what is wrong; a tracking server's refusal says which credentials; anything
    else also names its type (a bug or an outage)."""
    from mlc.runtime.errors import MlcRuntimeError, tracking_error_line
    from mlc.runtime.promotion import tracking_uri

    if isinstance(error, MlcRuntimeError):
        return str(error)
    return tracking_error_line(error, tracking_uri(config))


@main.command()
@config_option
@click.option("--push", help="Pushgateway URL to push the live metrics to.")
@click.option(
    "--on-degrade",
    type=click.Choice(["none", "retrain"]),
    help="What to do when a live metric breaks its gate (default: the config's feedback.on_degrade).",
)
@click.option("--namespace", help="Kubernetes namespace of the retraining CronJob (default: in-cluster).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def feedback(config_path: Path, push: str | None, on_degrade: str | None, namespace: str | None, fmt: str) -> None:
    """Join ground-truth labels to the champion's logged predictions and compute evaluate.metrics live.

    Exit 0 healthy (or too few labels to judge), 1 a live metric broke its gate over at least
    monitor.feedback.min_rows labelled rows, 2 error (78: unusable config).
    """
    import dataclasses
    import json

    from mlc.runtime.contract.config import ConfigError
    from mlc.runtime.feedback.job import FeedbackError, run_feedback
    from mlc.runtime.feedback.quality import render_text

    config = load_config(config_path)
    try:
        section = config.require_feedback()
        config.require_prediction_log()
        config.require_evaluate()
    except ConfigError as error:
        _fail(str(error), config.exit_codes.config_error)
    retrain = (on_degrade or section.on_degrade) == "retrain"
    if retrain and section.retrain_cronjob is None:
        _fail("retraining on degraded quality needs a retraining CronJob (the config names it when the spec retrains)")
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI") or config.tracking_uri
    try:
        quality = run_feedback(config, tracking_uri)
    except FeedbackError as error:
        _fail(str(error))
    text = render_text(quality)
    if fmt == "json":
        document = {**dataclasses.asdict(quality), "label_share": quality.label_share, "degraded": quality.degraded}
        click.echo(json.dumps(document, indent=2, sort_keys=True, default=str))
    else:
        click.echo(text)
    if push:
        from mlc.runtime.feedback.push import push_quality
        from mlc.runtime.metrics_push import PushError

        try:
            push_quality(push, {**config.metrics.grouping, "project": config.project}, quality)
        except PushError as error:
            _fail(str(error))
    if quality.degraded and retrain and section.retrain_cronjob is not None:
        metrics = {"labelled_rows": quality.labelled, "label_share": quality.label_share, **quality.metrics}
        job = _start_retraining(
            "feedback",
            section.retrain_cronjob,
            namespace or config.namespace,
            tracking_uri,
            config.project,
            metrics,
            text,
            f"models:/{config.registered_model}/{quality.model_version}",
        )
        click.echo(f"started retraining job {job}", err=True)
    sys.exit(ExitCode.FAILED if quality.degraded else ExitCode.OK)


# --- serve, batch, fetch-model (branch serve) ----------------------------------------------------
# The serving side: the model server, the sharded batch scorer, the KServe storage initializer.


@main.command()
@config_option
@click.option("--port", type=click.IntRange(0, 65535), help="Port to listen on (default: the config's serve.port).")
@click.option(
    "--host",
    help=f"Address to bind (default: 0.0.0.0 in a pod, where the config is {CONFIG_PATH}; else 127.0.0.1).",
)
@click.option("--model-uri", help="The model to serve (default: models:/<registered_model>@champion; or a directory).")
@click.option(
    "--max-batch-size",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    envvar="MLC_SERVE_MAX_BATCH_SIZE",
    help="Most rows one model call predicts (micro-batching).",
)
@click.option(
    "--max-wait-ms",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    envvar="MLC_SERVE_MAX_WAIT_MS",
    help="Longest a request waits for others to share its batch.",
)
@click.option(
    "--graceful-timeout",
    type=click.IntRange(min=0),
    default=25,
    show_default=True,
    help="Seconds SIGTERM waits for in-flight requests (below the pod's terminationGracePeriodSeconds).",
)
@click.option(
    "--max-body-mb",
    type=click.FloatRange(min=0, min_open=True),
    envvar="MLC_SERVE_MAX_BODY_MB",
    help="Largest request body (MiB); larger ones are refused with 413 (default: the config's serve.limits).",
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(min=0, min_open=True),
    envvar="MLC_SERVE_BODY_TIMEOUT",
    help="Seconds a request's body may take to arrive after its headers; slower ones get 408 "
    "(default: the config's serve.limits).",
)
@click.option(
    "--header-timeout",
    type=click.FloatRange(min=0, min_open=True),
    envvar="MLC_SERVE_HEADER_TIMEOUT",
    help="Seconds a connection may take to send a request's headers; slower ones are closed "
    "(default: the config's serve.limits).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=2048,
    show_default=True,
    envvar="MLC_SERVE_MAX_CONNECTIONS",
    help="Concurrent connections and requests; past it requests get 503 (bounded memory).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    help="Port of /metrics and /ready's details when the config has serve.access (default: its metrics_port).",
)
@click.option(
    "--log-sample-rate",
    type=click.FloatRange(0, 1),
    envvar="MLC_SERVE_LOG_SAMPLE_RATE",
    help="Share of answered prediction requests written to the prediction log "
    "(default: the config's monitor.prediction_log.sample_rate; 0 without a log).",
)
@click.option(
    "--log-uri",
    envvar="MLC_SERVE_LOG_URI",
    help="The prediction log: a folder, local or s3:// gs:// (default: the config's monitor.prediction_log.uri).",
)
@click.option(
    "--log-flush-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    envvar="MLC_SERVE_LOG_FLUSH_SECONDS",
    help="How often the prediction log writes a file (sooner at 20000 rows; files are per UTC hour).",
)
@click.option(
    "--watch-seconds",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    envvar="MLC_SERVE_WATCH_SECONDS",
    help="How often the served alias (@champion) is checked: a new version is loaded and swapped in; "
    "before any version has it, the server waits not ready. 0: load once, exit 1 if there is none.",
)
@click.option(
    "--model-version",
    envvar=SERVED_VERSION_VARIABLE,
    help="Serve this version of the registered model and never swap it (a canary rollout pins it in the pod "
    "template; the alias is only compared with it: mlc_model_is_champion). Empty: follow the alias.",
)
def serve(
    config_path: Path,
    port: int | None,
    host: str | None,
    model_uri: str | None,
    max_batch_size: int,
    max_wait_ms: float,
    graceful_timeout: int,
    max_body_mb: float | None,
    body_timeout: float | None,
    header_timeout: float | None,
    max_connections: int,
    metrics_port: int | None,
    log_sample_rate: float | None,
    log_uri: str | None,
    log_flush_seconds: float,
    watch_seconds: float,
    model_version: str | None,
) -> None:
    """Serve the model: /invocations (MLflow formats), the Open Inference Protocol (/v2/...),
    /ping, /ready, /metrics.

    SIGTERM: in-flight requests are answered, then the process ends by the signal (143);
    exit 1 when the model cannot be loaded. The served alias is followed (--watch-seconds): a
    server started before any champion exists waits, not ready, instead of exiting. A pinned
    version (--model-version, a canary's pod template) is served as it is; a new one is a new pod.
    """
    from mlc.runtime.serve.app import ServeSettings, run_server

    config = load_config(config_path)
    access = config.serve.access if config.serve else None
    if access is not None and metrics_port is not None:
        access = access.model_copy(update={"metrics_port": metrics_port})
    limits = serve_limits(config, max_body_mb, body_timeout, header_timeout)
    logged = config.prediction_log
    if log_sample_rate is None:
        log_sample_rate = logged.sample_rate if logged is not None else 0.0
    pinned = model_uri is None and bool(model_version)
    if model_version and not model_version.isdigit():
        raise click.BadParameter(
            f"{model_version!r} is not a model version (a number, e.g. 3)", param_hint="--model-version"
        )
    settings = ServeSettings(
        model_uri=model_uri
        or (version_model_uri(config.registered_model, model_version) if pinned else config.champion_uri),
        champion_uri=config.champion_uri if pinned else None,
        tracking_uri=config.tracking_uri,
        contract=config.contract,
        model_name=config.registered_model,
        metric_names=config.metrics.names,
        max_batch_rows=max_batch_size,
        max_wait_ms=max_wait_ms,
        limits=limits,
        log_sample_rate=log_sample_rate,
        log_uri=log_uri or (logged.uri if logged is not None else None),
        log_flush_seconds=log_flush_seconds,
        watch_seconds=watch_seconds,
        access=access,
    )
    listen = port if port is not None else (config.serve.port if config.serve else DEFAULT_SERVE_PORT)
    address = host or default_serve_host(config_path)
    try:
        code = run_server(settings, address, listen, graceful_timeout, max_connections)
    except OSError as error:  # a port taken or not ours to bind
        _fail(
            f"cannot listen on {address} port {listen} (metrics {access.metrics_port if access else '-'}): {error}", 1
        )
    sys.exit(code)


def serve_limits(
    config: RuntimeConfig, max_body_mb: float | None, body_timeout: float | None, header_timeout: float | None
) -> ServeLimits:
    """The server's request limits: the config's `serve.limits` (else the contract's defaults),
    with what the command line gives instead."""
    from mlc.runtime.contract.config import ServeLimits

    limits = (config.serve.limits if config.serve else None) or ServeLimits()
    given = {
        "max_body_bytes": None if max_body_mb is None else int(max_body_mb * 1024 * 1024),
        "body_timeout_seconds": body_timeout,
        "header_timeout_seconds": header_timeout,
    }
    return limits.model_copy(update={name: value for name, value in given.items() if value is not None})


def default_serve_host(config_path: Path) -> str:
    """Every interface in a pod (the config mounted at the contract's CONFIG_PATH), else loopback only.

    `mlc run serve` runs the same command with a config under `.mlc/`, so a server started on a
    laptop is not reachable from the network unless `--host` says so.
    """
    return "0.0.0.0" if Path(config_path).absolute() == Path(CONFIG_PATH) else "127.0.0.1"


@main.command()
@config_option
@click.option(
    "--shard",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    envvar=COMPLETION_INDEX_VARIABLE,
    help=f"This pod's shard (default: ${COMPLETION_INDEX_VARIABLE} of an Indexed Job).",
)
@click.option(
    "--shards", type=click.IntRange(min=1), default=None, help="Number of shards (default: serve.batch.parallelism)."
)
@click.option("--model-uri", help="The model (default: models:/<registered_model>@champion).")
def batch(config_path: Path, shard: int, shards: int | None, model_uri: str | None) -> None:
    """Score files shard, shard+shards, ... of serve.batch.input into serve.batch.output.

    Rows are checked against the data contract as serve checks a request: a row breaking it fails
    its file, or with serve.batch.invalid_rows: skip, is left out and reported. Exit 0 all
    scored, 1 a file or the model failed, config_error (78) unusable config.
    """
    from mlc.runtime.contract.config import ConfigError
    from mlc.runtime.datasets import DataError
    from mlc.runtime.serve.batch_scoring import BatchLog, run_batch
    from mlc.runtime.serve.served_model import ModelError, load_model, resolve_model

    config = load_config(config_path)
    try:
        section = config.require_batch()
    except ConfigError as error:
        _fail(str(error), config.exit_codes.config_error)
    shards = shards or section.parallelism
    if shard >= shards:
        _fail(f"--shard {shard} is not below --shards {shards}", 1)
    uri = model_uri or config.champion_uri
    contract = config.contract
    # Contract columns as text, as training reads them; ids too, so they pass through as written.
    text_columns = [*contract.features, *contract.ids] if contract is not None else []
    try:
        info = resolve_model(uri, config.tracking_uri)
        model = load_model(info)
        scored = 0
        batch_log = None
        if config.prediction_log is not None and config.prediction_log.sample_rate > 0:
            from mlc.runtime.prediction_log.records import input_types
            from mlc.runtime.prediction_log.writer import LogFiles

            logged = config.prediction_log
            batch_log = BatchLog(
                LogFiles(logged.uri), logged.sample_rate, info.model, info.version, input_types(contract)
            )
        results = run_batch(
            model, section.input, section.output, shard, shards, text_columns, contract, section.invalid_rows, batch_log
        )
        for result in results:
            skipped = f" ({result.skipped} invalid row(s) skipped)" if result.skipped else ""
            logged_rows = f", {result.logged} logged" if result.logged else ""
            click.echo(f"{result.input}: {result.rows} rows -> {result.output}{skipped}{logged_rows}")
            if result.log_error is not None:
                click.echo(f"warning: {result.input}: {result.log_error}", err=True)
            if result.first_skipped is not None:
                click.echo(
                    f"warning: {result.input}: skipped {result.skipped} row(s) breaking the data contract, "
                    f"first: {result.first_skipped.sentence()}",
                    err=True,
                )
            scored += 1
    except (DataError, ModelError) as error:
        _fail(str(error), 1)
    click.echo(f"shard {shard} of {shards}: scored {scored} file(s) with {info.model} version {info.version}")


@main.command("fetch-model")
@click.option("--uri", required=True, help="models:/<name>@<alias> or models:/<name>/<version>.")
@click.option(
    "--dest",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Directory to write the MLflow model into (KServe: /mnt/models).",
)
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI (env MLFLOW_TRACKING_URI).")
def fetch_model(uri: str, dest: Path, tracking_uri: str | None) -> None:
    """Download a registered model version into DEST (the KServe storage initializer). Exit 0, or 1."""
    from mlc.runtime.serve.model_fetch import fetch_model as fetch
    from mlc.runtime.serve.served_model import ModelError
    from mlc.runtime.tracking_client import bound_tracking_requests

    bound_tracking_requests(os.environ, None)
    if not tracking_uri:
        _fail("set MLFLOW_TRACKING_URI (or --tracking-uri): where the model registry is", 1)
    try:
        info = fetch(uri, dest, tracking_uri)
    except ModelError as error:
        _fail(str(error), 1)
    click.echo(f"fetched {info.model} version {info.version} ({uri}) into {dest}")


if __name__ == "__main__":  # `torchrun -m mlc.runtime.cli train ...` (multi-node training pods)
    main()
