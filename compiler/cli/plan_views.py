"""Views of plans: text for terminals, markdown for the CI bot, JSON for tools.

Text (one line per pending path, like Terraform; `=` unchanged paths are only counted)::

    + deploy/production/deployment.yaml
    ~ train.Dockerfile
    - deploy/staging/old.yaml
    ! deploy/production/service.yaml: edited by hand (differs from mlc.lock)

    Plan: 1 to create, 1 to update, 1 to delete, 1 conflict, 12 unchanged.

With several specs each spec's lines follow a `<spec>:` header. With no pending change the
summary is `No changes. Generated files are up to date.`

JSON (`--format json`), format_version 1. Stable: fields are only added (with defaults);
renaming or retyping one bumps format_version::

    {
      "format_version": 1,
      "has_changes": true,            # any create/update/delete/conflict in any spec
      "summary": {"create": 1, "update": 1, "delete": 1, "conflict": 1, "unchanged": 12},
      "plans": [
        {
          "spec": "mlproject.yaml",   # as given on the command line
          "project": "churn",
          "spec_digest": "<sha256 hex>",
          "lock_digest": "<sha256 hex of the mlc.lock apply writes>",
          "summary": {...same keys...},
          "changes": [                # pending changes only, sorted by path, mlc.lock last
            {"action": "create|update|delete|conflict", "path": "<relative to the spec's dir>",
             "before_sha256": "<hex>|null", "after_sha256": "<hex>|null", "reason": "<text>"}
          ]
        }
      ]
    }

This view is for reading: it holds no file contents and cannot be applied. A plan saved to be
applied (`mlc plan --out PLANFILE`, then `mlc apply PLANFILE`) has its own versioned JSON
format, with every new content and what the plan was made from, documented in
`compiler/plan/saved.py`; there, the `after_sha256` of the `mlc.lock` change is this view's
`lock_digest`.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence

from mlc.compiler.plan.changes import Action, Change, Plan
from mlc.compiler.plan.lock import LOCK_FILENAME

PLAN_JSON_FORMAT_VERSION = 1
NO_CHANGES = "No changes. Generated files are up to date."
COMMENT_MARKER = "<!-- mlc-plan -->"  # the PR workflow updates the comment carrying it in place
_SYMBOLS = {Action.CREATE: "+", Action.UPDATE: "~", Action.DELETE: "-", Action.CONFLICT: "!"}
_COUNTED = (Action.CREATE, Action.UPDATE, Action.DELETE, Action.CONFLICT, Action.UNCHANGED)
# GitHub rejects comments over 65536 characters; diffs are cut well before.
MARKDOWN_DIFF_LIMIT = 40_000


def has_changes(plans: Sequence[Plan]) -> bool:
    """True when any plan has a pending change (what `--detailed-exitcode` reports as 2)."""
    return any(plan.pending for plan in plans)


def render_summary(plans: Sequence[Plan]) -> str:
    """The closing line: counts per action, or the no-changes sentence."""
    if not has_changes(plans):
        return NO_CHANGES
    counts = _counts(plans)
    parts = [
        f"{counts['create']} to create",
        f"{counts['update']} to update",
        f"{counts['delete']} to delete",
    ]
    if counts["conflict"]:
        parts.append(f"{counts['conflict']} conflict{'s' if counts['conflict'] != 1 else ''}")
    parts.append(f"{counts['unchanged']} unchanged")
    return f"Plan: {', '.join(parts)}."


def render_plan_text(plans: Sequence[Plan], diff: bool = False, summary: bool = True) -> str:
    """The terminal view of `mlc plan`; `diff` adds a unified diff under each update/conflict."""
    lines: list[str] = []
    for plan in plans:
        if not plan.pending:
            continue
        if len(plans) > 1:
            lines.append(f"{plan.spec}:")
        indent = "  " if len(plans) > 1 else ""
        for change in plan.pending:
            lines.append(f"{indent}{_change_line(change)}")
            if diff:
                lines.extend(f"{indent}    {line}" for line in _diff_lines(change))
        lines.append("")
    if summary:
        lines.append(render_summary(plans))
    return "\n".join(lines) + "\n" if lines else ""


def render_plan_markdown(plans: Sequence[Plan], diff: bool = True) -> str:
    """The markdown the bot posts: a summary line, a table per spec, diffs folded away."""
    # Several projects of a monorepo each comment on one pull request: the heading names them.
    projects = ", ".join(dict.fromkeys(f"`{plan.project}`" for plan in plans))
    out = [f"### mlc plan: {projects}" if projects else "### mlc plan", "", f"**{render_summary(plans)}**", ""]
    budget = MARKDOWN_DIFF_LIMIT
    for plan in plans:
        if not plan.pending:
            continue
        out += [
            f"`{plan.spec}` (project `{plan.project}`, spec `sha256:{plan.spec_digest[:12]}`)",
            "",
        ]
        out += ["| | path | |", "| --- | --- | --- |"]
        for change in plan.pending:
            reason = change.reason.replace("|", "\\|")
            symbol = _SYMBOLS[change.action]
            out.append(f"| `{symbol}` {change.action.value} | `{change.path}` | {reason} |")
        out.append("")
        for change in plan.pending if diff else ():
            text = "\n".join(_diff_lines(change))
            if not text:
                continue
            if len(text) > budget:
                out += [f"_Diff of `{change.path}` left out (too long for a comment)._", ""]
                continue
            budget -= len(text)
            fence = "````" if "```" in text else "```"
            out += [
                f"<details><summary>diff of <code>{change.path}</code></summary>",
                "",
                f"{fence}diff",
                text,
                fence,
                "",
                "</details>",
                "",
            ]
    if any(plan.conflicts for plan in plans):
        out += [
            "> [!WARNING]",
            "> Conflicts are generated files edited by hand. Move the edit into "
            "`mlproject.yaml`, or run `mlc apply --force` to overwrite them.",
            "",
        ]
    return "\n".join(out)


def render_bot_comment(plans: Sequence[Plan], note: str) -> str:
    """The bot's comment and step summary: the markdown plan, then what the bot did."""
    return f"{COMMENT_MARKER}\n{render_plan_markdown(plans)}\n{note}\n"


