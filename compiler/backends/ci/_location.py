"""Where a project sits in its git repository, and what that makes of its two workflows.

GitHub reads workflows only from `.github/workflows/` at the repository's top level, and runs
every step there (the workspace), whatever folder the spec is in. So:

- A spec at the top (`repository_folder` "."): the single-project layout, `mlc-pr.yaml` and
  `mlc-main.yaml`, no path filter, steps at the top, which is the spec's folder.
- A spec in a subfolder (a monorepo): per-project file names (`mlc-<name>-pr.yaml`,
  `mlc-<name>-main.yaml`), workflow and job names, concurrency groups and plan comment;
  `on.<event>.paths` filters for the folder and the project's workflow files, so a pull
  request runs the workflows of the projects it touches only; every job runs its `run:` steps
  in the folder (`defaults.run.working-directory`), and the inputs of `uses:` steps that name
  files (which run at the top) are prefixed with the folder.

The folder comes from the filesystem, so it is never trusted: in `with:`, `env:` and
`working-directory` values `guard_expression` neutralises `${{`, and in path filters (where
GitHub evaluates no expression but reads glob syntax) `path_filter_literal` escapes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlc.compiler.backends.ci._steps import Job, guard_expression
from mlc.compiler.resolve.resolved import ResolvedSpec

TOP = "."
WORKFLOWS_DIR = ".github/workflows"

# Characters GitHub's filter patterns read as syntax and that `\` escapes (actionlint's and
# GitHub's documented set): `*`, `?`, `+` (quantifiers of the preceding character), `[`
# (a character class; once it is escaped, a `]` is an ordinary character, and `\]` would
# not be an escape), `!` (a negation at the start) and `\` itself.
_FILTER_SYNTAX = re.compile(r"[\\*?+\[!]")
# A literal `${{` in a filter: GitHub rejects any expression in `on:`; `$+` (one or more `$`)
# matches the `$` without forming one.
_EXPRESSION_START = "${{"
_GUARDED_EXPRESSION_START = "$+{{"


def path_filter_literal(path: str) -> str:
    """A pattern of GitHub's path filters that matches exactly `path`."""
    escaped = _FILTER_SYNTAX.sub(lambda match: "\\" + match.group(), path)
    return escaped.replace(_EXPRESSION_START, _GUARDED_EXPRESSION_START)


@dataclass(frozen=True)
class ProjectLocation:
    """A project's name and its folder relative to the repository top (POSIX, "." at the top)."""

    name: str
    folder: str

    @classmethod
    def of(cls, resolved: ResolvedSpec) -> ProjectLocation:
        """The location of a resolved project."""
        return cls(resolved.name, resolved.repository_folder)

    @property
    def at_top(self) -> bool:
        """True for a spec at the repository's top level (the single-project layout)."""
        return self.folder == TOP

    def workflow_path(self, kind: str) -> str:
        """`.github/workflows/mlc-<kind>.yaml` at the top, `mlc-<name>-<kind>.yaml` in a folder."""
        stem = "mlc" if self.at_top else f"mlc-{self.name}"
        return f"{WORKFLOWS_DIR}/{stem}-{kind}.yaml"

    def title(self, text: str) -> str:
        """A workflow or job name, with the project's name when the repository may hold several
        (check names must tell the projects apart)."""
        return text if self.at_top else f"{text} ({self.name})"

    def concurrency_group(self, kind: str) -> str:
        """One group per project, workflow and ref."""
        prefix = f"mlc-{kind}" if self.at_top else f"mlc-{kind}-{self.name}"
        return f"{prefix}-${{{{ github.ref }}}}"

    def comment_marker(self) -> str:
        """The hidden first line of the project's plan comment, which is updated in place."""
        return "<!-- mlc-plan -->" if self.at_top else f"<!-- mlc-plan:{self.name} -->"

    def trigger(self, event: str, settings: dict[str, object], workflow_paths: list[str]) -> dict[str, object]:
        """`on:` for `event`: its `settings`, and in a folder the paths that concern the project."""
        if self.at_top:
            return {event: settings}
        paths = [f"{path_filter_literal(self.folder)}/**", *map(path_filter_literal, workflow_paths)]
        return {event: {**settings, "paths": paths}}

    def file(self, path: str) -> str:
        """A path relative to the spec's folder as a `uses:` step (run at the top) names it,
        guarded; "." is the folder itself."""
        if self.at_top:
            return guard_expression(path)
        return guard_expression(self.folder if path == TOP else f"{self.folder}/{path}")

    def place_job(self, job: Job) -> Job:
        """The job, named for the project and running its `run:` steps in the folder."""
        if self.at_top:
            return job
        placed: Job = {}
        for key, value in job.items():
            placed[key] = self.title(value) if key == "name" else value
            if key == "permissions":  # GitHub's docs order: ..., permissions, defaults, steps
                placed["defaults"] = {"run": {"working-directory": guard_expression(self.folder)}}
        return placed
