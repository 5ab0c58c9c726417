"""The plan edge: compile every spec in memory, read each output tree and lock, build the plans.

Shared by `mlc plan`, `mlc apply` and `mlc bot`. Stages are imported once, and the specs of a
monorepo are planned by workers forked from this process (`forked_map`), so planning many
specs costs little more than planning one. Nothing is written here.

Emit is skipped for a spec that is provably up to date: its lock's `inputs_digest` (spec data,
what was read beside it, and the compiler build: `fingerprint`) and pins match, no apply was
interrupted, and every locked file on disk has its locked sha256. Emit being deterministic, it
would reproduce those very bytes, so the files on disk stand in for the artifacts. Any
difference (a hand edit, a deleted file, a changed spec, images lock or compiler) compiles the
spec in full. With the validation cache (`cache`), even validating is skipped: a cached record
of the unchanged spec carries its `inputs_digest`, so planning an applied, unchanged spec loads
neither the validator nor a backend (`mlc plan` then costs what a cached `mlc validate` does).

Each spec plan also records the sha256 of the files compilation reads that decide the output
(`read_inputs`: the spec's bytes and `mlc.images.lock`), hashed *before* compiling: a saved
plan (`plan_file`) is stale once they differ, and a file edited during planning can only make
it stale, never make a stale plan look current.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from mlc.compiler.artifact import Artifact
from mlc.compiler.diagnostics import Diagnostic, error
from mlc.compiler.load.images_lock import IMAGES_LOCK_FILENAME
from mlc.compiler.output_tree import DiskFile, OutputTree, UnsafePathError, output_tree_for, read_disk_files
from mlc.compiler.pipeline import check_spec_file, resolve_spec_file, with_runtime_wheel
from mlc.compiler.plan.changes import Plan, build_plan
from mlc.compiler.plan.forked_map import map_forked
from mlc.compiler.plan.image_pins import ImagePin, effective_pins, pin_images
from mlc.compiler.plan.lock import (
    INTENT_FILENAME,
    LOCK_FILENAME,
    Lock,
    LockError,
    read_intent,
    read_lock,
    sha256_hex,
)
from mlc.compiler.validate.cache import ValidationRecord
from mlc.compiler.validate.secret_scan import token_kind

if TYPE_CHECKING:
    from mlc.compiler.resolve.resolved import ResolvedSpec


@dataclass(frozen=True)
class SpecPlan:
    """One spec's plan and the tree it applies to."""

    plan: Plan
    tree: OutputTree
    environments: tuple[str, ...]
    inputs: Mapping[str, str | None] = field(default_factory=dict)  # `read_inputs` before compiling


