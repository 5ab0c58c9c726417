"""Stage 6, apply: a `Plan` -> files on disk. The only stage that writes generated files.

Safety, in order:
- A plan with a conflict is refused whole (naming every path) unless `force`.
- A saved plan (`mlc apply PLANFILE`) is first checked whole, `check_plan_current`: every path
  it covers, unchanged ones included, must still hold what was planned, or nothing is written.
- Each path is re-read just before it is touched; if it no longer matches the plan's `before`,
  apply stops (the tree changed since the plan) instead of clobbering it.
- Each file is written atomically: a temp file in the same directory, fsync, `os.replace`,
  fsync of the directory. Deleted paths are pruned (with directories they leave empty).
- Before the first file, the journal `mlc.lock.intent` records every content this apply (and
  any earlier interrupted one) may leave; `mlc.lock` is written last, then the journal goes.
  A killed apply therefore leaves every file old or new, and the next plan shows the rest
  without mistaking mlc's own half-applied files for hand edits.

`MLC_APPLY_TEST_DELAY` (seconds, float) sleeps after each file is written. It exists only so
tests can kill an apply midway; it is read here and nowhere else.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mlc.compiler.errors import MlcError
from mlc.compiler.output_tree import (
    TEMP_SUFFIX,
    OutputTree,
    UnsafePathError,
    check_confined,
    fsync_directory,
    relative_to_cwd,
    write_atomically,
)
from mlc.compiler.plan.changes import Action, Change, Plan
from mlc.compiler.plan.lock import INTENT_FILENAME, LOCK_FILENAME, sha256_hex

TEST_DELAY_VARIABLE = "MLC_APPLY_TEST_DELAY"


class ApplyError(MlcError):
    """Apply stopped; the message names the path and what to do."""


class ConflictError(ApplyError):
    """The plan has conflicts (hand edits) and `--force` was not given; nothing was written."""

    def __init__(self, conflicts: list[tuple[Plan, Change]]) -> None:
        self.conflicts = conflicts
        names = "; ".join(f"{plan.spec}: {change.path}: {change.reason}" for plan, change in conflicts)
        super().__init__(
            f"refusing to apply, nothing was changed: {names}. Move the edit into mlproject.yaml, "
            "or rerun with --force to overwrite"
        )


class StalePlanError(ApplyError):
    """A path changed between plan and apply."""


@dataclass(frozen=True)
class ApplyResult:
    """What one apply did to one spec's tree."""

    plan: Plan
    written: tuple[str, ...]
    deleted: tuple[str, ...]


def check_conflicts(plans: Iterable[Plan], force: bool) -> None:
    """Raise `ConflictError` listing every conflict of every plan, unless `force`."""
    conflicts = [(plan, change) for plan in plans for change in plan.conflicts]
    if conflicts and not force:
        raise ConflictError(conflicts)


def apply_plan(plan: Plan, tree: OutputTree, force: bool = False) -> ApplyResult:
    """Make the tree match `plan`: write, prune, then write the lock. Raises `ApplyError`."""
    check_conflicts([plan], force)
    delay = float(os.environ.get(TEST_DELAY_VARIABLE, "0") or 0)
    written: list[str] = []
    deleted: list[str] = []
    _remove_stale_temp_files(tree, plan.changes)
    files = [c for c in plan.pending if c.path not in (LOCK_FILENAME, INTENT_FILENAME)]
    try:
        journal = check_confined(tree, INTENT_FILENAME)
        if files:
            write_atomically(journal, plan.intent)
    except (UnsafePathError, OSError) as exc:
        raise ApplyError(f"{INTENT_FILENAME}: {exc}; nothing was written") from None
    for change in [*files, *(c for c in plan.pending if c.path == LOCK_FILENAME)]:
        try:
            target = check_confined(tree, change.path)
            _check_not_stale(target, change)
            if change.after is not None:
                write_atomically(target, change.after)
                written.append(change.path)
            else:
                target.unlink()
                _remove_empty_parents(target.parent, tree.base_of(change.path))
                deleted.append(change.path)
        except (UnsafePathError, OSError) as exc:
            # The tree changed under us (a link, a permission): stop; each file is old or new.
            raise ApplyError(
                f"{change.path}: {exc}; apply stopped there, every file is old or new, `mlc plan` shows the rest"
            ) from None
        if delay:
            time.sleep(delay)
    if journal.exists():
        journal.unlink()
        fsync_directory(journal.parent)
    return ApplyResult(plan, tuple(written), tuple(deleted))


def check_plan_current(plan: Plan, tree: OutputTree) -> None:
    """Raise `StalePlanError` naming the first path of `plan` whose content is no longer what
    was planned: every path, the unchanged ones included, and the journal (which must stay
    absent unless the plan removes a left-over one). Reads only; used before a saved plan
    writes anything."""
    checked: set[Path] = set()
    changes = list(plan.changes)
    if not any(c.path == INTENT_FILENAME for c in changes):
        changes.append(Change(Action.UNCHANGED, INTENT_FILENAME, None, None))
    for change in changes:
        target = check_confined(tree, change.path, checked)
        now = _current_sha(target, change)
        if now != change.before_sha:
            raise StalePlanError(
                f"{relative_to_cwd(target)}: changed since the plan was made "
                f"(planned: {_describe(change.before_sha)}, now: {_describe(now)})"
            )


def plan_is_applied(plan: Plan, tree: OutputTree) -> bool:
    """True when every path of `plan` already holds its planned new content (and no journal
    is left): applying it again would change nothing."""
    for change in plan.changes:
        if change.path == INTENT_FILENAME:
            continue
        target = check_confined(tree, change.path)
        if target.is_symlink() or _current_sha(target, change) != change.after_sha:
            return False
    return not check_confined(tree, INTENT_FILENAME).exists()


def _check_not_stale(target: Path, change: Change) -> None:
    if _current_sha(target, change) != change.before_sha:
        raise StalePlanError(f"{target}: changed since it was planned; run `mlc plan` again")


def _current_sha(target: Path, change: Change) -> str | None:
    """The sha256 at `target` now, as the plan names it: None for absent, and for a link
    where the plan has a conflict (a link is planned as a conflict with no `before`)."""
    if target.is_symlink():
        return None if change.action is Action.CONFLICT else "link"
    try:
        return sha256_hex(target.read_bytes())
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        return "directory"


def _describe(sha: str | None) -> str:
    named = {None: "absent", "link": "a symbolic link", "directory": "a directory"}
    return named[sha] if sha in named else f"sha256:{sha[:12]}"


def _remove_empty_parents(directory: Path, base: Path) -> None:
    while directory != base and base in directory.parents:
        try:
            directory.rmdir()
        except OSError:  # not empty (or gone): stop
            return
        directory = directory.parent


def _remove_stale_temp_files(tree: OutputTree, changes: Iterable[Change]) -> None:
    # A killed apply can leave `.<name>.<random>.mlc-tmp` beside the file it was writing.
    names_by_directory: dict[Path, set[str]] = {}
    for change in changes:
        target = tree.locate(change.path)
        names_by_directory.setdefault(target.parent, set()).add(target.name)
    for directory, names in names_by_directory.items():
        if not directory.is_dir() or directory.is_symlink():
            continue
        for leftover in directory.glob(f".*{TEMP_SUFFIX}"):
            if any(leftover.name.startswith(f".{name}.") for name in names):
                leftover.unlink(missing_ok=True)
