"""The apply edge for many specs: check every plan, apply each, then optionally commit.

Conflicts are checked across all specs before anything is written, so a conflict in one spec
of a monorepo leaves every tree untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlc.compiler.apply import ApplyError, ApplyResult, apply_plan, check_conflicts
from mlc.compiler.plan import Action, Plan
from mlc.compiler.plan_specs import PlanRun


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
    commit exactly the changed paths. Raises `ApplyError`."""
    check_conflicts(run.plans, force)
    results = [apply_plan(spec.plan, spec.tree, force) for spec in run.specs]
    changed = [
        spec.tree.locate(path)
        for spec, result in zip(run.specs, results, strict=True)
        for path in (*result.written, *result.deleted)
    ]
    outcome = ApplyOutcome(results, changed)
    if not commit or not changed:
        return outcome
    from mlc.compiler.git_commit import CommitError, commit_paths, repository_for

    try:
        repo = repository_for(run.specs[0].tree.root)
        sha = commit_paths(repo, changed, message or default_commit_message(run.plans), identity)  # type: ignore[arg-type]
    except CommitError as exc:
        raise ApplyError(f"files were written but not committed: {exc}") from None
    return ApplyOutcome(results, changed, sha)
