"""`mlc bot` against a local bare repository as `origin`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mlc.compiler.apply.bot import pull_request_from_event
from mlc.compiler.cli import main
from plan_fixtures import git, init_repo, write_project

BRANCH = "feature/retrain"


pytestmark = pytest.mark.usefixtures("stand_in_backend")


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clone of a bare `origin`, on a pushed PR branch holding a project; the cwd."""
    seed = init_repo(tmp_path / "seed")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(seed), str(origin))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(origin), str(work))
    git(work, "config", "user.name", "Author")
    git(work, "config", "user.email", "author@example.com")
    git(work, "checkout", "-q", "-b", BRANCH)
    write_project(work)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "add project")
    git(work, "push", "-q", "origin", BRANCH)
    monkeypatch.chdir(work)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    for name in ("GITHUB_HEAD_REF", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    return work


def write_event(path: Path, checkout: Path, head_repo: str = "acme/demo") -> Path:
    """A `pull_request` event payload for the checkout's HEAD."""
    event = {
        "pull_request": {
            "head": {
                "ref": BRANCH,
                "sha": git(checkout, "rev-parse", "HEAD").strip(),
                "repo": {"full_name": head_repo},
            },
            "base": {"ref": "main", "repo": {"full_name": "acme/demo"}},
        }
    }
    path.write_text(json.dumps(event))
    return path


def mlc(*args: str) -> Result:
    """Run the CLI in-process."""
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_bot_commits_and_pushes_then_is_up_to_date(
    checkout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(write_event(tmp_path / "event.json", checkout)))
    comment = tmp_path / "comment.md"
    result = mlc("bot", "--comment-file", str(comment))
    assert result.exit_code == 2, result.output + result.stderr

    origin = tmp_path / "origin.git"
    author = git(origin, "log", "-1", "--format=%an <%ae>", BRANCH).strip()
    assert author == "mlc-bot <mlc-bot@users.noreply.github.com>"
    pushed = set(git(origin, "show", "--name-only", "--format=", BRANCH).split())
    assert "mlc.lock" in pushed and "deploy/staging/serve.yaml" in pushed
    assert "mlproject.yaml" not in pushed

    body = comment.read_text()
    assert body.startswith("<!-- mlc-plan -->\n### mlc plan")
    assert "Plan: 10 to create" in body  # 9 generated files and the runtime wheel they install
    assert "wheels/mlc-0.1.0-py3-none-any.whl" in pushed
    assert f"pushed to `{BRANCH}`" in body
    assert (tmp_path / "summary.md").read_text() == body

    # The next run (for the bot's own commit) finds nothing to do.
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(write_event(tmp_path / "event2.json", checkout)))
    again = mlc("bot", "--comment-file", str(comment))
    assert again.exit_code == 0, again.output
    assert "No changes. Generated files are up to date." in comment.read_text()


def test_bot_only_reports_for_forks(checkout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    event = write_event(tmp_path / "event.json", checkout, head_repo="someone/demo")
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    before = git(tmp_path / "origin.git", "rev-parse", BRANCH)
    head = git(checkout, "rev-parse", "HEAD")
    result = mlc("bot", "--comment-file", str(tmp_path / "comment.md"))
    assert result.exit_code == 3
    assert git(tmp_path / "origin.git", "rev-parse", BRANCH) == before
    assert git(checkout, "rev-parse", "HEAD") == head
    assert not (checkout / "mlc.lock").exists()
    assert "fork" in (tmp_path / "comment.md").read_text()


def test_bot_refuses_a_merge_commit_checkout(checkout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    event = json.loads(write_event(tmp_path / "event.json", checkout).read_text())
    event["pull_request"]["head"]["sha"] = "0" * 40
    (tmp_path / "event.json").write_text(json.dumps(event))
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(tmp_path / "event.json"))
    result = mlc("bot", "--comment-file", str(tmp_path / "comment.md"))
    assert result.exit_code == 1
    assert "head commit" in (tmp_path / "comment.md").read_text()


def test_bot_reports_conflicts_without_applying(
    checkout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (checkout / "train.Dockerfile").write_text("FROM scratch\n")
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(write_event(tmp_path / "event.json", checkout)))
    result = mlc("bot", "--comment-file", str(tmp_path / "comment.md"))
    assert result.exit_code == 1
    assert "! train.Dockerfile" not in result.output  # markdown, not text
    assert "| `!` conflict | `train.Dockerfile` |" in (tmp_path / "comment.md").read_text()
    assert (checkout / "train.Dockerfile").read_text() == "FROM scratch\n"


def test_bot_invalid_spec_exits_1_with_a_report(
    checkout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = checkout / "mlproject.yaml"
    spec.write_text(spec.read_text().replace("kind: MLProject", "kind: Nope"))
    result = mlc("bot", "--comment-file", str(tmp_path / "comment.md"))
    assert result.exit_code == 1
    assert "The spec is invalid" in (tmp_path / "comment.md").read_text()


def test_bot_commits_as_the_workflows_identity_when_set(
    checkout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(write_event(tmp_path / "event.json", checkout)))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "github-actions[bot]")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "41898282+github-actions[bot]@users.noreply.github.com")
    assert mlc("bot", "--comment-file", str(tmp_path / "c.md")).exit_code == 2
    author = git(tmp_path / "origin.git", "log", "-1", "--format=%an", BRANCH).strip()
    assert author == "github-actions[bot]"


