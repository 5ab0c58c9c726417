"""The `mlc` command line. Each command parses options, calls one library function, renders the
result with a view, and returns an exit code (`errors.ExitCode`): 0 success, 1 invalid input or
failure, 2 changes (`plan --detailed-exitcode`) or pushed (`bot`), 3 not pushed (`bot`), 64 a
malformed command line.

Importing this module stays cheap (no pydantic, git, kubernetes): `mlc --version` and `--help`
must feel instant, so stages are imported inside the commands that need them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mlc.compiler import __version__
from mlc.compiler.errors import ExitCode
from mlc.runtime.contract import JOBS

if TYPE_CHECKING:
    from mlc.compiler.apply.specs import ApplyOutcome
    from mlc.compiler.plan.changes import Plan
    from mlc.compiler.plan.specs import PlanRun


class _MlcGroup(click.Group):
    """A click group whose usage errors exit with `ExitCode.USAGE` (64), not click's 2, which
    `plan --detailed-exitcode` and `bot` use for success: a broken call is never read as one."""

    group_class = type  # `@main.group()` makes groups of this class too

    def make_context(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        with _usage_exit():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        with _usage_exit():
            return super().invoke(ctx)


class _usage_exit:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _: object) -> bool:
        if isinstance(error, click.UsageError):
            error.exit_code = ExitCode.USAGE
        return False


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


@click.group(cls=_MlcGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="mlc", message="%(prog)s %(version)s")
def main() -> None:
    """Compile mlproject.yaml into Dockerfiles, Kubernetes manifests, monitors and CI workflows."""


@main.command()
@spec_option
@click.option("--no-cache", is_flag=True, help="Validate from scratch; neither read nor write the validation cache.")
def validate(spec_paths: tuple[Path, ...], no_cache: bool) -> None:
    """Load, validate and resolve every environment of each spec; exit 1 on any error.

    A spec validated before, unchanged and with unchanged files around it, is answered from the
    cache (see `validate.cache`) without loading the validator.
    """
    # All cheap to import: a cache hit never loads pydantic or PyYAML.
    from mlc.compiler.cli.views import render_diagnostics, render_validation
    from mlc.compiler.load.discovery import discover_specs
    from mlc.compiler.pipeline import check_spec_file
    from mlc.compiler.validate.cache import cache_directory

    specs = discover_specs(spec_paths)
    if not specs:
        raise click.UsageError(f"no {', '.join(map(str, spec_paths))} found")
    directory = None if no_cache else cache_directory(os.environ)
    failed = False
    for spec in specs:
        display = _display(spec)
        checked = check_spec_file(spec, display, directory)
        click.echo(render_diagnostics(checked.diagnostics), err=True, nl=False)
        if checked.record is not None:
            click.echo(render_validation(display, checked.record.environments), nl=False)
        failed = failed or not checked.ok
    sys.exit(ExitCode.INVALID if failed else ExitCode.OK)


@main.command()
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Write to a file instead of stdout."
)
def schema(output: Path | None) -> None:
    """Print the JSON Schema of mlproject.yaml (for editors and pre-commit checks)."""
    from mlc.compiler.load.json_schema import json_schema_text

    text = json_schema_text()
    if output is None:
        click.echo(text, nl=False)
    else:
        from mlc.compiler.cli.scaffold import write_new_file

        write_new_file(output, text, overwrite=True)


@main.command()
@click.option("--name", help="Project name (default: from the directory name).")
@click.option("--target", help="The column to predict (default: target, label, class or y, else the last column).")
@click.option("--force", is_flag=True, help="Overwrite an existing mlproject.yaml.")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False), default=".")
def init(directory: Path, name: str | None, target: str | None, force: bool) -> None:
    """Scaffold a project in DIRECTORY that trains as written: mlproject.yaml (the data contract
    read off data/train.csv when it exists), a starter src/<name>/model.py, requirements.in and
    its lock, .gitignore lines for mlc's local state."""
    from mlc.compiler.cli.scaffold import TRAIN_URI, ScaffoldError, scaffold_project

    try:
        written = scaffold_project(directory, name, force=force, target=target)
    except ScaffoldError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(ExitCode.INVALID)
    for path in written:
        click.echo(f"created {_display(path)}")
    if (directory / TRAIN_URI).is_file():
        click.echo("next: mlc validate, then mlc run train (the data contract is a first guess: read it)")
    else:
        click.echo(
            f"next: put the training data in {TRAIN_URI} (and evaluation data in data/eval.csv), then run "
            "`mlc init --force` to read the data contract off it"
        )


