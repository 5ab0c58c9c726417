"""Steps and job parts both workflows share, and the rules that keep them safe.

Every spec-derived string, and the spec's folder (a name from the filesystem), reaches a
workflow only as a plain value (an `env:` or `with:` entry, a job's `working-directory`, a path
filter; never inside `run:`), and `guard_expression` neutralises `${{` in it so GitHub cannot
evaluate it as an expression either (path filters, where no expression is allowed, have their
own escaping: `_location.path_filter_literal`). Shell scripts are constants of this package
that read `"$VAR"`.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from mlc.compiler.backends.ci._pins import pinned_action
from mlc.compiler.backends.yaml_writer import Commented
from mlc.compiler.resolve.runtime_install import MlcInstall
from mlc.runtime.contract import CONFIG_FILE, LOCAL_STATE_DIR

# `run:` steps run in the spec's folder, as `mlc` does locally: the repository's top, or the
# job's `defaults.run.working-directory` for a spec in a subfolder (`_location`).
SPEC_FILE = "mlproject.yaml"

# Where the jobs that run `mlc-runtime` keep the resolved runtime config, and the command that
# writes it. The only assumption about the runtime config in this package: change it here.
# Without `--env`, `mlc run` resolves the spec as a developer's machine does (the base of a spec
# with environments, its paths as written): a runner holds the repository, as a laptop does,
# while the environments' data is where their cluster jobs reach it.
RUNTIME_CONFIG_PATH = f"{LOCAL_STATE_DIR}/{CONFIG_FILE}"
WRITE_RUNTIME_CONFIG_SCRIPT = (
    'mkdir -p "$(dirname "$MLC_RUNTIME_CONFIG")"\nmlc run train --print-config > "$MLC_RUNTIME_CONFIG"\n'
)

# Commits made by `mlc bot` and `mlc apply --commit` (GitPython reads these variables).
BOT_IDENTITY = {
    "GIT_AUTHOR_NAME": "github-actions[bot]",
    "GIT_AUTHOR_EMAIL": "41898282+github-actions[bot]@users.noreply.github.com",
    "GIT_COMMITTER_NAME": "github-actions[bot]",
    "GIT_COMMITTER_EMAIL": "41898282+github-actions[bot]@users.noreply.github.com",
}

Step = dict[str, Any]
Job = dict[str, Any]


def guard_expression(text: str) -> str:
    """`text` as a literal workflow value: a `${{` in it is written as an expression of itself."""
    return text.replace("${{", "${{ '${{' }}")


def documented(permission: str, why: str) -> Commented:
    """A permission with the reason the job needs it (zizmor asks for one on every write)."""
    return Commented(permission, why)


def build_job(
    name: str,
    permissions: dict[str, str | Commented],
    steps: list[Step],
    *,
    runs_on: str | tuple[str, ...],
    needs: list[str] | None = None,
    condition: str | None = None,
    timeout_minutes: int = 15,
) -> Job:
    """A job in the key order GitHub's docs use: name, needs, if, runs-on, permissions, steps."""
    job: Job = {"name": name}
    if needs:
        job["needs"] = needs
    if condition:
        job["if"] = condition
    job["runs-on"] = runs_on if isinstance(runs_on, str) else list(runs_on)
    job["timeout-minutes"] = timeout_minutes
    job["permissions"] = permissions
    job["steps"] = steps
    return job


def checkout_step(
    *, persist_credentials: bool = False, ref: str | None = None, token: str | None = None, fetch_depth: int = 1
) -> Step:
    """Check out the repository; credentials stay on disk only for a job that pushes (with
    `token`, an expression, instead of the workflow's own). `fetch_depth` 2 on a pull request's
    merge commit brings its first parent, the base branch's tip."""
    with_: dict[str, Any] = {}
    if ref is not None:
        with_["ref"] = ref
    if token is not None:
        with_["token"] = token
    if fetch_depth != 1:
        with_["fetch-depth"] = fetch_depth
    with_["persist-credentials"] = persist_credentials
    return {"name": "Check out", "uses": pinned_action("actions/checkout"), "with": with_}


def setup_python_step(python: str) -> Step:
    """Install the project's Python (`code.python`)."""
    return {
        "name": "Set up Python",
        "uses": pinned_action("actions/setup-python"),
        "with": {"python-version": guard_expression(python)},
    }


# pip takes a wheel only by an absolute `file://` URL: the requirement names the checkout's folder
# as a literal `$PWD`, which the (constant) script replaces with the step's working directory.
# With a hash lock (an index install), mlc alone is installed hash-checked first, then its extras.
INSTALL_MLC_SCRIPT = (
    'if [ -n "${MLC_LOCKED_INSTALL:-}" ]; then\n'
    '  read -ra locked <<< "$MLC_LOCKED_INSTALL"\n'
    '  python -m pip install "${locked[@]}"\n'
    "fi\n"
    "python -m pip install \"${MLC_REQUIREMENT//'$PWD'/$PWD}\"\n"
)


def install_mlc_step(mlc: MlcInstall) -> Step:
    """Install mlc as resolved (`ResolvedSpec.compiler_requirement` or `runtime_requirement`: the
    compiler that generated the workflow, from where `images.runtime` says: the wheel in the
    checkout, relative to the step's working directory, the spec's folder; or an index)."""
    wheel_folder = (PurePosixPath("$PWD") / PurePosixPath(mlc.wheel).parent).as_posix() if mlc.wheel else ""
    env = {"MLC_REQUIREMENT": guard_expression(mlc.requirement(wheel_folder))}
    if mlc.index_url:
        env["PIP_INDEX_URL"] = guard_expression(mlc.index_url)
    if mlc.lock:
        env["MLC_LOCKED_INSTALL"] = guard_expression(mlc.locked_arguments(".", index=False))
    return {"name": "Install mlc", "env": env, "run": INSTALL_MLC_SCRIPT}


def install_project_requirements_step(requirements: str) -> Step:
    """Install the project's locked requirements (the training entrypoint imports them)."""
    return {
        "name": "Install the project's requirements",
        "env": {"MLC_PROJECT_REQUIREMENTS": guard_expression(requirements)},
        "run": 'python -m pip install -r "$MLC_PROJECT_REQUIREMENTS"\n',
    }


def write_runtime_config_step() -> Step:
    """Write the runtime config `mlc run` uses (the spec's local view) for `mlc-runtime`."""
    return {
        "name": "Write the runtime config",
        "env": {"MLC_RUNTIME_CONFIG": RUNTIME_CONFIG_PATH},
        "run": WRITE_RUNTIME_CONFIG_SCRIPT,
    }
