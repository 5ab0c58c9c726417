"""The `mlc-runtime` command: subcommands run inside the compiled artifacts."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

# Exit codes of `mlc-runtime drift` (and `profile`): 0 no drift, 1 drift, 2 error; 78
# (sysexits EX_CONFIG, the compiler's runtime-config contract) when --config is unusable.
EXIT_OK, EXIT_DRIFT, EXIT_ERROR, EXIT_CONFIG = 0, 1, 2, 78


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Run a step of an mlc project: train, gate, drift, serve."""


def _fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """One clear line on stderr, exit 2: user errors never show a traceback."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@main.command()
@click.option("--data", type=click.Path(), help="Reference Parquet/CSV file or directory.")
@click.option("--spec", type=click.Path(), help="mlproject.yaml (feature types from its contract).")
@click.option("--merge", "shards", multiple=True, type=click.Path(),
              help="Merge these profile shards instead of reading --data (repeatable).")
@click.option("-o", "--output", required=True, type=click.Path(), help="Profile JSON to write.")
@click.option("--bins", default=100, show_default=True, help="Reference-quantile bins.")
def profile(data: str | None, spec: str | None, shards: tuple[str, ...], output: str,
            bins: int) -> None:
    """Build a reference profile (or merge profile shards) for drift checks."""
    from mlc.runtime.drift.config import SpecError, read_spec
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
            features = read_spec(spec).features if spec else None
            result = build_profile(data, features, bins=bins)
        write_profile(result, output)
    except (DataError, ProfileError, SpecError, ValueError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror or exc}")
    click.echo(f"profiled {result['rows']} rows, {len(result['features'])} features -> {output}",
               err=True)


@main.command()
@click.option("--config", "config_path", type=click.Path(), envvar="MLC_RUNTIME_CONFIG",
              help="The compiler's runtime config JSON (env MLC_RUNTIME_CONFIG): features, "
                   "method, thresholds, current data, champion model, metric grouping.")
@click.option("--profile", "profile_path", type=click.Path(), help="Reference profile JSON.")
@click.option("--model", help="models:/<name>@<alias> (or /<version>): use its logged profile.")
@click.option("--data", type=click.Path(), help="Current Parquet/CSV data.")
@click.option("--spec", type=click.Path(), help="mlproject.yaml (features, method, threshold).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--report", type=click.Path(), help="Write an HTML report here.")
@click.option("--push", help="Pushgateway URL to push drift metrics to.")
@click.option("--project", help="Project label for pushed metrics (default: spec metadata.name).")
@click.option("--fdr", type=float, default=0.05, show_default=True,
              help="False discovery rate for the per-feature tests.")
@click.option("--min-psi", type=float, default=0.01, show_default=True,
              help="Smallest PSI a significant feature needs to count as drifted.")
@click.option("--on-drift", type=click.Choice(["none", "retrain"]),
              help="What to do on dataset drift (default: spec monitor.drift.on_drift).")
@click.option("--retrain-cronjob", help="Retraining CronJob name (default: <project>-retrain).")
@click.option("--namespace", help="Kubernetes namespace of the CronJob (default: in-cluster).")
def drift(config_path: str | None, profile_path: str | None, model: str | None,
          data: str | None, spec: str | None, fmt: str, report: str | None, push: str | None,
          project: str | None, fdr: float, min_psi: float, on_drift: str | None,
          retrain_cronjob: str | None, namespace: str | None) -> None:
    """Compare current data with the reference profile. Exit 0 no drift, 1 drift, 2 error
    (78 when the runtime config is unusable)."""
    import dataclasses
    import json

    from mlc.runtime.drift.check import render_text, run_check
    from mlc.runtime.drift.config import DriftConfig, SpecError, read_runtime_config, read_spec
    from mlc.runtime.drift.data import DataError
    from mlc.runtime.drift.profile import ProfileError, read_profile

    if spec and config_path:
        _fail("give at most one of --spec or --config")
    if not 0 < fdr < 1:
        _fail("--fdr must be between 0 and 1")
    try:
        base = (read_runtime_config(config_path) if config_path
                else read_spec(spec) if spec else DriftConfig())
    except SpecError as exc:
        _fail(str(exc), EXIT_CONFIG if config_path else EXIT_ERROR)
    config = dataclasses.replace(base, fdr=fdr, min_psi=min_psi)
    model = model or (None if profile_path else config.model_uri)
    data = data or config.current_uri
    if bool(profile_path) == bool(model):
        _fail("give exactly one of --profile or --model")
    if not data:
        _fail("give --data (or a runtime config with drift.current.uri)")
    try:
        if model:
            from mlc.runtime.drift.mlflow_profile import load_model_profile

            reference = load_model_profile(model, config.tracking_uri)
        else:
            reference = read_profile(profile_path)
        result = run_check(reference, data, config)
    except (DataError, ProfileError, SpecError) as exc:
        _fail(str(exc))
    click.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True) if fmt == "json"
               else render_text(result))
    if report:
        from mlc.runtime.drift.report import write_report

        try:
            write_report(result, report)
        except OSError as exc:
            _fail(f"cannot write report {report}: {exc.strerror or exc}")
    project = project or config.project or "default"
    if push:
        from mlc.runtime.drift.push import PushError, push_metrics

        grouping = {**(config.grouping or {}), "project": project}
        try:
            push_metrics(push, grouping, result)
        except PushError as exc:
            _fail(str(exc))
    if result.drifted and (on_drift or config.on_drift) == "retrain":
        from mlc.runtime.drift.retrain import RetrainError, start_retraining

        cronjob = retrain_cronjob or config.retrain_cronjob or f"{project}-retrain"
        try:
            job = start_retraining(cronjob, namespace or config.namespace)
        except RetrainError as exc:
            _fail(str(exc))
        click.echo(f"started retraining job {job}", err=True)
    sys.exit(EXIT_DRIFT if result.drifted else EXIT_OK)
