"""Saved plans: `mlc plan --out PLANFILE` writes one, `mlc apply PLANFILE` applies exactly it.

A saved plan is the reviewed plan as data, so that apply writes what the reviewer read and
nothing else: apply does not compile again, it checks that nothing the plan was made from has
changed and writes the recorded bytes. Like Terraform's saved plans, it belongs to one compiler
build and one state of the tree; its own format, apart from the `--format json` view
(`plan_views`), which is for reading and holds no contents.

The file is JSON, UTF-8, keys in the fixed order below, two-space indent, a final newline, and
nothing that varies between runs (no time, no absolute path unless the spec was named by one):
the same inputs give the same bytes. Format version 2::

    {
      "format": "mlc-plan",
      "format_version": 2,
      "compiler_version": "0.1.0",
      "compiler_fingerprint": "<sha256 hex of the compiler build, see fingerprint>",
      "force": false,             # --force given to `mlc plan`: the conflicts below are overwritten
      "images": ["train=<repo>@sha256:<64 hex>", ...],  # the --image pins given, in order
      "specs": [
        {
          "spec": "mlproject.yaml",  # the spec file, relative to where `mlc plan` ran
          "project": "churn",
          "spec_digest": "<sha256 hex of the spec's data, as in mlc.lock>",
          "inputs": {                # sha256 hex of each file's bytes (null: absent), by name in
            "mlproject.yaml": "<hex>",  # the spec's folder: what compiling read
            "mlc.images.lock": null
          },
          "repository_top": ".",     # the git top level (where `.github/` goes), from the spec's folder
          "lock": "<text of the mlc.lock apply writes last>",
          "journal": "<text of the mlc.lock.intent apply writes first>",
          "runtime_wheel": "wheels/mlc-0.1.0-py3-none-any.whl"|null,  # a change the lock does not
                                     # record: the running compiler's wheel, created where missing
          "changes": [               # every path of the plan, unchanged ones too; mlc.lock last
            {
              "path": "deploy/production/serve.yaml",  # relative to the spec's folder
              "action": "create|update|delete|conflict|unchanged",
              "before_sha256": "<hex of the bytes on disk when planned>|null (absent)",
              "after_sha256": "<hex of the bytes apply writes>|null (apply deletes the path)",
              "reason": "<why a conflict is one; else empty>",
              "content": "<the new content, UTF-8 text>|null (nothing to write)",
              "content_base64": "<the runtime wheel's bytes>"  # instead of content, for it alone
            }
          ]
        }
      ],
      "checksum": "<sha256 hex of every field above as canonical JSON: sorted keys, no spaces, UTF-8>"
    }

Only format version 2 is read: any change to the format is a new version (a saved plan lives
for one review, and only the build that wrote it applies it).

Reading refuses, with one line naming the file: not JSON or not a plan; another format version;
a checksum that does not match (truncated, corrupted, edited by hand); a content whose sha256
is not its `after_sha256`; a path that leaves its root; another compiler build. The checksum
catches accidents and casual edits, not an adversary (anyone can recompute it): the protection
is that apply writes nothing the plan does not show, into a tree checked to be as planned.

What apply checks before writing anything (`apply_specs.apply_saved_plan`): every input file
and the repository top as recorded, then every path (unchanged ones, `mlc.lock` and the
journal included) still at its `before_sha256`. Any difference: "Saved plan is stale", nothing
written. A plan applied already is therefore refused as stale too (said so when the tree holds
exactly its new contents), except a plan with no changes, which applies as a no-op any time
the tree still matches it.

Conflicts (hand-edited or foreign files) are recorded with their action; a plan that has any
is only saved when `mlc plan` was given `--force`, recorded in `force`, and apply then
overwrites exactly the contents the reviewer saw. Without `--force` nothing is saved.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from mlc.compiler.errors import MlcError
from mlc.compiler.plan.changes import Action, Change, Plan
from mlc.compiler.plan.lock import INTENT_FILENAME, LOCK_FILENAME, LockError, lock_to_bytes, parse_lock, sha256_hex

if TYPE_CHECKING:
    from mlc.compiler.plan.specs import PlanRun

PLAN_FILE_FORMAT = "mlc-plan"
PLAN_FILE_FORMAT_VERSION = 2
_SHA = re.compile(r"[0-9a-f]{64}")
_AGAIN = "run `mlc plan --out` again"


class PlanFileError(MlcError):
    """A saved plan cannot be written or used; the message names the file and what to do."""


@dataclass(frozen=True)
class SavedSpec:
    """One spec's part of a saved plan: the plan (with new contents) and what it was made from."""

    plan: Plan
    inputs: Mapping[str, str | None]  # file name in the spec's folder -> sha256 hex (None: absent)
    repository_top: str  # the git top level, relative to the spec's folder (POSIX)