@dataclass(frozen=True)
class PlanRun:
    """The plans of every spec, or the diagnostics that stopped them (then nothing is applied)."""

    specs: list[SpecPlan] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every spec compiled and was planned."""
        return not self.diagnostics

    @property
    def plans(self) -> list[Plan]:
        """The plans, in spec order."""
        return [s.plan for s in self.specs]


def plan_specs(
    spec_paths: Sequence[Path],
    display: Callable[[Path], str],
    pins: Sequence[ImagePin] = (),
    cache: Path | None = None,
) -> PlanRun:
    """Compile and plan every spec; any failure is a diagnostic and no plan is usable then.

    `cache` is the validation cache's directory (`validate.cache.cache_directory`; None: plan
    without it).
    """
    specs: list[SpecPlan] = []
    diagnostics: list[Diagnostic] = []
    used_pins: set[ImagePin] = set()
    for outcome in map_forked(lambda path: _plan_spec(path, display, pins, cache), spec_paths):
        diagnostics.extend(outcome.diagnostics)
        if outcome.spec is not None:
            specs.append(outcome.spec)
            used_pins.update(outcome.used_pins)
    diagnostics.extend(_shared_paths(specs))
    for pin in pins:
        if pin not in used_pins:
            diagnostics.append(
                error(
                    f"--image {pin.role}={pin.reference}: no spec builds the {pin.role} image {pin.repository}",
                    hint=f"the repository must be `<images.registry>/<metadata.name>-{pin.role}`",
                )
            )
    return PlanRun(specs, diagnostics)


@dataclass(frozen=True)
class _SpecOutcome:
    """What planning one spec gave: its plan and the pins it used, or its diagnostics."""

    spec: SpecPlan | None
    used_pins: tuple[ImagePin, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()


def _plan_spec(
    spec_path: Path, display: Callable[[Path], str], pins: Sequence[ImagePin], cache: Path | None
) -> _SpecOutcome:
    inputs = read_inputs(spec_path)  # before compiling: a saved plan must not outlive them
    checked = check_spec_file(spec_path, display(spec_path), cache)
    if checked.record is None:
        return _SpecOutcome(None, diagnostics=checked.diagnostics)
    wheel = _missing_runtime_wheel(checked.record)
    if wheel is not None:  # the artifacts check the sha256 of the wheel apply will write
        checked = with_runtime_wheel(checked, spec_path, display(spec_path), _running_wheel()[1])
        if checked.record is None:
            return _SpecOutcome(None, diagnostics=checked.diagnostics)

    def emit() -> list[Artifact]:
        # Only when the locked files cannot stand in for the artifacts. A cache hit validated
        # nothing, so the spec is resolved here; it was valid a moment ago when cached.
        result = checked.result if checked.result is not None else resolve_spec_file(spec_path, display(spec_path))
        if not result.ok:
            raise _InvalidNow(result.diagnostics)
        artifacts = _emit(result.resolved)
        leaks = [
            error(f"{artifact.path}: would carry {kind}; nothing is written", hint="report this: mlc compiled it in")
            for artifact in artifacts
            if (kind := token_kind(artifact.content.decode("utf-8", "replace")))
        ]
        if leaks:
            raise _InvalidNow(leaks)
        return artifacts

    try:
        spec_plan, used = _plan_record(checked.record, spec_path, display, pins, emit, wheel)
    except (LockError, UnsafePathError) as exc:
        return _SpecOutcome(None, diagnostics=(error(str(exc)),))
    except _InvalidNow as invalid:
        return _SpecOutcome(None, diagnostics=invalid.diagnostics)
    return _SpecOutcome(replace(spec_plan, inputs=inputs), tuple(used))


class _InvalidNow(Exception):
    """The spec changed after its cached validation and is invalid now: report as validating does."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        super().__init__()
        self.diagnostics = tuple(diagnostics)


def _emit(environments: Sequence[ResolvedSpec]) -> list[Artifact]:
    from mlc.compiler.backends import emit_project

    return emit_project(environments)


_RUNTIME_WHEEL_REASON = "this mlc's own wheel, which the images and CI install (not locked: `mlc vendor` rewrites it)"


def _runtime_wheel_reason(folder: Path, wheel: str) -> str:
    """What the planned wheel is, and which wheels of other mlc versions beside it nothing
    installs any more (after an upgrade): never locked, so apply leaves them to the user."""
    path = PurePosixPath(wheel)
    others = sorted(
        (path.parent / other.name).as_posix()
        for other in (folder / path.parent).glob("mlc-*-py3-none-any.whl")
        if other.name != path.name
    )
    if not others:
        return _RUNTIME_WHEEL_REASON
    return f"{_RUNTIME_WHEEL_REASON}; nothing installs {', '.join(others)} any more: delete it"


def _missing_runtime_wheel(record: ValidationRecord) -> Artifact | None:
    """The running compiler's wheel, where the spec installs mlc from a wheel in the repository
    that is not there yet (a project that never ran `mlc vendor`, or a new mlc version, whose
    wheel has a new name): planned as a file to create, outside the lock, so the images build."""
    if record.missing_runtime_wheel is None:
        return None
    return Artifact(record.missing_runtime_wheel, _running_wheel()[0], "mlc vendor")


@functools.cache
def _running_wheel() -> tuple[bytes, str]:
    """The running compiler's wheel and its sha256 hex, built once a process (a monorepo's specs
    without one all plan the same wheel)."""
    from mlc.compiler import __version__
    from mlc.compiler.plan.runtime_wheel import wheel_bytes

    content = wheel_bytes(__version__)
    return content, sha256_hex(content)


def read_inputs(spec_path: Path) -> dict[str, str | None]:
    """sha256 hex of the files beside the spec that decide what it compiles to, by name
    relative to its folder: the spec itself and `mlc.images.lock` (None: absent)."""
    return {path.name: input_sha256(path) for path in (spec_path, spec_path.parent / IMAGES_LOCK_FILENAME)}