def render_bot_failure(diagnostics: str) -> str:
    """The bot's comment when a spec does not compile: the rendered diagnostics."""
    return f"{COMMENT_MARKER}\n### mlc plan\n\n**The spec is invalid.**\n\n```\n{diagnostics}```\n"


def plan_to_json_data(plans: Sequence[Plan]) -> dict[str, object]:
    """The documented JSON form of the plans (see the module docstring)."""
    return {
        "format_version": PLAN_JSON_FORMAT_VERSION,
        "has_changes": has_changes(plans),
        "summary": _counts(plans),
        "plans": [
            {
                "spec": plan.spec,
                "project": plan.project,
                "spec_digest": plan.spec_digest,
                "lock_digest": plan.lock_digest,
                "summary": _counts([plan]),
                "changes": [
                    {
                        "action": change.action.value,
                        "path": change.path,
                        "before_sha256": change.before_sha,
                        "after_sha256": change.after_sha,
                        "reason": change.reason,
                    }
                    for change in plan.pending
                ],
            }
            for plan in plans
        ],
    }


def render_plan_json(plans: Sequence[Plan]) -> str:
    """`plan_to_json_data` as indented JSON text."""
    return json.dumps(plan_to_json_data(plans), indent=2, ensure_ascii=False) + "\n"


def render_apply_result(written: int, deleted: int, unchanged: int) -> str:
    """The closing line of `mlc apply`."""
    if not written and not deleted:
        return NO_CHANGES + "\n"
    return f"Apply complete: {written} written, {deleted} deleted, {unchanged} unchanged.\n"


def _counts(plans: Sequence[Plan]) -> dict[str, int]:
    return {action.value: sum(plan.count(action) for plan in plans) for action in _COUNTED}


def _change_line(change: Change) -> str:
    line = f"{_SYMBOLS[change.action]} {change.path}"
    return f"{line}: {change.reason}" if change.reason else line


def _diff_lines(change: Change) -> list[str]:
    if change.action not in (Action.UPDATE, Action.CONFLICT) or change.before is None:
        return []
    if change.path == LOCK_FILENAME:  # hashes only: the file diffs above say it all
        return []
    after = change.after or b""
    try:
        before_text, after_text = change.before.decode("utf-8"), after.decode("utf-8")
    except UnicodeDecodeError:
        return ["(binary content differs)"]
    return [
        line.rstrip("\n")
        for line in difflib.unified_diff(
            before_text.splitlines(keepends=True),
            after_text.splitlines(keepends=True),
            fromfile=f"a/{change.path}",
            tofile=f"b/{change.path}",
        )
    ]
