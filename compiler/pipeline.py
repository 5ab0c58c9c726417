"""The compiler pipeline end to end: load -> validate -> resolve (-> emit, in `compile_spec_file`).

Library entry points used by the CLI, the plan stage and tests; they return diagnostics, never
print. The stages are imported inside the functions that run them: `check_spec_file` answers
an unchanged spec from the validation cache without loading pydantic, PyYAML or any backend.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from mlc.compiler.artifact import Artifact
from mlc.compiler.diagnostics import Diagnostic, error, has_errors, sorted_unique

# Re-exported: spec discovery lives in a module of its own, cheap to import (see load.discovery).
from mlc.compiler.load.discovery import SPEC_FILENAME as SPEC_FILENAME
from mlc.compiler.load.discovery import discover_specs as discover_specs
from mlc.compiler.load.file_probes import FileProbes
from mlc.compiler.validate.cache import ValidationRecord

if TYPE_CHECKING:
    from mlc.compiler.resolve.resolved import ResolvedSpec
    from mlc.compiler.validate.project import ValidatedProject


@dataclass(frozen=True)
class ProjectResult:
    """The outcome of loading one spec: its resolved environments, or why there are none."""

    spec_path: Path
    project: ValidatedProject | None
    resolved: list[ResolvedSpec] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the spec loaded, validated and resolved without errors."""
        return self.project is not None and not has_errors(self.diagnostics)


def resolve_spec_file(spec_path: Path, display: str | None = None, files: FileProbes | None = None) -> ProjectResult:
    """Load, validate and resolve the spec at `spec_path`; file paths are relative to its folder.

    Every file around the spec is read through `files` (see `file_probes`): after the call it
    holds each filesystem fact the result depended on, apart from the spec's own bytes.
    """
    from mlc.compiler.load.document import read_spec
    from mlc.compiler.resolve.environment import resolve_project
    from mlc.compiler.validate.project import validate_document

    files = files if files is not None else FileProbes()
    document, diagnostics = read_spec(spec_path, display)
    if document is None:
        return ProjectResult(spec_path, None, [], sorted_unique(diagnostics))
    project, more = validate_document(document, root=spec_path.parent, files=files)
    diagnostics = sorted_unique([*diagnostics, *more])
    if project is None:
        return ProjectResult(spec_path, None, [], diagnostics)
    digests, lock_problems = _read_images_lock(spec_path.parent, files)
    folder, folder_problems = _repository_folder(spec_path, files)
    if lock_problems or folder_problems:
        return ProjectResult(spec_path, None, [], sorted_unique([*diagnostics, *lock_problems, *folder_problems]))
    return ProjectResult(spec_path, project, resolve_project(project, digests, folder), diagnostics)


def _repository_folder(spec_path: Path, files: FileProbes) -> tuple[str, list[Diagnostic]]:
    """The spec's folder relative to its git top level ("." at the top or outside git): the CI
    workflows GitHub reads at the top run their steps there."""
    from mlc.compiler.output_tree import output_tree_for

    folder = output_tree_for(spec_path, files).folder
    if any(unicodedata.category(character) == "Cc" for character in folder):
        message = f"{folder!r}: the spec's folder has a control character in its path in the repository"
        return ".", [error(message, hint="rename the folder: CI workflows cannot run in it or filter on it")]
    return folder, []


def _read_images_lock(root: Path, files: FileProbes) -> tuple[dict[str, str], list[Diagnostic]]:
    """Base image digests pinned by `mlc images lock` (none when there is no lock)."""
    from mlc.compiler.load.images_lock import IMAGES_LOCK_FILENAME, ImagesLockError, parse_images_lock

    path = root / IMAGES_LOCK_FILENAME
    if not files.is_file(path):
        return {}, []
    contents = files.read_bytes(path)
    try:
        if contents is None:
            raise ImagesLockError("cannot read it")
        return parse_images_lock(contents.decode("utf-8"), path), []
    except (ImagesLockError, ValueError, KeyError, TypeError) as exc:
        return {}, [error(f"{path.name}: unreadable images lock ({exc})", hint="re-create it with `mlc images lock`")]