@main.command()
@spec_option
@click.option(
    "--input",
    "input_name",
    default="requirements.in",
    show_default=True,
    help="The project's direct dependencies, beside the spec.",
)
def lock(spec_paths: tuple[Path, ...], input_name: str) -> None:
    """Pin requirements.in, and everything it needs, to what this environment has installed, into
    the spec's code.requirements (torch and mlc left out: the image installs them)."""
    from mlc.compiler.cli.requirements_pins import LockError, lock_text, pin_requirements
    from mlc.compiler.cli.scaffold import write_new_file
    from mlc.compiler.load.discovery import discover_specs
    from mlc.compiler.pipeline import requirements_path

    specs = discover_specs(spec_paths)
    if not specs:
        raise click.UsageError(f"no {', '.join(map(str, spec_paths))} found")
    failed = False
    for spec in specs:
        source, target = spec.parent / input_name, spec.parent / requirements_path(spec)
        try:
            if not target.resolve().is_relative_to(spec.parent.resolve()):
                raise LockError(f"code.requirements {requirements_path(spec)!r} leads outside the spec's folder")
            if not source.is_file():
                raise LockError(
                    f"{_display(source)}: no such file: list the project's own dependencies there, one a line"
                )
            pins = pin_requirements(source.read_text(encoding="utf-8"), _display(source))
        except LockError as exc:
            click.echo(f"error: {exc}", err=True)
            failed = True
            continue
        write_new_file(target, lock_text(pins, input_name), overwrite=True)
        click.echo(f"wrote {_display(target)}: {len(pins)} pinned from {_display(source)}")
    sys.exit(ExitCode.INVALID if failed else ExitCode.OK)


image_option = click.option(
    "--image",
    "images",
    multiple=True,
    metavar="ROLE=REPO@sha256:DIGEST",
    help="Pin a built image digest into the rendered manifests (ROLE: train or serve; repeatable).",
)


def _plan_run(spec_paths: tuple[Path, ...], images: tuple[str, ...]) -> PlanRun:
    """Discover the specs, parse --image, compile and plan; exit 1 with diagnostics on failure."""
    from mlc.compiler import plan_specs
    from mlc.compiler.cli.views import render_diagnostics
    from mlc.compiler.load.discovery import discover_specs
    from mlc.compiler.plan.image_pins import ImagePinError
    from mlc.compiler.validate.cache import cache_directory

    specs = discover_specs(spec_paths)
    if not specs:
        raise click.UsageError(f"no {', '.join(map(str, spec_paths))} found")
    try:
        run = plan_specs(specs, images, display=_display, cache=cache_directory(os.environ))
    except ImagePinError as exc:
        raise click.BadParameter(str(exc), param_hint="--image") from None
    if not run.ok:
        click.echo(render_diagnostics(run.diagnostics), err=True, nl=False)
        sys.exit(ExitCode.INVALID)
    return run


