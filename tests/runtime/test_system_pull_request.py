"""The compiled pull-request workflow's model check, run as GitHub runs it, in real git repositories.

The churn example is a repository with one commit on `main`; a pull request adds a commit on a
branch, and GitHub's merge commit (`refs/pull/7/merge`, first parent the base) is what the jobs
check out. Each job of the workflow (`smoke_train`, then `gate`) runs in a fresh checkout,
fetched as actions/checkout fetches it (`--depth` from `with.fetch-depth`), its `run:` steps
through `bash --noprofile --norc -eo pipefail` in order with the step's `env` (GitHub's
expressions evaluated), `GITHUB_ENV` carried between steps, and the jobs sharing nothing but
the uploaded artifact. Stood in for, as they cannot exist here: `actions/setup-python` (this
interpreter's venv is on PATH), the two install steps (mlc and the project's lock are already
installed in it: no index here publishes mlc), upload-artifact (a copy) and `gh run download`
(a script that copies it back: the GitHub API).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlc.compiler.pipeline import compile_spec_file

REPO = Path(__file__).resolve().parents[2]
PR_NUMBER = "7"
MODEL_FILE = "src/churn/model.py"
SKIPPED_RUN_STEPS = ("Install mlc", "Install the project's requirements")
EXPRESSIONS = {
    "github.event.pull_request.number": PR_NUMBER,
    "github.token": "a-token-the-stand-in-gh-ignores",
    "github.repository": "acme/churn",
    "'${{'": "${{",
}
FAKE_GH = """#!/bin/sh
# gh run download RUN --name NAME --dir DIR: the artifact the stand-in upload kept.
set -e
[ "$1 $2" = "run download" ] || { echo "stand-in gh: unsupported: $*" >&2; exit 2; }
shift 3
while [ $# -gt 0 ]; do
  case "$1" in --name) name="$2"; shift 2 ;; --dir) dir="$2"; shift 2 ;; *) shift ;; esac
done
mkdir -p "$dir"
cp -R "$MLC_TEST_ARTIFACTS/$name/." "$dir/"
"""


def git(cwd: Path, *args: str) -> str:
    environ = {
        **os.environ,
        "GIT_AUTHOR_NAME": "dev",
        "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "dev",
        "GIT_COMMITTER_EMAIL": "dev@example.com",
    }
    done = subprocess.run(["git", *args], cwd=cwd, env=environ, capture_output=True, text=True, check=False)
    assert done.returncode == 0, (args, done.stderr)
    return done.stdout.strip()


def evaluate(value: Any) -> str:
    """A workflow value with GitHub's expressions evaluated (only the ones these workflows use)."""

    def one(match: re.Match[str]) -> str:
        expression = match.group(1).strip()
        assert expression in EXPRESSIONS, f"an expression this runner does not know: {expression}"
        return EXPRESSIONS[expression]

    return re.sub(r"\$\{\{(.*?)\}\}", one, str(value))


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository: the churn example (code, lock, spec, data) on `main`, workflows compiled."""
    origin = tmp_path_factory.mktemp("pr") / "churn"
    shutil.copytree(REPO / "examples" / "churn", origin, ignore=shutil.ignore_patterns("__pycache__", ".mlc"))
    git(origin, "init", "-q", "-b", "main")
    compiled = compile_spec_file(origin / "mlproject.yaml")
    assert compiled.ok, [d.render() for d in compiled.result.diagnostics]
    for artifact in compiled.artifacts:
        target = origin / artifact.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(artifact.content)
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "churn")
    return origin


def open_pull_request(origin: Path, branch: str, change: dict[str, tuple[str, str]]) -> None:
    """A branch with `change` (path -> (old, new) text), and GitHub's merge commit as refs/pull/7/merge."""
    git(origin, "checkout", "-q", "-b", branch, "main")
    for path, (old, new) in change.items():
        text = (origin / path).read_text()
        assert old in text, (path, old)
        (origin / path).write_text(text.replace(old, new, 1))
    git(origin, "commit", "-q", "-am", branch)
    git(origin, "checkout", "-q", "--detach", "main")
    git(origin, "merge", "-q", "--no-ff", "-m", f"Merge {branch} into main", branch)
    git(origin, "update-ref", f"refs/pull/{PR_NUMBER}/merge", "HEAD")
    git(origin, "checkout", "-q", "main")


def checkout(origin: Path, workspace: Path, step: dict[str, Any]) -> None:
    """What actions/checkout does on a pull_request event: fetch the merge ref at the depth asked."""
    depth = str(step.get("with", {}).get("fetch-depth", 1))
    workspace.mkdir(parents=True)
    git(workspace, "init", "-q")
    ref = f"refs/pull/{PR_NUMBER}/merge"
    git(
        workspace,
        "fetch",
        "-q",
        "--no-tags",
        f"--depth={depth}",
        f"file://{origin}",
        f"+{ref}:refs/remotes/pull/7/merge",
    )
    git(workspace, "checkout", "-q", "--detach", "refs/remotes/pull/7/merge")