def input_sha256(path: Path) -> str | None:
    """sha256 hex of an input file's bytes; None when absent or not a readable file (which
    compiling reads as absent too)."""
    try:
        return sha256_hex(path.read_bytes())
    except OSError:
        return None


def _plan_record(
    record: ValidationRecord,
    spec_path: Path,
    display: Callable[[Path], str],
    pins: Sequence[ImagePin],
    emit: Callable[[], list[Artifact]],
    runtime_wheel: Artifact | None = None,
) -> tuple[SpecPlan, list[ImagePin]]:
    """The spec's plan against its tree and lock. The locked files stand in for the artifacts
    when they are provably what emit would write; only otherwise is `emit` called.
    `runtime_wheel` is planned too, but not locked: `mlc vendor` may rewrite it, and a later
    plan must neither prune it nor call it a hand edit."""
    tree = output_tree_for(spec_path)
    lock = read_lock(tree.root)
    intent = read_intent(tree.root)
    repositories = {role: set(repos) for role, repos in record.image_repositories.items()}
    image_pins = effective_pins(repositories, lock.images if lock else {}, pins)
    paths = set(lock.files if lock else ()) | set(intent) | {LOCK_FILENAME, INTENT_FILENAME}
    on_disk = read_disk_files(tree, sorted(paths | ({runtime_wheel.path} if runtime_wheel else set())))
    artifacts = _files_known_up_to_date(lock, intent, record.inputs_digest, image_pins, on_disk)
    if artifacts is None:
        artifacts = pin_images(emit(), image_pins)
        on_disk.update(read_disk_files(tree, sorted({a.path for a in artifacts} - paths)))
    new_lock = Lock(
        compiler_version=record.compiler_version,
        spec_digest=record.spec_digest,
        files={a.path: _sha(a, on_disk) for a in artifacts},
        images=image_pins,
        inputs_digest=record.inputs_digest,
    )
    plan = build_plan(
        spec=display(spec_path),
        project=record.project,
        artifacts=[*artifacts, *([runtime_wheel] if runtime_wheel else [])],
        on_disk=on_disk,
        lock=lock,
        new_lock=new_lock,
        intent=intent,
    )
    if runtime_wheel is not None:
        changes = tuple(
            replace(c, reason=_runtime_wheel_reason(spec_path.parent, runtime_wheel.path))
            if c.path == runtime_wheel.path and not c.reason
            else c
            for c in plan.changes
        )
        plan = replace(plan, changes=changes, runtime_wheel=runtime_wheel.path)
    used = [pin for pin in pins if pin.repository in repositories.get(pin.role, set())]
    return SpecPlan(plan, tree, record.environments), used


def _files_known_up_to_date(
    lock: Lock | None,
    intent: dict[str, frozenset[str]],
    inputs: str,
    pins: dict[str, str],
    on_disk: dict[str, DiskFile],
) -> list[Artifact] | None:
    """The locked files as artifacts when emit would provably reproduce them, else None."""
    if lock is None or intent or lock.inputs_digest != inputs or dict(lock.images) != pins:
        return None
    artifacts = []
    for path, sha in lock.files.items():
        disk = on_disk[path]
        if disk.content is None or disk.sha != sha:
            return None
        artifacts.append(Artifact(path, disk.content, "mlc.lock"))
    return artifacts


def _sha(artifact: Artifact, on_disk: dict[str, DiskFile]) -> str:
    disk = on_disk.get(artifact.path)
    if disk is not None and disk.content is artifact.content and disk.sha is not None:
        return disk.sha  # the file on disk stands in for the artifact: hashed already
    return sha256_hex(artifact.content)


def _shared_paths(specs: Sequence[SpecPlan]) -> list[Diagnostic]:
    # Two specs of a monorepo writing one file (e.g. the same workflow name at the repo top)
    # would overwrite each other on every apply.
    owners: dict[Path, str] = {}
    found: list[Diagnostic] = []
    for spec in specs:
        for change in spec.plan.changes:
            target = spec.tree.locate(change.path)
            if change.after_sha is None:
                continue
            if target in owners and owners[target] != spec.plan.spec:
                found.append(
                    error(
                        f"{target}: generated by both {owners[target]} and {spec.plan.spec}",
                        hint="give the projects distinct names, or plan them from separate repos",
                    )
                )
            owners.setdefault(target, spec.plan.spec)
    return found