@dataclass(frozen=True)
class SavedPlan:
    """What `mlc plan --out` saves and `mlc apply PLANFILE` applies."""

    compiler_version: str
    compiler_fingerprint: str
    force: bool
    images: tuple[str, ...]
    specs: tuple[SavedSpec, ...]
    format_version: int = PLAN_FILE_FORMAT_VERSION

    @property
    def plans(self) -> list[Plan]:
        """The plans, in spec order."""
        return [s.plan for s in self.specs]


def save_plan_run(run: PlanRun, images: Sequence[str], force: bool) -> SavedPlan:
    """The saved plan of a successful `plan_specs` run; `images` are the --image arguments.
    Raises `PlanFileError` when the run has conflicts and not `force`."""
    from mlc.compiler import __version__
    from mlc.compiler.backends import BACKEND_MODULES
    from mlc.compiler.fingerprint import compiler_fingerprint

    refusal = conflicts_refusal(run.plans)
    if refusal and not force:
        raise PlanFileError(refusal)
    specs = tuple(
        SavedSpec(spec.plan, dict(spec.inputs), Path(os.path.relpath(spec.tree.repo_root, spec.tree.root)).as_posix())
        for spec in run.specs
    )
    return SavedPlan(__version__, compiler_fingerprint(BACKEND_MODULES), force, tuple(images), specs)