def run_job(
    origin: Path, work: Path, job_id: str, job: dict[str, Any], environ: dict[str, str] | None = None
) -> tuple[bool, str]:
    """The job's steps in order, as GitHub's runner does; (passed, what its steps printed)."""
    workspace = work / job_id / "workspace"
    runner_temp = work / job_id / "runner-temp"
    runner_temp.mkdir(parents=True)
    github_env = runner_temp / "github-env"
    summary = runner_temp / "step-summary.md"
    fake_bin = work / "bin"
    fake_bin.mkdir(exist_ok=True)
    (fake_bin / "gh").write_text(FAKE_GH)
    (fake_bin / "gh").chmod(0o755)
    carried: dict[str, str] = {}
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLC_", "GITHUB_"))}
    base_env |= {
        "PATH": f"{fake_bin}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "RUNNER_TEMP": str(runner_temp),
        "GITHUB_ENV": str(github_env),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_RUN_ID": "1",
        "MLC_TEST_ARTIFACTS": str(work / "artifacts"),
        **(environ or {}),
    }
    passed, output = True, []
    for step in job["steps"]:
        condition = step.get("if")
        if not passed and condition != "${{ !cancelled() }}":
            continue
        uses = step.get("uses", "")
        if uses.startswith("actions/checkout@"):
            checkout(origin, workspace, step)
        elif uses.startswith("actions/upload-artifact@"):
            kept = work / "artifacts" / step["with"]["name"]
            shutil.copytree(workspace / step["with"]["path"], kept, dirs_exist_ok=True)
        elif uses or step["name"] in SKIPPED_RUN_STEPS:
            continue  # setup-python, github-script; installs: see the module docstring
        else:
            github_env.write_text("")
            environ = base_env | carried | {name: evaluate(value) for name, value in step.get("env", {}).items()}
            done = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                cwd=workspace,
                env=environ,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            output.append(f"--- {step['name']} ({done.returncode})\n{done.stdout}{done.stderr[-3000:]}")
            for line in github_env.read_text().splitlines():
                name, _, value = line.partition("=")
                carried[name] = value
            passed = passed and done.returncode == 0
    return passed, "\n".join(output)


def run_model_check(origin: Path, work: Path, environ: dict[str, str] | None = None) -> dict[str, tuple[bool, str]]:
    workflow = yaml.safe_load((origin / ".github/workflows/mlc-pr.yaml").read_text())
    jobs = workflow["jobs"]
    assert jobs["gate"]["needs"] == ["smoke_train"]
    results = {}
    for job_id in ("smoke_train", "gate"):
        results[job_id] = run_job(origin, work, job_id, jobs[job_id], environ)
        if not results[job_id][0]:
            break
    return results


def test_a_comment_only_change_passes_and_a_model_breaking_change_fails(origin, tmp_path) -> None:
    comment = {
        MODEL_FILE: (
            "    y = y.reshape(-1, 1)\n",
            "    # one label per row, as the loss expects\n    y = y.reshape(-1, 1)\n",
        )
    }
    open_pull_request(origin, "comment", comment)
    results = run_model_check(origin, tmp_path / "comment")
    assert results["smoke_train"][0], results["smoke_train"][1]
    assert results["gate"][0], results["gate"][1]
    report = (tmp_path / "comment/gate/workspace/gate.md").read_text()
    assert f"Challenger @pr-{PR_NUMBER} (version" in report and f"@pr-{PR_NUMBER}-base (version" in report
    assert "advisory" in report and "the relative gates decide" in report
    assert "- Both in this runner's environment: requirements.lock is the same on both branches." in report
    assert (tmp_path / "comment/gate/runner-temp/step-summary.md").read_text() == report

    # The same pull request number, pushed again with a bug: the labels it trains on are inverted.
    git(origin, "checkout", "-q", "main")
    broken = {MODEL_FILE: ("    y = y.reshape(-1, 1)\n", "    y = 1 - y.reshape(-1, 1)\n")}
    open_pull_request(origin, "broken", broken)
    results = run_model_check(origin, tmp_path / "broken")
    assert results["smoke_train"][0], results["smoke_train"][1]
    passed, output = results["gate"]
    assert not passed, output
    report = (tmp_path / "broken/gate/workspace/gate.md").read_text()
    assert report.startswith("## Gate failed") and "| roc_auc may drop at most" in report and "**failed**" in report


def test_a_change_to_nothing_the_model_depends_on_trains_nothing_and_passes(origin, tmp_path) -> None:
    git(origin, "checkout", "-q", "main")
    (origin / "NOTES.md").write_text("How we work.\n")
    git(origin, "add", "NOTES.md")
    git(origin, "commit", "-q", "-m", "notes on main")
    open_pull_request(origin, "docs", {"NOTES.md": ("How we work.\n", "How we work, and why.\n")})
    results = run_model_check(origin, tmp_path / "docs")
    assert all(passed for passed, _ in results.values()), results
    assert "Nothing the model depends on changed" in results["smoke_train"][1]
    assert "registered" not in results["smoke_train"][1]  # nothing trained
    report = (tmp_path / "docs/gate/workspace/gate.md").read_text()
    assert report.startswith("## Gate passed: nothing the model depends on changed")


