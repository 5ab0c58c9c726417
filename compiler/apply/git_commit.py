"""Committing generated files with gitpython: exactly the given paths, nothing else.

`git commit --only -- PATHS` builds a temporary index from HEAD plus the working-tree state of
PATHS, commits it, and then updates only those entries of the real index. Other staged and
unstaged changes stay exactly as they were. Imported only by `apply --commit` and the bot, so
`mlc plan` never loads gitpython.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import git

from mlc.compiler.errors import MlcError


class CommitError(MlcError):
    """The commit could not be made (not a repository, git refused); the message says why."""


@dataclass(frozen=True)
class Identity:
    """Who a commit is by (author and committer)."""

    name: str
    email: str


def repository_for(path: Path) -> git.Repo:
    """The git repository containing `path`; raises `CommitError` outside one."""
    try:
        return git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise CommitError(f"{path} is not inside a git repository") from None


def commit_paths(repo: git.Repo, paths: Sequence[Path], message: str, identity: Identity | None = None) -> str | None:
    """Commit the working-tree state of `paths` (created, updated or deleted) and nothing
    else; returns the new commit's sha, or None when they already match HEAD."""
    top = Path(repo.working_tree_dir or ".").resolve()
    relative = sorted({os.path.relpath(Path(p).resolve(), top) for p in paths})
    if any(r.startswith("..") for r in relative):
        raise CommitError(f"paths outside the repository {top}: {[r for r in relative if r.startswith('..')]}")
    tracked = set(repo.git.ls_files("-z", "--", *relative).split("\0")) if relative else set()
    # A path that never reached git and is gone again has nothing to commit.
    existing = [r for r in relative if (top / r).exists() or r in tracked]
    if not existing:
        return None
    env = _identity_env(identity)
    try:
        repo.git.add("-A", "--", *existing)
        if repo.head.is_valid() and not repo.git.diff("--cached", "--name-only", "HEAD", "--", *existing):
            return None
        repo.git.commit("--only", "--no-verify", "-m", message, "--", *existing, env=env)
    except git.GitCommandError as exc:
        raise CommitError(f"git commit failed: {exc.stderr.strip() or exc}") from None
    return repo.head.commit.hexsha


def _identity_env(identity: Identity | None) -> dict[str, str]:
    if identity is None:
        return {}
    return {
        "GIT_AUTHOR_NAME": identity.name,
        "GIT_AUTHOR_EMAIL": identity.email,
        "GIT_COMMITTER_NAME": identity.name,
        "GIT_COMMITTER_EMAIL": identity.email,
    }


PUSH_ATTEMPTS = 3
_REFUSED = ("[rejected]", "non-fast-forward", "fetch first")


def push_head(repo: git.Repo, remote: str, branch: str, identity: Identity | None = None) -> str:
    """Push HEAD to `branch` on `remote` (fast-forward only); returns the sha pushed, raises
    `CommitError`.

    When the push is refused because the branch moved since HEAD's base was checked out (in a
    monorepo, another project's bot pushed to the same pull request), HEAD's own commits are
    rebased onto the branch's new tip (as `identity`) and pushed again, up to `PUSH_ATTEMPTS`
    times. They hold only generated files of their spec, so a rebase that stops on a conflict
    means someone else changed them: it is aborted and reported.
    """
    try:
        repo.git.check_ref_format("--branch", branch)
    except git.GitCommandError:
        raise CommitError(f"{branch!r} is not a valid branch name") from None
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        try:
            repo.git.push(remote, f"HEAD:refs/heads/{branch}")
            return repo.head.commit.hexsha
        except git.GitCommandError as exc:
            reason = str(exc.stderr).strip() or str(exc)
            if attempt == PUSH_ATTEMPTS or not any(marker in reason for marker in _REFUSED):
                raise CommitError(f"git push to {remote} {branch} failed: {reason}") from None
        try:
            repo.git.fetch(remote, f"refs/heads/{branch}")
            repo.git.rebase("FETCH_HEAD", env=_identity_env(identity))
        except git.GitCommandError as exc:
            reason = str(exc.stderr).strip() or str(exc)
            if _rebasing(repo):
                repo.git.rebase("--abort")
            raise CommitError(f"{branch} on {remote} moved, and the commit does not rebase onto it: {reason}") from None
    raise AssertionError("unreachable: the last attempt returns or raises")


def _rebasing(repo: git.Repo) -> bool:
    git_dir = Path(repo.git_dir)
    return (git_dir / "rebase-merge").exists() or (git_dir / "rebase-apply").exists()
