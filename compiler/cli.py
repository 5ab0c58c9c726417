"""The `mlc` command line. Each command parses options, calls one library function, renders the
result with a view, and returns an exit code: 0 success, 1 invalid input or failure, 2 usage.

Importing this module stays cheap (no pydantic, git, kubernetes): `mlc --version` and `--help`
must feel instant, so stages are imported inside the commands that need them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from mlc.compiler import __version__

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def _display(path: Path) -> str:
    """How a path is named in messages: relative to the working directory when it is inside it."""
    try:
        return os.path.relpath(path) if not path.is_absolute() or str(path).startswith(os.getcwd()) else str(path)
    except ValueError:  # another drive on Windows
        return str(path)


spec_option = click.option(
    "-f",
    "--file",
    "spec_paths",
    type=click.Path(path_type=Path),
    multiple=True,
    default=[Path("mlproject.yaml")],
    show_default=True,
    help="Spec file, or a directory searched for mlproject.yaml (repeatable).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="mlc", message="%(prog)s %(version)s")
def main() -> None:
    """Compile mlproject.yaml into Dockerfiles, Kubernetes manifests, monitors and CI workflows."""


@main.command()
@spec_option
def validate(spec_paths: tuple[Path, ...]) -> None:
    """Load, validate and resolve every environment of each spec; exit 1 on any error."""
    from mlc.compiler.pipeline import discover_specs, resolve_spec_file
    from mlc.compiler.views import render_diagnostics, render_validation

    specs = discover_specs(spec_paths)
    if not specs:
        raise click.UsageError(f"no {', '.join(map(str, spec_paths))} found")
    failed = False
    for spec in specs:
        result = resolve_spec_file(spec, _display(spec))
        click.echo(render_diagnostics(result.diagnostics), err=True, nl=False)
        if result.ok:
            click.echo(render_validation(result, _display(spec)), nl=False)
        failed = failed or not result.ok
    sys.exit(EXIT_INVALID if failed else EXIT_OK)


@main.command()
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Write to a file instead of stdout."
)
def schema(output: Path | None) -> None:
    """Print the JSON Schema of mlproject.yaml (for editors and pre-commit checks)."""
    from mlc.compiler.json_schema import json_schema_text

    text = json_schema_text()
    if output is None:
        click.echo(text, nl=False)
    else:
        from mlc.compiler.scaffold import write_new_file

        write_new_file(output, text, overwrite=True)


@main.command()
@click.option("--name", help="Project name (default: from the directory name).")
@click.option("--force", is_flag=True, help="Overwrite an existing mlproject.yaml.")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False), default=".")
def init(directory: Path, name: str | None, force: bool) -> None:
    """Scaffold a commented mlproject.yaml (with its $schema modeline) in DIRECTORY."""
    from mlc.compiler.scaffold import ScaffoldError, scaffold_project

    try:
        written = scaffold_project(directory, name, force=force)
    except ScaffoldError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INVALID)
    for path in written:
        click.echo(f"created {_display(path)}")
    click.echo("next: edit mlproject.yaml, then run `mlc validate`")


@main.group()
def images() -> None:
    """Base images of the compiled Dockerfiles."""


@images.command("lock")
@spec_option
def images_lock(spec_paths: tuple[Path, ...]) -> None:
    """Resolve every base image tag to its registry digest into mlc.images.lock beside the spec."""
    from mlc.compiler.backends.docker import base_images
    from mlc.compiler.pipeline import discover_specs, resolve_spec_file
    from mlc.compiler.registry_digests import IMAGES_LOCK_FILENAME, RegistryError, resolve_digests, write_images_lock
    from mlc.compiler.views import render_diagnostics

    failed = False
    for spec in discover_specs(spec_paths):
        result = resolve_spec_file(spec, _display(spec))
        click.echo(render_diagnostics(result.diagnostics), err=True, nl=False)
        try:
            digests = resolve_digests(base_images(result.resolved)) if result.ok else None
        except RegistryError as exc:
            click.echo(f"error: {exc}", err=True)
            digests = None
        if digests is None:
            failed = True
            continue
        lock = spec.parent / IMAGES_LOCK_FILENAME
        write_images_lock(lock, digests)
        for reference, digest in digests.items():
            click.echo(f"{reference}@{digest}")
        click.echo(f"wrote {_display(lock)}")
    sys.exit(EXIT_INVALID if failed else EXIT_OK)
