"""`mlc apply --commit`: commits exactly the generated paths and the lock, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mlc.compiler.cli import main
from plan_fixtures import committed_project_repo, git, write_project

pytestmark = pytest.mark.usefixtures("stand_in_backend")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository whose project files are committed; the working directory."""
    root = committed_project_repo(tmp_path / "repo")
    monkeypatch.chdir(root)
    return root


def mlc(*args: str) -> Result:
    """Run the CLI in-process."""
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def committed_files(repo: Path, rev: str = "HEAD") -> set[str]:
    """Paths changed by commit `rev`."""
    out = git(repo, "show", "--name-only", "--format=", rev)
    return set(out.split())


def test_commit_leaves_unrelated_staged_and_unstaged_changes_alone(repo: Path) -> None:
    (repo / "README.md").write_text("staged change\n")
    git(repo, "add", "README.md")
    (repo / "README.md").write_text("staged change\nplus an unstaged one\n")
    (repo / "requirements.lock").write_text("numpy==2.1.1\n")  # unstaged, tracked
    (repo / "notes.txt").write_text("untracked\n")

    result = mlc("apply", "--commit")
    assert result.exit_code == 0, result.output + result.stderr
    assert "committed " in result.output

    files = committed_files(repo)
    assert "README.md" not in files and "requirements.lock" not in files
    assert "notes.txt" not in files
    assert files == {
        ".github/workflows/demo-pr.yml",
        "deploy/production/config.yaml",
        "deploy/production/serve.yaml",
        "deploy/production/train.yaml",
        "deploy/staging/config.yaml",
        "deploy/staging/serve.yaml",
        "deploy/staging/train.yaml",
        "train.Dockerfile",
        "wheels/mlc-0.1.0-py3-none-any.whl",  # the runtime wheel the Dockerfile installs, created
        "mlc.lock",
    }
    message = git(repo, "log", "-1", "--format=%B")
    assert message.startswith("mlc: apply generated files (demo sha256:")

    status = git(repo, "status", "--porcelain")
    assert "MM README.md" in status  # still staged, and still modified on top
    assert " M requirements.lock" in status
    assert "?? notes.txt" in status
    assert git(repo, "show", ":README.md") == "staged change\n"  # the index entry is untouched
    assert "deploy" not in status and "mlc.lock" not in status


def test_commit_records_deletions_and_custom_message(repo: Path) -> None:
    mlc("apply", "--commit")
    write_project(repo, serve=False)
    git(repo, "add", "mlproject.yaml")
    git(repo, "commit", "-q", "-m", "drop serving")
    result = mlc("apply", "--commit", "-m", "prune serving files")
    assert result.exit_code == 0, result.stderr
    assert git(repo, "log", "-1", "--format=%s").strip() == "prune serving files"
    show = git(repo, "show", "--name-status", "--format=", "HEAD")
    assert "D\tdeploy/staging/serve.yaml" in show
    assert "M\tmlc.lock" in show
    assert git(repo, "status", "--porcelain") == ""


def test_no_changes_makes_no_commit(repo: Path) -> None:
    mlc("apply", "--commit")
    head = git(repo, "rev-parse", "HEAD")
    assert mlc("apply", "--commit").exit_code == 0
    assert git(repo, "rev-parse", "HEAD") == head


def test_commit_outside_git_fails_after_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = mlc("apply", "--commit")
    assert result.exit_code == 1
    assert "not inside a git repository" in result.stderr
