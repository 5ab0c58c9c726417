"""The CI backend: GitHub Actions workflows for pull requests and for the main branch.

`emit(environments)` returns `.github/workflows/mlc-pr.yaml` and `.github/workflows/mlc-main.yaml`
(relative to the spec's directory). CI is per project, not per environment: the `ci`, `code`,
`gitops` and `secrets` sections are read from the first environment in file order, which is
also the one the pull request's data tests and smoke training resolve their runtime config for.

Secure by construction: `permissions: {}` at the top and least privilege per job (write
permissions carry their reason as a comment); every action pinned to a commit SHA with its tag
as a comment; credentials persisted only in jobs that push; `concurrency` per ref; only the
`pull_request` and `push` triggers; spec-derived strings only in `env:`/`with:` values, read by
constant scripts as `"$VAR"`; secrets only those named in `secrets.*.github`.
"""

from __future__ import annotations

from collections.abc import Sequence

from mlc.compiler.artifact import Artifact, generated_notice
from mlc.compiler.backends.ci._main_branch import PATH as MAIN_WORKFLOW_PATH
from mlc.compiler.backends.ci._main_branch import emit_main_workflow
from mlc.compiler.backends.ci._pins import ActionPin, action_pins
from mlc.compiler.backends.ci._pull_request import PATH as PULL_REQUEST_WORKFLOW_PATH
from mlc.compiler.backends.ci._pull_request import emit_pull_request_workflow
from mlc.compiler.resolve import ResolvedSpec
from mlc.compiler.yaml_writer import dump_yaml

__all__ = [
    "MAIN_WORKFLOW_PATH",
    "PULL_REQUEST_WORKFLOW_PATH",
    "ActionPin",
    "action_pins",
    "emit",
]

BACKEND = "ci"


def emit(environments: Sequence[ResolvedSpec]) -> list[Artifact]:
    """The pull request and main-branch workflows of one project."""
    project = environments[0]
    header = generated_notice(project.compiler_version, project.spec_digest)
    pull_request = emit_pull_request_workflow(project, smoke_environment=project.environment)
    main = emit_main_workflow(project)
    return [
        Artifact(
            PULL_REQUEST_WORKFLOW_PATH,
            dump_yaml([pull_request], header=header),
            BACKEND,
            ("ci", "code", "data", "secrets", "registry"),
        ),
        Artifact(
            MAIN_WORKFLOW_PATH,
            dump_yaml([main], header=header),
            BACKEND,
            ("ci", "images", "gitops", "code"),
        ),
    ]
