"""The `mlc-runtime` command: subcommands run inside the compiled artifacts."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Run a step of an mlc project: train, gate, drift, serve."""


# --- train, gate, rollback, validate-data (branch runtime-train) ---------------------------------
# Each command: load the config, call one library function, render, exit with the documented code.
# Every user error is one line on stderr; an unusable config exits with `exit_codes.config_error`.

import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, NoReturn, TypeVar  # noqa: E402

if TYPE_CHECKING:
    from mlc.runtime.config import RuntimeConfig

_Command = TypeVar("_Command", bound=Callable[..., object])


def config_option(command: _Command) -> _Command:
    """`--config PATH` (default `$MLC_RUNTIME_CONFIG`), shared by every command."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        envvar="MLC_RUNTIME_CONFIG",
        required=True,
        help="The runtime config JSON (default: $MLC_RUNTIME_CONFIG).",
    )(command)


def fail(message: str, exit_code: int) -> NoReturn:
    """One line on stderr, then exit."""
    click.echo(f"mlc-runtime: error: {message}", err=True)
    sys.exit(exit_code)


def load_config(path: Path) -> RuntimeConfig:
    from mlc.runtime.config import CONFIG_ERROR_EXIT_CODE, ConfigError, load_runtime_config

    try:
        return load_runtime_config(path)
    except ConfigError as error:
        fail(str(error), CONFIG_ERROR_EXIT_CODE)


@main.command("validate-data")
@config_option
@click.option("--dataset", "dataset_name", required=True, help="A dataset name of the config's `data`.")
@click.option("--sample", type=click.IntRange(min=1), help="Check only the first N rows.")
def validate_data(config_path: Path, dataset_name: str, sample: int | None) -> None:
    """Check a dataset against the data contract: exit 0 valid, 1 violations, 2 unreadable."""
    from mlc.runtime.config import ConfigError
    from mlc.runtime.data_check import check_dataset, render_data_report
    from mlc.runtime.datasets import DataError

    config = load_config(config_path)
    try:
        report = check_dataset(config, dataset_name, sample)
    except ConfigError as error:
        fail(str(error), config.exit_codes.config_error)
    except DataError as error:
        fail(str(error), 2)
    click.echo(render_data_report(report), nl=False)
    sys.exit(0 if report.valid else 1)


@main.command()
@config_option
@click.option("--smoke", is_flag=True, help="A quick check: at most a few hundred rows, 1 epoch, CPU is fine.")
def train(config_path: Path, smoke: bool) -> None:
    """Train with the project's entrypoint; log to MLflow; register a version as @challenger.

    Exit 0 trained and registered, 1 training failed (an entrypoint's own error shows its
    traceback), 143 stopped by SIGTERM after checkpointing, config_error (78) unusable config.
    """
    from mlc.runtime.config import ConfigError
    from mlc.runtime.datasets import DataError
    from mlc.runtime.preprocessor import PreprocessError
    from mlc.runtime.training import PREEMPTED_EXIT_CODE, Preempted, TrainingError, run_training

    config = load_config(config_path)
    try:
        result = run_training(config, smoke=smoke)
    except ConfigError as error:
        fail(str(error), config.exit_codes.config_error)
    except (DataError, PreprocessError, TrainingError) as error:
        fail(str(error), 1)
    except Preempted as error:
        fail(str(error), PREEMPTED_EXIT_CODE)
    if result.model_version is not None:
        click.echo(
            f"registered {config.registered_model} version {result.model_version} "
            f"as @{config.aliases.challenger} (MLflow run {result.run_id})"
        )


@main.command()
@config_option
@click.option(
    "--report", "markdown_path", type=click.Path(path_type=Path, dir_okay=False), help="Write the report as markdown."
)
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), help="Write the report as JSON.")
@click.option("--promote", is_flag=True, help="On pass: challenger -> @champion, the old champion -> @previous.")
def gate(config_path: Path, markdown_path: Path | None, json_path: Path | None, promote: bool) -> None:
    """Evaluate @challenger against @champion on the eval set and apply the gates.

    Exit 0 pass, 1 fail, 2 error: anything that prevents a verdict fails closed (config_error,
    78, for an unusable config).
    """
    from mlc.runtime.gates import render_gate_json, render_gate_markdown
    from mlc.runtime.promotion import promote as promote_challenger
    from mlc.runtime.promotion import run_gate

    config = load_config(config_path)
    try:
        report = run_gate(config)
        markdown = render_gate_markdown(report)
        if markdown_path is not None:
            markdown_path.write_text(markdown)
        if json_path is not None:
            json_path.write_text(render_gate_json(report))
        outcome = promote_challenger(config, report) if promote and report.passed else None
    except Exception as error:  # fail closed: no verdict is never a pass
        fail(_gate_error_line(error), 2)
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
        fail(_gate_error_line(error), 2)


def _gate_error_line(error: Exception) -> str:
    """Our own errors say what is wrong; anything else also names its type (a bug or an outage)."""
    from mlc.runtime.config import ConfigError
    from mlc.runtime.promotion import GateError

    if isinstance(error, GateError | ConfigError):
        return str(error)
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


if __name__ == "__main__":  # `torchrun -m mlc.runtime.cli train ...` (multi-node training pods)
    main()
