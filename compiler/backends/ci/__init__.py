"""The CI backend: GitHub Actions workflows for pull requests and for the main branch.

`emit(environments)` returns the project's two workflows, which `plan`/`apply` place at the git
repository's top level (the only place GitHub reads them). CI is per project, not per
environment: the `ci`, `code`, `gitops` and `secrets` sections are read from the first
environment in file order. The pull request's data tests and smoke training run with the
runtime config `mlc run` writes without `--env` (the spec's local view: the runner holds the
repository, as a developer's machine does).

Secure by construction: `permissions: {}` at the top and least privilege per job (write
permissions carry their reason as a comment); every action pinned to a commit SHA with its tag
as a comment; credentials persisted only in jobs that push; `concurrency` per ref; only the
`pull_request` and `push` triggers; spec-derived strings only in `env:`/`with:` values, read by
constant scripts as `"$VAR"`; secrets only those named in `secrets.*.github`.

Where the spec sits in its repository (`ResolvedSpec.repository_folder`, `_location`):

- At the top: `.github/workflows/mlc-pr.yaml` and `mlc-main.yaml`, triggered by every pull
  request and every push to `gitops.branch`, steps at the top. This is the single-project
  repository, by far the common case; its workflows keep the names, triggers and layout they
  had before monorepos were supported, so no existing project sees its files renamed (a
  renamed workflow file starts a new workflow history on GitHub) or its checks renamed.
- In a subfolder (a monorepo, one spec per folder): `.github/workflows/mlc-<name>-pr.yaml` and
  `mlc-<name>-main.yaml` (`metadata.name`, a DNS label; two specs of one repository with one
  name collide, which `plan` reports), workflow, job and concurrency names carrying the name,
  `on.<event>.paths` filters for the folder and the project's workflow files, every job's `run:`
  steps in the folder (`defaults.run.working-directory`), and `uses:` inputs that name files
  (build context, Dockerfile, smoke-model upload, plan comment file) prefixed with it. A spec
  at the top may share its repository with specs in subfolders: its names never collide with
  theirs, and its plan comment has a marker of its own.

One scheme for both was considered: it would rename every existing project's workflows for
no gain to a repository that holds one project, and a filter on "." filters nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from mlc.compiler.artifact import Artifact, with_generated_notice
from mlc.compiler.backends.ci._location import ProjectLocation, path_filter_literal
from mlc.compiler.backends.ci._main_branch import KIND as MAIN_KIND
from mlc.compiler.backends.ci._main_branch import PATH as MAIN_WORKFLOW_PATH
from mlc.compiler.backends.ci._main_branch import emit_main_workflow
from mlc.compiler.backends.ci._pins import ActionPin, action_pins
from mlc.compiler.backends.ci._pull_request import KIND as PULL_REQUEST_KIND
from mlc.compiler.backends.ci._pull_request import PATH as PULL_REQUEST_WORKFLOW_PATH
from mlc.compiler.backends.ci._pull_request import emit_pull_request_workflow
from mlc.compiler.backends.yaml_writer import dump_yaml
from mlc.compiler.resolve.resolved import ResolvedSpec

__all__ = [
    "MAIN_WORKFLOW_PATH",
    "PULL_REQUEST_WORKFLOW_PATH",
    "ActionPin",
    "action_pins",
    "emit",
    "path_filter_literal",
    "workflow_paths",
]

BACKEND = "ci"


def workflow_paths(project: ResolvedSpec) -> tuple[str, str]:
    """The paths of the project's pull request and main-branch workflows (at the repo top)."""
    location = ProjectLocation.of(project)
    return location.workflow_path(PULL_REQUEST_KIND), location.workflow_path(MAIN_KIND)


def emit(environments: Sequence[ResolvedSpec]) -> list[Artifact]:
    """The pull request and main-branch workflows of one project."""
    project = environments[0]
    pull_request = emit_pull_request_workflow(project)
    main = emit_main_workflow(project)
    pull_request_path, main_path = workflow_paths(project)
    return [
        Artifact(
            pull_request_path,
            with_generated_notice(dump_yaml([pull_request]), project.compiler_version),
            BACKEND,
            ("ci", "code", "data", "secrets", "registry"),
        ),
        Artifact(
            main_path,
            with_generated_notice(dump_yaml([main]), project.compiler_version),
            BACKEND,
            ("ci", "images", "gitops", "code"),
        ),
    ]