@dataclass(frozen=True)
class CompiledProject:
    """Every artifact of one spec, compiled in memory (nothing written), or the diagnostics."""

    result: ProjectResult
    artifacts: list[Artifact] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the spec compiled; `artifacts` is then complete."""
        return self.result.ok


def compile_spec_file(spec_path: Path, display: str | None = None) -> CompiledProject:
    """Load, validate, resolve and emit one spec. Artifact paths are relative to its folder."""
    from mlc.compiler.backends import emit_project

    result = resolve_spec_file(spec_path, display)
    if not result.ok:
        return CompiledProject(result)
    return CompiledProject(result, emit_project(result.resolved))


@dataclass(frozen=True)
class CheckedSpec:
    """A spec's validation outcome: from the cache (`record` only) or fresh (`result` too)."""

    record: ValidationRecord | None  # set when the spec is valid
    result: ProjectResult | None = None  # set when it was validated now
    diagnostics: tuple[Diagnostic, ...] = ()  # errors and warnings (a cached record: its warnings)

    @property
    def ok(self) -> bool:
        """True when the spec is valid."""
        return self.record is not None


def validation_record(result: ProjectResult) -> ValidationRecord:
    """What a successful validation established, as the cache stores it (see `validate.cache`)."""
    from mlc.compiler.backends import BACKEND_MODULES
    from mlc.compiler.fingerprint import inputs_digest
    from mlc.compiler.resolve.environment import edge_inputs

    first = result.resolved[0]
    assert result.project is not None  # a resolved result has its project
    wheel = result.project.base.images.runtime.wheel_path()
    repositories: dict[str, set[str]] = {"train": set(), "serve": set()}
    for resolved in result.resolved:
        for role, repository in (("train", resolved.train_image), ("serve", resolved.serve_image)):
            if repository is not None:
                repositories[role].add(repository)
    return ValidationRecord(
        project=first.name,
        environments=tuple(r.environment for r in result.resolved),
        warnings=tuple(result.diagnostics),
        spec_digest=first.spec_digest,
        compiler_version=first.compiler_version,
        inputs_digest=inputs_digest(first.spec_digest, edge_inputs(first), BACKEND_MODULES),
        image_repositories={role: tuple(sorted(repos)) for role, repos in repositories.items()},
        missing_runtime_wheel=wheel if wheel is not None and result.project.runtime_wheel_sha256 is None else None,
    )


def check_spec_file(spec_path: Path, display: str, cache: Path | None) -> CheckedSpec:
    """Validate the spec, through the validation cache at `cache` (None: without it).

    A hit answers with the stored record without loading the validator; a miss validates, and
    stores the record when the spec is valid and was not edited meanwhile.
    """
    from mlc.compiler.validate import cache as validation_cache

    spec_bytes = validation_cache.spec_bytes(spec_path) if cache is not None else None
    key = validation_cache.cache_key(spec_path, display, spec_bytes) if spec_bytes is not None else None
    if cache is not None and key is not None:
        record = validation_cache.lookup(cache, key)
        if record is not None:
            return CheckedSpec(record, None, record.warnings)
    files = FileProbes()
    result = resolve_spec_file(spec_path, display, files)
    if not result.ok:
        return CheckedSpec(None, result, tuple(result.diagnostics))
    record = validation_record(result)
    # Store only what is still true: a spec edited while it was validated is left for next time.
    if cache is not None and key is not None and validation_cache.spec_bytes(spec_path) == spec_bytes:
        validation_cache.store(cache, key, files.probes(), record)
    return CheckedSpec(record, result, tuple(result.diagnostics))


def with_runtime_wheel(checked: CheckedSpec, spec_path: Path, display: str, sha256: str) -> CheckedSpec:
    """`checked` (valid, its runtime wheel missing) as if the wheel were there with `sha256`: the
    wheel apply is about to write (the outcome is never cached: it holds for that wheel, not for
    the files on disk). A fresh validation is re-resolved only (validating is the cost of
    planning a monorepo's specs); a cached record is validated again, without the cache."""
    from mlc.compiler.resolve.environment import resolve_project

    if checked.result is None:
        checked = check_spec_file(spec_path, display, None)
    result = checked.result
    if result is None or result.project is None:  # invalid now: edited since it was cached
        return checked
    project = replace(result.project, runtime_wheel_sha256=sha256)
    first = result.resolved[0]
    resolved = resolve_project(project, first.base_image_digests, first.repository_folder)
    result = replace(result, project=project, resolved=resolved)
    return CheckedSpec(validation_record(result), result, checked.diagnostics)


def requirements_path(spec_path: Path) -> str:
    """The spec's `code.requirements` as written (its default when absent): where `mlc lock` writes.

    Read before validation, which fails while the lock does not exist yet.
    """
    from mlc.compiler.load.document import read_spec
    from mlc.compiler.load.spec import Code

    document, _ = read_spec(spec_path)
    code = document.data.get("code") if document is not None else None
    value = code.get("requirements") if isinstance(code, dict) else None
    return value if isinstance(value, str) and value else str(Code.model_fields["requirements"].default)