@main.command()
@spec_option
@click.option("--env", "environment", help="Only the files of this environment's folder (not with --out).")
@click.option("--diff", is_flag=True, help="Show a unified diff under each update.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes (0: none, 1: error).")
@image_option
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="PLANFILE",
    help="Also save the plan, contents included, for `mlc apply PLANFILE` (not saved on error).",
)
@click.option("--force", is_flag=True, help="With --out: save a plan with conflicts; applying it overwrites them.")
def plan(
    spec_paths: tuple[Path, ...],
    environment: str | None,
    diff: bool,
    output_format: str,
    detailed_exitcode: bool,
    images: tuple[str, ...],
    out: Path | None,
    force: bool,
) -> None:
    """Show what `mlc apply` would change: + create, ~ update, - delete, ! conflict."""
    from mlc.compiler.cli.plan_views import (
        has_changes,
        render_plan_json,
        render_plan_markdown,
        render_plan_text,
    )
    from mlc.compiler.plan.changes import restrict_to_environment

    if force and out is None:
        raise click.UsageError("--force only applies to a saved plan: give --out PLANFILE")
    if environment is not None and out is not None:
        raise click.UsageError("--env cannot be used with --out: a saved plan holds every file of the spec")
    run = _plan_run(spec_paths, images)
    plans = run.plans
    if environment is not None:
        if not any(environment in spec.environments for spec in run.specs):
            known = sorted({name for spec in run.specs for name in spec.environments})
            message = f"no spec defines environment {environment!r}; environments: {', '.join(known) or 'none'}"
            raise click.BadParameter(message, param_hint="--env")
        plans = [restrict_to_environment(p, environment) for p in plans]
    if output_format == "json":
        click.echo(render_plan_json(plans), nl=False)
    elif output_format == "markdown":
        click.echo(render_plan_markdown(plans, diff=diff), nl=False)
    else:
        click.echo(render_plan_text(plans, diff=diff), nl=False)
    if out is not None:
        _save_plan(run, images, force, out)
    sys.exit(ExitCode.CHANGES if detailed_exitcode and has_changes(plans) else ExitCode.OK)


def _save_plan(run: PlanRun, images: tuple[str, ...], force: bool, out: Path) -> None:
    """Write the saved plan to `out` (a note on stderr), or exit 1 saying why it is not saved."""
    from mlc.compiler.plan.saved import PlanFileError, save_plan_run, write_saved_plan

    target = out.resolve()
    for spec in run.specs:
        for change in spec.plan.changes:
            if spec.tree.locate(change.path).resolve() == target:
                click.echo(f"error: --out {_display(out)} is a file mlc generates; save the plan elsewhere", err=True)
                sys.exit(ExitCode.USAGE)
    try:
        write_saved_plan(out, save_plan_run(run, images, force))
    except PlanFileError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(ExitCode.INVALID)
    click.echo(f"Saved the plan to {_display(out)}. To apply exactly it: mlc apply {_display(out)}", err=True)


@main.command()
@click.argument("plan_file", metavar="[PLANFILE]", required=False, type=click.Path(path_type=Path, dir_okay=False))
@spec_option
@click.option("--force", is_flag=True, help="Overwrite (or delete) generated files edited by hand.")
@click.option("--commit", is_flag=True, help="Commit exactly the changed generated files and mlc.lock.")
@click.option("-m", "--message", help="Commit message (default: names the spec digest).")
@image_option
@click.pass_context
def apply(
    ctx: click.Context,
    plan_file: Path | None,
    spec_paths: tuple[Path, ...],
    force: bool,
    commit: bool,
    message: str | None,
    images: tuple[str, ...],
) -> None:
    """Write the planned changes atomically, prune deleted files, then write mlc.lock.

    Without PLANFILE: plan the specs now (as `mlc plan`) and apply that plan.

    With PLANFILE, saved by `mlc plan --out PLANFILE`: apply exactly that plan, compiling
    nothing. Run it where `mlc plan` ran. It is refused, writing nothing, when the plan is
    stale (the spec, mlc.images.lock, mlc.lock or any file it covers changed since, or it
    was applied already), when another mlc build wrote it, or when the file is corrupt.
    -f, --image and --force are fixed by the plan: give them to `mlc plan --out`.
    """
    from mlc.compiler import apply_plans
    from mlc.compiler.apply.writer import ApplyError
    from mlc.compiler.cli.plan_views import render_apply_result, render_plan_text

    if plan_file is not None:
        fixed = [
            flag
            for flag, name in (("-f/--file", "spec_paths"), ("--image", "images"), ("--force", "force"))
            if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
        ]
        if fixed:
            raise click.UsageError(
                f"{', '.join(fixed)} cannot be used with PLANFILE: the saved plan fixed them "
                "(give them to `mlc plan --out`)"
            )
    try:
        if plan_file is None:
            run = _plan_run(spec_paths, images)
            plans, outcome = run.plans, apply_plans(run, force=force, commit=commit, message=message)
        else:
            plans, outcome = _apply_saved_plan(plan_file, commit, message)
    except ApplyError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(ExitCode.INVALID)
    click.echo(render_plan_text(plans, summary=False), nl=False)
    click.echo(render_apply_result(outcome.written, outcome.deleted, outcome.unchanged), nl=False)
    if outcome.commit:
        click.echo(f"committed {outcome.commit[:12]}")