def push_from_another_clone(tmp_path: Path, name: str, path: str, text: str) -> str:
    """Another pusher (in a monorepo: another project's bot) commits `path` to the PR branch."""
    other = tmp_path / name
    git(tmp_path, "clone", "-q", "--branch", BRANCH, str(tmp_path / "origin.git"), str(other))
    (other / path).parent.mkdir(parents=True, exist_ok=True)
    (other / path).write_text(text)
    git(other, "add", path)
    git(other, "-c", "user.name=Other", "-c", "user.email=other@example.com", "commit", "-q", "-m", "other")
    git(other, "push", "-q", "origin", BRANCH)
    return git(other, "rev-parse", "HEAD").strip()


def test_bot_rebases_onto_a_branch_that_moved_and_pushes(
    checkout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(write_event(tmp_path / "event.json", checkout)))
    other = push_from_another_clone(tmp_path, "other", "other/mlc.lock", "another project's files\n")
    result = mlc("bot", "--comment-file", str(tmp_path / "comment.md"))
    assert result.exit_code == 2, result.output
    origin = tmp_path / "origin.git"
    pushed = git(origin, "rev-parse", BRANCH).strip()
    assert git(origin, "rev-parse", f"{BRANCH}^").strip() == other
    assert "other/mlc.lock" not in git(origin, "show", "--name-only", "--format=", BRANCH).split()
    assert f"`{pushed[:12]}`" in (tmp_path / "comment.md").read_text()
    assert git(origin, "log", "-1", "--format=%cn", BRANCH).strip() == "mlc-bot"


def test_bot_does_not_overwrite_a_conflicting_push(
    checkout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(write_event(tmp_path / "event.json", checkout)))
    other = push_from_another_clone(tmp_path, "other", "mlc.lock", "someone else's lock\n")
    result = mlc("bot", "--comment-file", str(tmp_path / "comment.md"))
    assert result.exit_code == 1
    assert git(tmp_path / "origin.git", "rev-parse", BRANCH).strip() == other
    assert "does not rebase onto it" in (tmp_path / "comment.md").read_text()
    assert not (checkout / ".git" / "rebase-merge").exists() and not (checkout / ".git" / "rebase-apply").exists()


def test_fork_detection_from_event() -> None:
    def event(head: str | None) -> dict[str, object]:
        repo = {"full_name": head} if head else None
        return {
            "pull_request": {
                "head": {"ref": "b", "repo": repo},
                "base": {"repo": {"full_name": "o/r"}},
            }
        }

    assert pull_request_from_event(event("o/r")).same_repository
    assert not pull_request_from_event(event("fork/r")).same_repository
    assert not pull_request_from_event(event(None)).same_repository  # deleted fork
    assert pull_request_from_event({}, "b") == pull_request_from_event({}, "b")
    assert pull_request_from_event({}, None).branch is None