def saved_plan_to_bytes(saved: SavedPlan) -> bytes:
    """The file content of a saved plan (see the module docstring); the same plan, the same bytes.
    Raises `PlanFileError` when a new content is not UTF-8 text."""
    body: dict[str, Any] = {
        "format": PLAN_FILE_FORMAT,
        "format_version": saved.format_version,
        "compiler_version": saved.compiler_version,
        "compiler_fingerprint": saved.compiler_fingerprint,
        "force": saved.force,
        "images": list(saved.images),
        "specs": [_spec_to_data(spec) for spec in saved.specs],
    }
    body["checksum"] = _checksum(body)
    return (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def parse_saved_plan(content: bytes, name: str, fingerprint: str) -> SavedPlan:
    """Read a saved plan's bytes, checking format, integrity and that `fingerprint` (this
    compiler build) wrote it; raises `PlanFileError` (one line, naming `name`)."""
    try:
        data = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise PlanFileError(
            f"{name}: not a saved plan (not JSON; truncated?); {_AGAIN}. "
            "To plan and apply a spec, use `mlc apply -f SPEC`"
        ) from None
    if not isinstance(data, dict) or data.get("format") != PLAN_FILE_FORMAT:
        raise PlanFileError(f'{name}: not a saved plan (no "format": "{PLAN_FILE_FORMAT}"); {_AGAIN}')
    version = data.get("format_version")
    if version != PLAN_FILE_FORMAT_VERSION:
        raise PlanFileError(
            f"{name}: saved plan format_version {version!r} is not the one this mlc reads "
            f"({PLAN_FILE_FORMAT_VERSION}); {_AGAIN} with this mlc"
        )
    recorded = data.pop("checksum", None)
    if recorded != _checksum(data):
        raise PlanFileError(f"{name}: the saved plan is corrupt or was edited (checksum mismatch); {_AGAIN}")
    try:
        saved = SavedPlan(
            compiler_version=_typed(data, "compiler_version", str),
            compiler_fingerprint=_typed(data, "compiler_fingerprint", str),
            force=_typed(data, "force", bool),
            images=tuple(_strings(_typed(data, "images", list), "images")),
            specs=tuple(_spec_from_data(spec) for spec in _typed(data, "specs", list)),
        )
    except (_Invalid, LockError) as exc:
        raise PlanFileError(f"{name}: the saved plan is invalid ({exc}); {_AGAIN}") from None
    if saved.compiler_fingerprint != fingerprint:
        raise PlanFileError(
            f"{name}: written by another mlc build (mlc {saved.compiler_version}, build "
            f"{saved.compiler_fingerprint[:12]}; this is build {fingerprint[:12]}); {_AGAIN} with this mlc"
        )
    return saved


def read_saved_plan(path: Path, display: str) -> SavedPlan:
    """The saved plan at `path`, written by this compiler build; raises `PlanFileError`."""
    from mlc.compiler.backends import BACKEND_MODULES
    from mlc.compiler.fingerprint import compiler_fingerprint

    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise PlanFileError(f"{display}: no such file; write one with `mlc plan --out {display}`") from None
    except OSError as exc:
        raise PlanFileError(f"{display}: cannot read: {exc.strerror}") from None
    return parse_saved_plan(content, display, compiler_fingerprint(BACKEND_MODULES))


def write_saved_plan(path: Path, saved: SavedPlan) -> None:
    """Write the saved plan atomically (old file or new, never a part); raises `PlanFileError`."""
    from mlc.compiler.output_tree import write_atomically

    content = saved_plan_to_bytes(saved)
    try:
        write_atomically(path, content)
    except OSError as exc:
        raise PlanFileError(f"{path}: cannot write the plan: {exc.strerror or exc}") from None


def conflicts_refusal(plans: Sequence[Plan]) -> str | None:
    """Why a plan with conflicts is not saved without --force (None: it has none)."""
    conflicts = [f"{plan.spec}: {change.path}" for plan in plans for change in plan.conflicts]
    if not conflicts:
        return None
    return (
        f"plan not saved: {len(conflicts)} conflict{'s' if len(conflicts) != 1 else ''} "
        f"({'; '.join(conflicts)}). Move the edits into mlproject.yaml, or rerun with --force "
        "to save a plan that overwrites them"
    )


def _checksum(body: Mapping[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _spec_to_data(spec: SavedSpec) -> dict[str, Any]:
    plan = spec.plan
    return {
        "spec": plan.spec,
        "project": plan.project,
        "spec_digest": plan.spec_digest,
        "inputs": dict(sorted(spec.inputs.items())),
        "repository_top": spec.repository_top,
        "lock": _text(lock_to_bytes(plan.lock), LOCK_FILENAME),
        "journal": _text(plan.intent, INTENT_FILENAME),
        "runtime_wheel": plan.runtime_wheel,
        "changes": [_change_to_data(change, change.path == plan.runtime_wheel) for change in plan.changes],
    }


def _change_to_data(change: Change, binary: bool = False) -> dict[str, Any]:
    writes = change.action is not Action.UNCHANGED and change.after_sha is not None
    if writes and change.after is None:  # the plan always carries what it writes
        raise PlanFileError(f"{change.path}: the plan has no content to save (a bug in mlc)")
    data = {
        "path": change.path,
        "action": change.action.value,
        "before_sha256": change.before_sha,
        "after_sha256": change.after_sha,
        "reason": change.reason,
    }
    if binary and writes and change.after is not None:
        return {**data, "content": None, "content_base64": base64.b64encode(change.after).decode("ascii")}
    return {**data, "content": _text(change.after, change.path) if writes and change.after is not None else None}


def _text(content: bytes, path: str) -> str:
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        raise PlanFileError(f"{path}: not UTF-8 text; a saved plan holds text files only") from None


class _Invalid(Exception):
    """A field of a saved plan has the wrong shape (checksum right, content wrong: a bug or a
    deliberate edit)."""


def _typed(data: Mapping[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        raise _Invalid(f"{key} must be a {kind.__name__}")
    return value


def _strings(values: list[Any], key: str) -> list[str]:
    if not all(isinstance(v, str) for v in values):
        raise _Invalid(f"{key} must be a list of strings")
    return values


def _sha_or_none(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not (isinstance(value, str) and _SHA.fullmatch(value)):
        raise _Invalid(f"{key} must be a sha256 hex or null")
    return value


def _relative_path(value: str, what: str) -> str:
    pure = PurePosixPath(value)
    if not value or pure.is_absolute() or "\\" in value or any(p in ("..", ".") for p in value.split("/")):
        raise _Invalid(f"{what} {value!r} must be a relative path inside the spec's folder")
    return value


def _spec_from_data(data: Any) -> SavedSpec:
    if not isinstance(data, dict):
        raise _Invalid("specs must hold objects")
    inputs = _typed(data, "inputs", dict)
    for input_name in inputs:
        _relative_path(input_name, "input")
        _sha_or_none(inputs, input_name)
    top = _typed(data, "repository_top", str)
    if not (top == "." or re.fullmatch(r"\.\.(/\.\.)*", top)):
        raise _Invalid(f"repository_top {top!r} must be '.' or '..' steps")
    changes = tuple(_change_from_data(c) for c in _typed(data, "changes", list))
    paths = [c.path for c in changes]
    if len(set(paths)) != len(paths):
        raise _Invalid("a path appears twice in changes")
    lock_changes = [c for c in changes if c.path == LOCK_FILENAME]
    lock = _typed(data, "lock", str).encode("utf-8")
    if len(lock_changes) != 1 or lock_changes[0].after_sha != sha256_hex(lock):
        raise _Invalid(f"lock does not match the {LOCK_FILENAME} change")
    new_lock = parse_lock(lock, LOCK_FILENAME)
    written = {c.path: c.after_sha for c in changes if c.after_sha and c.path not in (LOCK_FILENAME, INTENT_FILENAME)}
    wheel = data.get("runtime_wheel")
    if wheel is not None:
        wheel_changes = [c for c in changes if c.path == wheel]
        if not isinstance(wheel, str) or len(wheel_changes) != 1 or wheel_changes[0].action is not Action.CREATE:
            raise _Invalid("runtime_wheel must name a path the plan creates")
        written.pop(wheel)
    if written != dict(new_lock.files):
        raise _Invalid("the files in changes are not the files the new lock records")
    plan = Plan(
        spec=_typed(data, "spec", str),
        project=_typed(data, "project", str),
        spec_digest=_typed(data, "spec_digest", str),
        changes=changes,
        lock=new_lock,
        intent=_typed(data, "journal", str).encode("utf-8"),
        runtime_wheel=wheel,
    )
    return SavedSpec(plan, dict(inputs), top)


def _decoded(encoded: object, path: str) -> bytes | None:
    if encoded is None:
        return None
    if not isinstance(encoded, str):
        raise _Invalid(f"{path}: content_base64 must be a str")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise _Invalid(f"{path}: content_base64 is not base64") from None


def _change_from_data(data: Any) -> Change:
    if not isinstance(data, dict):
        raise _Invalid("changes must hold objects")
    path = _relative_path(_typed(data, "path", str), "path")
    try:
        action = Action(data.get("action"))
    except ValueError:
        raise _Invalid(f"{path}: unknown action {data.get('action')!r}") from None
    before, after = _sha_or_none(data, "before_sha256"), _sha_or_none(data, "after_sha256")
    content = data.get("content")
    encoded = data.get("content_base64")
    writes = action is not Action.UNCHANGED and after is not None
    if action is Action.UNCHANGED and before != after:
        raise _Invalid(f"{path}: an unchanged path must keep its sha256")
    given = content is not None or encoded is not None
    if given != writes or (content is not None and encoded is not None) or not isinstance(content, str | None):
        raise _Invalid(f"{path}: content must be given exactly when the path is written")
    new = content.encode("utf-8") if isinstance(content, str) else _decoded(encoded, path)
    if new is not None and sha256_hex(new) != after:
        raise _Invalid(f"{path}: content does not match its after_sha256")
    return Change(action, path, before, after, _typed(data, "reason", str), None, new)