def _apply_saved_plan(plan_file: Path, commit: bool, message: str | None) -> tuple[list[Plan], ApplyOutcome]:
    """Read and apply a saved plan; exit 1 with one line when the file cannot be used."""
    from mlc.compiler.apply.specs import apply_saved_plan
    from mlc.compiler.plan.saved import PlanFileError, read_saved_plan

    try:
        saved = read_saved_plan(plan_file, _display(plan_file))
    except PlanFileError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(ExitCode.INVALID)
    return saved.plans, apply_saved_plan(saved, commit=commit, message=message)


@main.command()
@spec_option
@click.option(
    "--comment-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("mlc-plan-comment.md"),
    show_default=True,
    help="Where to write the pull request comment body (markdown) for the workflow to post.",
)
@click.option("--remote", default="origin", show_default=True, help="Remote to push to.")
@click.option("--branch", help="Branch to push to (default: the pull request's, from the event).")
def bot(spec_paths: tuple[Path, ...], comment_file: Path, remote: str, branch: str | None) -> None:
    """CI bot: plan; apply, commit and push to the PR branch (never for forks); report.

    Exit codes: 0 up to date, 1 error or conflict, 2 pushed a commit, 3 changes not pushed.
    """
    from mlc.compiler.apply.bot import BotOutcome, bot_identity, read_pull_request, run_bot
    from mlc.compiler.cli.plan_views import render_bot_comment, render_bot_failure
    from mlc.compiler.cli.views import render_diagnostics
    from mlc.compiler.load.discovery import discover_specs
    from mlc.compiler.plan.specs import plan_specs

    specs = discover_specs(spec_paths)
    if not specs:
        raise click.UsageError(f"no {', '.join(map(str, spec_paths))} found")
    run = plan_specs(specs, _display)
    if not run.ok:
        diagnostics = render_diagnostics(run.diagnostics)
        click.echo(diagnostics, err=True, nl=False)
        _write_bot_report(render_bot_failure(diagnostics), comment_file)
        sys.exit(BotOutcome.ERROR)
    event_path, head_ref = os.environ.get("GITHUB_EVENT_PATH"), os.environ.get("GITHUB_HEAD_REF")
    pull = read_pull_request(event_path, head_ref, branch)
    report = run_bot(run, pull, remote, bot_identity(os.environ))
    body = render_bot_comment(run.plans, report.note)
    click.echo(body, nl=False)
    _write_bot_report(body, comment_file)
    sys.exit(report.outcome)


def _write_bot_report(body: str, comment_file: Path) -> None:
    """Write the comment body file, and append to $GITHUB_STEP_SUMMARY when it is set."""
    from mlc.compiler.cli.scaffold import write_new_file

    write_new_file(comment_file, body, overwrite=True)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(body)


