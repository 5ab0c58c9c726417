"""`mlc bot`: the CI loop for pull requests. Plan; if there are changes, apply, commit as the
bot and push to the pull request's branch; report either way.

Outcomes (the process exit code; the workflow branches on it):

| code | outcome      | meaning                                                              |
| ---- | ------------ | -------------------------------------------------------------------- |
| 0    | `up_to_date` | generated files match the spec; nothing committed                    |
| 1    | `error`      | invalid spec, a conflict (hand-edited generated file), a failed push, |
|      |              | or HEAD is not the pull request's head commit                        |
| 2    | `pushed`     | changes applied, committed and pushed to the PR branch (a new run   |
|      |              | will follow for the new commit; this one can stop)                   |
| 3    | `reported`   | changes found but not pushed: the PR comes from a fork (or no branch |
|      |              | is known); the comment asks the author to run `mlc apply`            |

The pull request is read from the GitHub event (`$GITHUB_EVENT_PATH`): the head branch, the
head commit, and whether head and base are the same repository. Fork branches are never
pushed to. The checkout must be the PR's head branch (`actions/checkout` with
`ref: ${{ github.head_ref }}` or the head sha), not the merge commit: HEAD must equal the
event's head sha. When the branch moved since (in a monorepo, another project's bot pushed to
the same pull request), the commit is rebased onto it before pushing (`git_commit.push_head`).
Commits are by the workflow's `GIT_AUTHOR_NAME`/`GIT_AUTHOR_EMAIL` when set, else
`mlc-bot <mlc-bot@users.noreply.github.com>`. The comment body starts with `<!-- mlc-plan -->`;
the workflow updates one comment per project in place (its marker line goes first).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import IntEnum
from pathlib import Path
from typing import Any

from mlc.compiler.apply.writer import ApplyError
from mlc.compiler.errors import ExitCode
from mlc.compiler.plan.specs import PlanRun

BOT_NAME = "mlc-bot"
BOT_EMAIL = "mlc-bot@users.noreply.github.com"


class BotOutcome(IntEnum):
    """What the bot did; the value is the exit code (`errors.ExitCode`)."""

    UP_TO_DATE = ExitCode.OK
    ERROR = ExitCode.INVALID
    PUSHED = ExitCode.PUSHED
    REPORTED = ExitCode.REPORTED


@dataclass(frozen=True)
class PullRequest:
    """The facts about the pull request the bot needs."""

    branch: str | None
    head_sha: str | None
    same_repository: bool


@dataclass(frozen=True)
class BotReport:
    """The outcome and one markdown sentence saying what happened."""

    outcome: BotOutcome
    note: str
    commit: str | None = None


def pull_request_from_event(event: Mapping[str, Any], head_ref: str | None = None) -> PullRequest:
    """The pull request of a GitHub event payload (`pull_request` events); `head_ref` is used
    when the event has none (e.g. `GITHUB_HEAD_REF`, or `--branch`)."""
    pull = event.get("pull_request") or {}
    head, base = pull.get("head") or {}, pull.get("base") or {}
    head_repo = (head.get("repo") or {}).get("full_name")
    base_repo = (base.get("repo") or {}).get("full_name")
    same = head_repo is not None and head_repo == base_repo if pull else head_ref is not None
    return PullRequest(head.get("ref") or head_ref, head.get("sha"), same)


def read_pull_request(event_path: str | None, head_ref: str | None, branch: str | None = None) -> PullRequest:
    """The pull request of the event file at `event_path` (absent: only `head_ref`); `branch`
    (`--branch`) overrides the branch pushed to, never the fork check."""
    event: dict[str, Any] = {}
    if event_path and Path(event_path).is_file():
        event = json.loads(Path(event_path).read_text(encoding="utf-8"))
    pull = pull_request_from_event(event, branch or head_ref)
    return replace(pull, branch=branch) if branch else pull


def bot_identity(environ: Mapping[str, str]) -> tuple[str, str]:
    """Who the bot commits as: the workflow's `GIT_AUTHOR_NAME`/`_EMAIL` when set, else mlc-bot."""
    return environ.get("GIT_AUTHOR_NAME") or BOT_NAME, environ.get("GIT_AUTHOR_EMAIL") or BOT_EMAIL


def run_bot(
    run: PlanRun,
    pull: PullRequest,
    remote: str = "origin",
    identity: tuple[str, str] = (BOT_NAME, BOT_EMAIL),
) -> BotReport:
    """Apply, commit and push the plan's changes when that is safe; report what happened."""
    if not any(plan.pending for plan in run.plans):
        return BotReport(BotOutcome.UP_TO_DATE, "Generated files are up to date.")
    if any(plan.conflicts for plan in run.plans):
        return BotReport(
            BotOutcome.ERROR,
            "Not applied: generated files were edited by hand (conflicts above). Move the edits "
            "into `mlproject.yaml`, or run `mlc apply --force` and push.",
        )
    if not pull.same_repository or not pull.branch:
        return BotReport(
            BotOutcome.REPORTED,
            "Not pushed: this pull request comes from a fork (or its branch is unknown). "
            "Run `mlc apply` and push the generated files.",
        )
    from mlc.compiler.apply.git_commit import CommitError, Identity, push_head, repository_for
    from mlc.compiler.apply.specs import apply_specs, default_commit_message

    try:
        repo = repository_for(run.specs[0].tree.root)
        if pull.head_sha and repo.head.commit.hexsha != pull.head_sha:
            return BotReport(
                BotOutcome.ERROR,
                f"Not applied: HEAD is not the pull request's head commit {pull.head_sha[:12]}; "
                "check out the branch (`actions/checkout` with `ref: ${{ github.head_ref }}`).",
            )
        message = default_commit_message(run.plans)
        outcome = apply_specs(run, commit=True, message=message, identity=Identity(*identity))
        if outcome.commit is None:
            return BotReport(BotOutcome.UP_TO_DATE, "Generated files are up to date.")
        # Rebased first when the branch moved (another project's bot in a monorepo).
        pushed = push_head(repo, remote, pull.branch, Identity(*identity))
    except (ApplyError, CommitError) as exc:
        return BotReport(BotOutcome.ERROR, f"Failed: {exc}")
    return BotReport(
        BotOutcome.PUSHED,
        f"Committed the generated files as `{pushed[:12]}` and pushed to `{pull.branch}`.",
        pushed,
    )
