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


if __name__ == "__main__":  # `torchrun -m mlc.runtime.cli train ...` (multi-node training pods)
    main()
