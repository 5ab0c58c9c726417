"""The apply edge for many specs: check every plan, apply each, then optionally commit.

Conflicts are checked across all specs before anything is written, so a conflict in one spec
of a monorepo leaves every tree untouched.

Two ways in, one way to write: `mlc apply` plans now (`plan_specs`) and `mlc apply PLANFILE`
reads a saved plan (`plan_file`); both end in `apply_specs`. A saved plan is first checked
whole, every spec before any write (`apply_saved_plan`): its inputs, its repository top and
every path it covers must be as when it was made, otherwise `StalePlanError` and nothing
changes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlc.compiler.apply.writer import (
    ApplyError,
    ApplyResult,
    StalePlanError,
    apply_plan,
    check_conflicts,
    check_plan_current,
    plan_is_applied,
)
from mlc.compiler.output_tree import OutputTree, UnsafePathError, output_tree_for, relative_to_cwd
from mlc.compiler.plan.changes import Action, Plan
from mlc.compiler.plan.lock import LOCK_FILENAME, LockError, read_intent, read_lock
from mlc.compiler.plan.specs import PlanRun, SpecPlan, input_sha256

if TYPE_CHECKING:
    from mlc.compiler.plan.saved import SavedPlan, SavedSpec

STALE = "Saved plan is stale"


@dataclass(frozen=True)
class ApplyOutcome:
    """What `mlc apply` did across all specs."""

    results: list[ApplyResult]
    changed_paths: list[Path]  # on disk: written or deleted, the locks included
    commit: str | None = None

    @property
    def written(self) -> int:
        """Files written (locks included)."""
        return sum(len(r.written) for r in self.results)

    @property
    def deleted(self) -> int:
        """Files pruned."""
        return sum(len(r.deleted) for r in self.results)

    @property
    def unchanged(self) -> int:
        """Files already up to date."""
        return sum(r.plan.count(Action.UNCHANGED) for r in self.results)


def default_commit_message(plans: Sequence[Plan]) -> str:
    """`mlc: apply generated files (<project> sha256:<12 hex>)`, one body line per spec."""
    changed = [p for p in plans if p.pending] or list(plans)
    subject = ", ".join(f"{p.project} sha256:{p.spec_digest[:12]}" for p in changed[:3])
    if len(changed) > 3:
        subject += f" and {len(changed) - 3} more"
    body = "\n".join(f"- {p.spec}: spec sha256:{p.spec_digest}" for p in changed)
    return f"mlc: apply generated files ({subject})\n\n{body}\n"


def apply_specs(
    run: PlanRun,
    force: bool = False,
    commit: bool = False,
    message: str | None = None,
    identity: object | None = None,  # git_commit.Identity; typed loosely to keep git unimported
) -> ApplyOutcome:
    """Apply every spec's plan (refusing all on any conflict unless `force`); with `commit`,
    commit every generated path whose file differs from HEAD (`generated_paths`), and nothing
    else. Raises `ApplyError`."""
    if not run.ok:
        first = run.diagnostics[0].render().splitlines()[0]
        raise ApplyError(f"nothing applied: planning failed ({len(run.diagnostics)} problem(s); first: {first})")
    check_conflicts(run.plans, force)
    # Read before writing: the lock this apply replaces names files an interrupted apply may have pruned.
    generated = [generated_paths(spec) for spec in run.specs] if commit else []
    results = [apply_plan(spec.plan, spec.tree, force) for spec in run.specs]
    changed = [
        spec.tree.locate(path)
        for spec, result in zip(run.specs, results, strict=True)
        for path in (*result.written, *result.deleted)
    ]
    outcome = ApplyOutcome(results, changed)
    if not commit:
        return outcome
    from mlc.compiler.apply.git_commit import CommitError, commit_paths, repository_for

    # Not only what this run wrote: an earlier apply killed midway (or killed before its commit)
    # wrote files that are now up to date and so unchanged here, yet were never committed.
    covered = [spec.tree.locate(path) for spec, paths in zip(run.specs, generated, strict=True) for path in paths]
    try:
        repo = repository_for(run.specs[0].tree.root)
        sha = commit_paths(repo, covered, message or default_commit_message(run.plans), identity)  # type: ignore[arg-type]
    except CommitError as exc:
        raise ApplyError(f"files were written but not committed: {exc}") from None
    return ApplyOutcome(results, changed, sha)


def generated_paths(spec: SpecPlan) -> list[str]:
    """Every path mlc manages for one spec: what the plan covers, what the current lock and an
    interrupted apply's journal name (a file it pruned is absent from the plan), and the lock."""
    paths = {change.path for change in spec.plan.changes} | {LOCK_FILENAME}
    try:
        lock = read_lock(spec.tree.root)
        paths |= set(lock.files if lock else ()) | set(read_intent(spec.tree.root))
    except LockError:  # planning read them already; a lock that became unreadable since adds nothing
        pass
    return sorted(paths)


def apply_saved_plan(
    saved: SavedPlan,
    commit: bool = False,
    message: str | None = None,
    identity: object | None = None,
) -> ApplyOutcome:
    """Apply exactly a saved plan (no compiling), after checking every spec's inputs and
    paths are as when it was made; `force` is the plan's own. Raises `ApplyError`
    (`StalePlanError` naming the first difference, before anything is written)."""
    try:
        specs = [SpecPlan(s.plan, _saved_tree(s), ()) for s in saved.specs]
        try:
            for spec, saved_spec in zip(specs, saved.specs, strict=True):
                _check_inputs(saved_spec, spec.tree)
                check_plan_current(spec.plan, spec.tree)
        except StalePlanError as exc:
            pending = any(spec.plan.pending for spec in specs)
            if pending and all(plan_is_applied(spec.plan, spec.tree) for spec in specs):
                raise StalePlanError(
                    f"{STALE}: it was applied already (every file it writes has its new content); "
                    "run `mlc plan` to see what remains"
                ) from None
            raise StalePlanError(f"{STALE}: {exc}; run `mlc plan --out` again and review it") from None
    except UnsafePathError as exc:
        raise StalePlanError(f"{STALE}: {exc}") from None
    return apply_specs(PlanRun(specs), force=saved.force, commit=commit, message=message, identity=identity)


def _saved_tree(saved: SavedSpec) -> OutputTree:
    spec_path = Path(saved.plan.spec)
    if not spec_path.is_file():
        raise StalePlanError(
            f"{STALE}: {saved.plan.spec}: no such spec file here; run `mlc apply PLANFILE` "
            "in the directory `mlc plan --out` ran in"
        )
    tree = output_tree_for(spec_path)
    if Path(os.path.relpath(tree.repo_root, tree.root)).as_posix() != saved.repository_top:
        raise StalePlanError(
            f"{STALE}: {saved.plan.spec}: the git repository around it is not the one planned "
            f"(its top level is now {relative_to_cwd(tree.repo_root)}); run `mlc plan --out` again"
        )
    return tree


def _check_inputs(saved: SavedSpec, tree: OutputTree) -> None:
    for name, sha in sorted(saved.inputs.items()):
        path = tree.root / name
        now = input_sha256(path)
        if now != sha:
            state = "absent now" if now is None else "was absent" if sha is None else "other bytes"
            raise StalePlanError(f"{relative_to_cwd(path)}: changed since the plan was made ({state})")
