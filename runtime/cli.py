"""The `mlc-runtime` command: subcommands run inside the compiled artifacts."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Run a step of an mlc project: train, gate, drift, serve."""
