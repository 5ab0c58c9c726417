"""The plan edge: compile every spec in memory, read each output tree and lock, build the plans.

Shared by `mlc plan`, `mlc apply` and `mlc bot`. Everything runs in one process (stages are
imported once), so planning many specs of a monorepo costs little more than planning one.
Nothing is written here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mlc.compiler.artifact import Artifact
from mlc.compiler.diagnostics import Diagnostic, error
from mlc.compiler.image_pins import ImagePin, effective_pins, pin_images
from mlc.compiler.lock import (
    INTENT_FILENAME,
    LOCK_FILENAME,
    Lock,
    LockError,
    read_intent,
    read_lock,
    sha256_hex,
)
from mlc.compiler.output_tree import OutputTree, UnsafePathError, output_tree_for, read_disk_files
from mlc.compiler.pipeline import ProjectResult, compile_spec_file
from mlc.compiler.plan import Plan, build_plan
from mlc.compiler.resolve import ResolvedSpec


@dataclass(frozen=True)
class SpecPlan:
    """One spec's plan and the tree it applies to."""

    plan: Plan
    tree: OutputTree
    environments: tuple[str, ...]


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
) -> PlanRun:
    """Compile and plan every spec; any failure is a diagnostic and no plan is usable then."""
    specs: list[SpecPlan] = []
    diagnostics: list[Diagnostic] = []
    used_pins: set[ImagePin] = set()
    for spec_path in spec_paths:
        compiled = compile_spec_file(spec_path, display(spec_path))
        if not compiled.ok:
            diagnostics.extend(compiled.result.diagnostics)
            continue
        try:
            spec_plan, used = _plan_compiled(compiled.result, compiled.artifacts, display, pins)
        except (LockError, UnsafePathError) as exc:
            diagnostics.append(error(str(exc)))
            continue
        specs.append(spec_plan)
        used_pins.update(used)
    for pin in pins:
        if pin not in used_pins:
            diagnostics.append(
                error(
                    f"--image {pin.role}={pin.reference}: no spec builds the {pin.role} image "
                    f"{pin.repository}",
                    hint=f"the repository must be `<images.registry>/<metadata.name>-{pin.role}`",
                )
            )
    return PlanRun(specs, diagnostics)


def _plan_compiled(
    result: ProjectResult,
    artifacts: list[Artifact],
    display: Callable[[Path], str],
    pins: Sequence[ImagePin],
) -> tuple[SpecPlan, list[ImagePin]]:
    tree = output_tree_for(result.spec_path)
    lock = read_lock(tree.root)
    first: ResolvedSpec = result.resolved[0]
    repositories = _image_repositories(result.resolved)
    image_pins = effective_pins(repositories, lock.images if lock else {}, pins)
    artifacts = pin_images(artifacts, image_pins)
    new_lock = Lock(
        compiler_version=first.compiler_version,
        spec_digest=first.spec_digest,
        files={a.path: sha256_hex(a.content) for a in artifacts},
        images=image_pins,
    )
    intent = read_intent(tree.root)
    paths = {a.path for a in artifacts} | set(lock.files if lock else ()) | set(intent)
    paths |= {LOCK_FILENAME, INTENT_FILENAME}
    plan = build_plan(
        spec=display(result.spec_path),
        project=first.name,
        artifacts=artifacts,
        on_disk=read_disk_files(tree, sorted(paths)),
        lock=lock,
        new_lock=new_lock,
        intent=intent,
    )
    used = [pin for pin in pins if pin.repository in repositories.get(pin.role, set())]
    return SpecPlan(plan, tree, tuple(r.environment for r in result.resolved)), used


def _image_repositories(environments: Sequence[ResolvedSpec]) -> dict[str, set[str]]:
    repositories: dict[str, set[str]] = {"train": set(), "serve": set()}
    for env in environments:
        if env.train_image:
            repositories["train"].add(env.train_image)
        if env.serve_image:
            repositories["serve"].add(env.serve_image)
    return repositories