@main.command()
@spec_option
def vendor(spec_paths: tuple[Path, ...]) -> None:
    """Write this compiler's own wheel where the spec's images and CI install mlc from
    (`images.runtime.wheel`, default wheels/mlc-<version>-py3-none-any.whl), or, installing from
    `images.runtime.index_url`, lock the sha256 of what that index serves (mlc.runtime.lock); commit it."""
    from pydantic import ValidationError

    from mlc.compiler.cli.index_release import index_release_hashes
    from mlc.compiler.cli.views import render_diagnostics
    from mlc.compiler.load.discovery import discover_specs
    from mlc.compiler.load.document import read_spec
    from mlc.compiler.load.runtime_lock import RUNTIME_LOCK_FILENAME, runtime_lock_text
    from mlc.compiler.load.spec import RuntimeSource
    from mlc.compiler.plan.runtime_wheel import write_wheel

    failed = False
    for spec in discover_specs(spec_paths):
        document, problems = read_spec(spec, _display(spec))
        click.echo(render_diagnostics(problems), err=True, nl=False)
        if document is None:
            failed = True
            continue
        images = document.data.get("images")
        runtime = images.get("runtime") if isinstance(images, dict) else None
        try:
            source = RuntimeSource.model_validate(runtime or {})
        except ValidationError:
            click.echo(f"{_display(spec)}: images.runtime is invalid: `mlc validate` says why", err=True)
            failed = True
            continue
        wheel = source.wheel_path()
        if source.index_url is not None:
            lock = spec.parent / RUNTIME_LOCK_FILENAME
            try:
                hashes = index_release_hashes(source.index_url, __version__)
            except LookupError as exc:
                click.echo(f"error: {exc}", err=True)
                failed = True
                continue
            lock.write_text(runtime_lock_text(__version__, hashes), encoding="utf-8")
            click.echo(f"wrote {_display(lock)} ({len(hashes)} file(s) of mlc {__version__} on the index)")
            continue
        assert wheel is not None  # a runtime source is a wheel or an index
        target = spec.parent / wheel
        written = write_wheel(target, __version__)
        click.echo(f"{'wrote' if written else 'unchanged'} {_display(target)}")
    sys.exit(ExitCode.INVALID if failed else ExitCode.OK)


@main.group()
def images() -> None:
    """Base images of the compiled Dockerfiles."""


@images.command("lock")
@spec_option
def images_lock(spec_paths: tuple[Path, ...]) -> None:
    """Resolve every base image tag to its registry digest into mlc.images.lock beside the spec."""
    from mlc.compiler.cli.registry_digests import RegistryError, resolve_digests
    from mlc.compiler.cli.views import render_diagnostics
    from mlc.compiler.load.discovery import discover_specs
    from mlc.compiler.load.images_lock import IMAGES_LOCK_FILENAME, write_images_lock
    from mlc.compiler.pipeline import resolve_spec_file

    failed = False
    for spec in discover_specs(spec_paths):
        result = resolve_spec_file(spec, _display(spec))
        click.echo(render_diagnostics(result.diagnostics), err=True, nl=False)
        try:
            digests = resolve_digests(result.resolved[0].images.base_images()) if result.ok else None
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
    sys.exit(ExitCode.INVALID if failed else ExitCode.OK)


@images.command("check-packages")
@spec_option
@click.option("--mirror", help="Read the package indexes through this apt mirror (its scheme and host replace theirs).")
def images_check_packages(spec_paths: tuple[Path, ...], mirror: str | None) -> None:
    """Look each image's apt packages up in its distribution's archive (names, written versions).

    Downloads the archive's package indexes: online, on purpose (`mlc validate` stays offline and
    checks against mlc's pin table only). An unreachable archive falls back to the table."""
    from mlc.compiler.cli.apt_packages import ArchiveReader, check_image_packages
    from mlc.compiler.cli.views import render_diagnostics
    from mlc.compiler.compat import docker_build_table
    from mlc.compiler.diagnostics import error
    from mlc.compiler.load.discovery import discover_specs
    from mlc.compiler.pipeline import resolve_spec_file
    from mlc.compiler.resolve.images import image_distro

    apt = docker_build_table().apt
    reader = ArchiveReader(mirror)
    failed = False
    for spec in discover_specs(spec_paths):
        result = resolve_spec_file(spec, _display(spec))
        click.echo(render_diagnostics(result.diagnostics), err=True, nl=False)
        if not result.ok or result.project is None:
            failed = True
            continue
        project = result.project
        environments = list(project.environments.values()) or [project.base]
        problems = []
        for build in result.resolved[0].images.builds():
            distro = image_distro(environments, build.role)
            for path, packages in _written_packages(project.document.data, build.role):
                field = ".".join(map(str, path))
                if distro is None:
                    click.echo(f"{field}: a base override: mlc does not know its archive, nothing checked")
                    continue
                snapshot = (build.apt_snapshot.day, build.apt_snapshot.archives) if build.apt_snapshot else None
                urls = apt.indexes.distros[distro]
                check = check_image_packages(packages, distro, urls, snapshot, apt.distros.get(distro, {}), reader)
                for reason in check.unreachable:
                    click.echo(f"warning: unreachable: {reason}", err=True)
                found = len(packages) - len(check.problems)
                click.echo(f"{field}: {found} of {len(packages)} found in {check.checked_against}")
                for problem in check.problems:
                    at = (*path, problem.index)
                    position = project.document.source.value_position(at)
                    problems.append(error(problem.message, position, ".".join(map(str, at)), problem.hint))
        click.echo(render_diagnostics(problems), err=True, nl=False)
        failed = failed or bool(problems)
    sys.exit(ExitCode.INVALID if failed else ExitCode.OK)