# Imported whenever training imports the churn package: where that training ran, for the test to read.
ENVIRONMENT_RECORD = """
import json as _json, os as _os, sys as _sys
from importlib import metadata as _metadata

if _os.environ.get("CHURN_ENVIRONMENT_LOG"):
    try:
        _probe = _metadata.version("lock-probe")
    except _metadata.PackageNotFoundError:
        _probe = None
    with open(_os.environ["CHURN_ENVIRONMENT_LOG"], "a") as _log:
        _log.write(_json.dumps({"code": __file__, "prefix": _sys.prefix, "probe": _probe}) + "\\n")
"""


def probe_wheel(folder: Path, version: str) -> None:
    """A wheel of `lock-probe` at `version` (a package only a lock names), in a folder pip finds links in."""
    dist = f"lock_probe-{version}.dist-info"
    files = {
        "lock_probe/__init__.py": f'__version__ = "{version}"\n',
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: lock-probe\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / f"lock_probe-{version}-py3-none-any.whl", "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
        wheel.writestr(f"{dist}/RECORD", "".join(f"{name},," + "\n" for name in [*files, f"{dist}/RECORD"]))


def test_a_lock_only_change_trains_the_base_in_its_own_locks_environment(origin, tmp_path) -> None:
    """The base branch pins lock-probe 1.0, the pull request 2.0 and changes nothing else: the base's
    code trains in a second venv where the base's lock is installed (from a local wheel folder, no
    index), the PR's code in the runner's environment; same code, same data: the gate passes, and
    its report says which side used which."""
    git(origin, "checkout", "-q", "main")
    lock = origin / "requirements.lock"
    lock.write_text(lock.read_text() + "lock-probe==1.0\n")
    (origin / "src/churn/__init__.py").write_text((origin / "src/churn/__init__.py").read_text() + ENVIRONMENT_RECORD)
    git(origin, "commit", "-q", "-am", "pin lock-probe; record where training runs")
    open_pull_request(origin, "upgrade", {"requirements.lock": ("lock-probe==1.0\n", "lock-probe==2.0\n")})
    wheels, record = tmp_path / "wheels", tmp_path / "environments.jsonl"
    for version in ("1.0", "2.0"):
        probe_wheel(wheels, version)
    offline = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels), "CHURN_ENVIRONMENT_LOG": str(record)}
    results = run_model_check(origin, tmp_path / "upgrade", offline)
    assert results["smoke_train"][0], results["smoke_train"][1]
    assert results["gate"][0], results["gate"][1]

    trained = [json.loads(line) for line in record.read_text().splitlines()]
    runner_temp = tmp_path / "upgrade/smoke_train/runner-temp"
    pull_request = [t for t in trained if t["code"].startswith(str(tmp_path / "upgrade/smoke_train/workspace"))]
    base = [t for t in trained if t["code"].startswith(str(runner_temp / "mlc-base."))]
    assert pull_request and base  # (the gate job's loading of the models records too: not training)
    # The pull request's side: the runner's interpreter (its lock is installed by a step this
    # stand-in runner skips, see the module docstring). The base's: its own venv, its own lock.
    assert {(t["prefix"], t["probe"]) for t in pull_request} == {(sys.prefix, None)}
    assert {(t["prefix"], t["probe"]) for t in base} == {(str(runner_temp / "mlc-base-venv"), "1.0")}
    report = (tmp_path / "upgrade/gate/workspace/gate.md").read_text()
    assert "requirements.lock differs: @pr-7-base was trained in a virtual environment with the base branch's lock" in (
        report
    )
    assert "Both with this pull request's runtime config" in report
    assert "mlproject.yaml differs" not in report  # only the lock changed


def test_a_parameter_change_trains_both_sides_with_the_pull_requests_parameters(origin, tmp_path) -> None:
    """The base's code is trained with the PR's runtime config, its new learning rate included: the
    report says so (the code is the same, so the gate passes)."""
    git(origin, "checkout", "-q", "main")
    open_pull_request(origin, "lr", {"mlproject.yaml": ("    lr: 0.05\n", "    lr: 0.08\n")})
    results = run_model_check(origin, tmp_path / "lr")
    assert results["smoke_train"][0], results["smoke_train"][1]
    assert results["gate"][0], results["gate"][1]
    report = (tmp_path / "lr/gate/workspace/gate.md").read_text()
    assert (
        "- mlproject.yaml differs on the base branch: @pr-7-base (the base branch's code) was trained with this "
        "pull request's parameters, not the base branch's." in report
    )
    assert "- Both in this runner's environment: requirements.lock is the same on both branches." in report