def _written_packages(data: dict, role: str) -> list[tuple[tuple[str | int, ...], list[str]]]:
    """Where the spec writes `images.<role>.system_packages` (the base, each environment) and what."""
    found = []
    overlays = data.get("environments") if isinstance(data.get("environments"), dict) else {}
    places: list[tuple[tuple[str | int, ...], object]] = [((), data)]
    places += [(("environments", name), overlay) for name, overlay in overlays.items()]
    for prefix, section in places:
        images = section.get("images") if isinstance(section, dict) else None
        image = images.get(role) if isinstance(images, dict) else None
        packages = image.get("system_packages") if isinstance(image, dict) else None
        if isinstance(packages, list) and packages:
            found.append(((*prefix, "images", role, "system_packages"), [str(p) for p in packages]))
    return found


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("job", type=click.Choice(JOBS))
@click.option(
    "-f",
    "--file",
    "spec_path",
    type=click.Path(path_type=Path),
    default=Path("mlproject.yaml"),
    show_default=True,
    help="Spec file.",
)
@click.option(
    "--env",
    "environment",
    help="Environment (default: the spec without overlays, local paths as written: `local`).",
)
@click.option("--print-config", is_flag=True, help="Print the job's runtime config instead of running it.")
@click.argument("extra", nargs=-1, type=click.UNPROCESSED)
def run(job: str, spec_path: Path, environment: str | None, print_config: bool, extra: tuple[str, ...]) -> None:
    """Run a compiled job's command on this machine (MLflow on sqlite under .mlc/ by default).

    Extra arguments after JOB go to `mlc-runtime JOB` unchanged. `mlc run` becomes that command
    (exec): signals reach the runtime itself and its exit code is mlc run's.
    """
    import shutil

    from mlc.compiler.cli.local_run import local_command, local_runtime_config, write_local_config
    from mlc.compiler.cli.views import render_diagnostics
    from mlc.compiler.pipeline import resolve_spec_file
    from mlc.compiler.resolve.environment import resolve_local
    from mlc.compiler.resolve.runtime_config import config_json

    result = resolve_spec_file(spec_path, _display(spec_path))
    click.echo(render_diagnostics(result.diagnostics), err=True, nl=False)
    if not result.ok or result.project is None:
        sys.exit(ExitCode.INVALID)
    local = resolve_local(result.project, result.resolved)
    by_name = {local.environment: local} | {r.environment: r for r in result.resolved}
    if environment is not None and environment not in by_name:
        raise click.BadParameter(
            f"no environment {environment!r}; environments: {', '.join(by_name)}", param_hint="--env"
        )
    resolved = by_name[environment] if environment else local
    if print_config:
        click.echo(config_json(local_runtime_config(resolved, os.environ)), nl=False)
        return
    write_local_config(spec_path.parent, resolved, os.environ)
    command = [*local_command(job, resolved), *extra]
    click.echo(f"$ {' '.join(command)}", err=True)
    executable = shutil.which(command[0])
    if executable is None:
        click.echo("error: mlc-runtime is not installed (pip install 'mlc[runtime]')", err=True)
        sys.exit(ExitCode.INVALID)
    # Replace this process rather than wait on a child: a SIGTERM or Ctrl-C sent to `mlc run`
    # (a supervisor, a shell's `kill`) then stops the runtime itself instead of orphaning it.
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(spec_path.parent)
    os.execv(executable, command)
