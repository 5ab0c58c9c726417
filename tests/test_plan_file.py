"""Saved plans: `mlc plan --out PLANFILE`, then `mlc apply PLANFILE`, on real git repositories.

The stand-in backend (`plan_backend`) keeps these tests independent of the real backends.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import plan_backend
from mlc.compiler import backends
from mlc.compiler.cli import main, plan_views
from mlc.compiler.errors import ExitCode
from mlc.compiler.fingerprint import compiler_fingerprint
from mlc.compiler.plan import saved as plan_file
from mlc.compiler.plan.lock import INTENT_FILENAME, LOCK_FILENAME, sha256_hex
from plan_fixtures import committed_project_repo, git, init_repo, write_project

DIGEST = "a" * 64
PIN = f"train=ghcr.io/acme/demo-train@sha256:{DIGEST}"
STALE = "error: Saved plan is stale: "


pytestmark = pytest.mark.usefixtures("stand_in_backend")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository whose project files are committed; the working directory."""
    root = committed_project_repo(tmp_path / "repo")
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def clean(repo: Path) -> Path:
    """`repo` after a first plain apply: nothing pending."""
    assert mlc("apply").exit_code == 0
    return repo


@pytest.fixture
def applied(clean: Path) -> Path:
    """`clean` with a spec change pending: every file updated (new spec digest in the
    headers), the two serve files pruned."""
    write_project(clean, replicas=7, serve=False)
    return clean


def mlc(*args: str) -> Result:
    """Run the CLI in-process."""
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` but git's own and saved plans."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts and not p.name.endswith(".plan")
    }


def save(name: str = "saved.plan", *args: str) -> Path:
    """`mlc plan --out NAME ARGS`; the plan file (asserted to exist)."""
    result = mlc("plan", "--out", name, *args)
    assert result.exit_code == 0, result.output + result.stderr
    assert f"Saved the plan to {name}" in result.stderr
    return Path(name).resolve()


def reseal(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Edit a saved plan and recompute its checksum by the documented rule, so that only the
    edit itself can make it refused."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data.pop("checksum")
    edit(data)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    data["checksum"] = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def one_error_line(result: Result) -> str:
    """The only stderr line of a refused command (no traceback, nothing else)."""
    assert result.exit_code == 1, result.output + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output + result.stderr
    return lines[0]


# --- the round trip ---------------------------------------------------------------------------


def test_saved_plan_reaches_the_same_tree_lock_and_output_as_plain_apply(tmp_path: Path, applied: Path) -> None:
    twin = tmp_path / "twin"
    shutil.copytree(applied, twin)
    plan_path = save()
    saved = mlc("apply", str(plan_path))
    assert saved.exit_code == 0, saved.output + saved.stderr
    assert "- deploy/production/serve.yaml" in saved.output
    assert "Apply complete: 7 written, 2 deleted, 0 unchanged." in saved.output

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(twin)
        plain = mlc("apply")
    assert plain.exit_code == 0
    assert saved.output == plain.output
    assert snapshot(applied) == snapshot(twin)
    assert not (applied / "deploy/production/serve.yaml").exists()
    assert mlc("plan", "--detailed-exitcode").output == "No changes. Generated files are up to date.\n"


def test_first_apply_from_a_saved_plan_outside_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    plan_path = save("out/first.plan")  # the folder is created
    assert not (tmp_path / "deploy").exists()  # planning wrote nothing else
    assert mlc("apply", str(plan_path)).exit_code == 0
    assert (tmp_path / ".github/workflows/demo-pr.yml").exists()  # the top level is the spec's folder
    assert mlc("plan", "--detailed-exitcode").exit_code == 0


def test_apply_plan_file_does_not_compile(applied: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan_path = save()
    expected = (applied / "saved.plan").read_bytes()
    calls: list[int] = []

    def no_emit(environments):  # type: ignore[no-untyped-def]
        calls.append(1)
        raise AssertionError("apply PLANFILE compiled the spec")

    monkeypatch.setattr(plan_backend, "emit", no_emit)
    result = mlc("apply", str(plan_path))
    assert result.exit_code == 0, result.output + result.stderr
    assert calls == []
    assert not (applied / "deploy/staging/serve.yaml").exists()
    assert b"replicas" not in (applied / "deploy/staging/config.yaml").read_bytes()
    assert (applied / "saved.plan").read_bytes() == expected  # applying leaves the plan file as it was


def test_plan_file_bytes_are_deterministic_and_hold_no_absolute_path(tmp_path: Path, applied: Path) -> None:
    first = save("one.plan", "--image", f"train=ghcr.io/acme/demo-train@sha256:{DIGEST}").read_bytes()
    second = save("two.plan", "--image", f"train=ghcr.io/acme/demo-train@sha256:{DIGEST}").read_bytes()
    assert first == second
    twin = tmp_path / "elsewhere" / "copy"
    shutil.copytree(applied, twin, ignore=shutil.ignore_patterns("*.plan"))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(twin)
        third = save("three.plan", "--image", f"train=ghcr.io/acme/demo-train@sha256:{DIGEST}").read_bytes()
    assert third == first
    assert str(tmp_path).encode() not in first


def test_plan_file_is_the_documented_format(clean: Path) -> None:
    data = json.loads(save("saved.plan", "--image", PIN).read_text(encoding="utf-8"))
    assert list(data) == [
        "format",
        "format_version",
        "compiler_version",
        "compiler_fingerprint",
        "force",
        "images",
        "specs",
        "checksum",
    ]
    assert (data["format"], data["format_version"], data["force"]) == ("mlc-plan", 2, False)
    assert data["compiler_fingerprint"] == compiler_fingerprint(backends.BACKEND_MODULES)
    assert data["images"] == [PIN]
    (spec,) = data["specs"]
    assert list(spec) == [
        "spec",
        "project",
        "spec_digest",
        "inputs",
        "repository_top",
        "lock",
        "journal",
        "runtime_wheel",
        "changes",
    ]
    assert spec["spec"] == "mlproject.yaml" and spec["repository_top"] == "."
    assert spec["inputs"] == {
        "mlc.images.lock": None,
        "mlproject.yaml": sha256_hex((clean / "mlproject.yaml").read_bytes()),
    }
    assert json.loads(spec["lock"])["images"] == {"train": PIN.removeprefix("train=")}
    actions = {c["path"]: c["action"] for c in spec["changes"]}
    assert list(actions)[-1] == LOCK_FILENAME
    assert actions == {
        ".github/workflows/demo-pr.yml": "unchanged",
        "deploy/production/config.yaml": "unchanged",
        "deploy/production/serve.yaml": "unchanged",
        "deploy/production/train.yaml": "update",
        "deploy/staging/config.yaml": "unchanged",
        "deploy/staging/serve.yaml": "unchanged",
        "deploy/staging/train.yaml": "update",
        "train.Dockerfile": "unchanged",
        LOCK_FILENAME: "update",
    }
    by_path = {c["path"]: c for c in spec["changes"]}
    assert by_path[LOCK_FILENAME]["content"] == spec["lock"]
    update = by_path["deploy/staging/train.yaml"]
    assert update["before_sha256"] == sha256_hex((clean / "deploy/staging/train.yaml").read_bytes())
    assert update["content"].endswith(f"image: {PIN.removeprefix('train=')}\n")
    unchanged = by_path["train.Dockerfile"]
    assert unchanged["content"] is None
    assert (
        unchanged["before_sha256"] == unchanged["after_sha256"] == sha256_hex((clean / "train.Dockerfile").read_bytes())
    )
    for change in spec["changes"]:
        if change["content"] is not None:
            assert sha256_hex(change["content"].encode()) == change["after_sha256"]


def test_plan_file_records_deletions_without_content(applied: Path) -> None:
    spec = json.loads(save().read_text(encoding="utf-8"))["specs"][0]
    deleted = next(c for c in spec["changes"] if c["path"] == "deploy/production/serve.yaml")
    assert (deleted["action"], deleted["after_sha256"], deleted["content"]) == ("delete", None, None)
    assert deleted["before_sha256"] == sha256_hex((applied / "deploy/production/serve.yaml").read_bytes())


def test_format_is_documented_beside_the_json_view() -> None:
    doc = plan_file.__doc__ or ""
    for key in ("compiler_fingerprint", "repository_top", "before_sha256", "content", "checksum", "journal"):
        assert f'"{key}"' in doc, key
    assert "compiler/plan/saved.py" in (plan_views.__doc__ or "")
    assert "compiler/plan/saved.py" in (Path(__file__).parents[1] / "README.md").read_text()


# --- what a saved plan may hold -----------------------------------------------------------


def test_plan_with_errors_writes_no_plan_file(repo: Path) -> None:
    spec = repo / "mlproject.yaml"
    spec.write_text(spec.read_text().replace("train:\n  entrypoint", "trian:\n  entrypoint"))
    result = mlc("plan", "--out", "saved.plan")
    assert result.exit_code == 1
    assert "error:" in result.stderr
    assert not (repo / "saved.plan").exists()


def test_failed_plan_leaves_an_existing_plan_file_alone(applied: Path) -> None:
    plan_path = save()
    before = plan_path.read_bytes()
    (applied / "train.Dockerfile").write_text("FROM scratch\n")  # a conflict: not saved
    assert mlc("plan", "--out", "saved.plan").exit_code == 1
    assert plan_path.read_bytes() == before


def test_conflicts_are_saved_only_with_force_and_then_overwritten(applied: Path) -> None:
    edited = applied / "deploy/staging/config.yaml"
    edited.write_text(edited.read_text() + "# my tweak\n")

    refused = mlc("plan", "--out", "saved.plan", "--detailed-exitcode")
    assert refused.exit_code == 1
    assert "! deploy/staging/config.yaml: edited by hand" in refused.output  # the view still shows it
    assert "plan not saved: 1 conflict (mlproject.yaml: deploy/staging/config.yaml)" in refused.stderr
    assert "--force" in refused.stderr
    assert not (applied / "saved.plan").exists()
    before = snapshot(applied)
    onto_lock = mlc("plan", "--out", "mlc.lock")
    assert onto_lock.exit_code == ExitCode.USAGE and "is a file mlc generates" in onto_lock.stderr
    assert snapshot(applied) == before

    plan_path = save("saved.plan", "--force")
    data = json.loads(plan_path.read_text())
    assert data["force"] is True
    conflict = next(c for c in data["specs"][0]["changes"] if c["path"] == "deploy/staging/config.yaml")
    assert conflict["action"] == "conflict" and conflict["reason"].startswith("edited by hand")
    assert conflict["before_sha256"] == sha256_hex(edited.read_bytes())

    result = mlc("apply", str(plan_path))
    assert result.exit_code == 0, result.output + result.stderr
    assert "# my tweak" not in edited.read_text()
    assert mlc("plan", "--detailed-exitcode").exit_code == 0


def test_forced_plan_replaces_a_link_never_its_target(clean: Path, tmp_path: Path) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep\n")
    (clean / "train.Dockerfile").unlink()
    os.symlink(target, clean / "train.Dockerfile")
    plan_path = save("saved.plan", "--force")
    assert mlc("apply", str(plan_path)).exit_code == 0
    assert target.read_text() == "keep\n"
    assert not (clean / "train.Dockerfile").is_symlink()
    assert mlc("plan", "--detailed-exitcode").exit_code == 0


def test_forced_plan_is_stale_when_the_hand_edit_changes_again(applied: Path) -> None:
    edited = applied / "deploy/staging/config.yaml"
    edited.write_text(edited.read_text() + "# my tweak\n")
    plan_path = save("saved.plan", "--force")
    edited.write_text(edited.read_text() + "# another tweak the reviewer never saw\n")
    line = one_error_line(mlc("apply", str(plan_path)))
    assert line.startswith(STALE + "deploy/staging/config.yaml: changed since the plan was made")
    assert "another tweak" in edited.read_text()


def test_plan_without_changes_applies_as_a_no_op_any_number_of_times(repo: Path) -> None:
    assert mlc("apply", "--commit").exit_code == 0
    head = git(repo, "rev-parse", "HEAD")
    plan_path = save()
    before = snapshot(repo)
    for _ in range(2):
        result = mlc("apply", str(plan_path), "--commit")
        assert result.exit_code == 0, result.output + result.stderr
        assert result.output == "No changes. Generated files are up to date.\n"
    assert snapshot(repo) == before
    assert git(repo, "rev-parse", "HEAD") == head


def test_plan_without_changes_is_stale_after_a_spec_edit(clean: Path) -> None:
    plan_path = save()
    _edit_spec_comment_only(clean)
    line = one_error_line(mlc("apply", str(plan_path)))
    assert line.startswith(f"{STALE}mlproject.yaml: changed since the plan was made (other bytes)"), line


def test_detailed_exitcode_and_json_view_with_out(applied: Path) -> None:
    result = mlc("plan", "--out", "saved.plan", "--detailed-exitcode", "--format", "json")
    assert result.exit_code == 2
    view = json.loads(result.stdout)  # the note about the saved file goes to stderr
    saved = json.loads((applied / "saved.plan").read_text())
    assert view["plans"][0]["lock_digest"] == saved["specs"][0]["changes"][-1]["after_sha256"]


# --- stale plans --------------------------------------------------------------------------


def _edit_planned_update(root: Path) -> str:
    (root / "deploy/production/train.yaml").write_text("edited\n")
    return "deploy/production/train.yaml"


def _delete_planned_update(root: Path) -> str:
    (root / "deploy/staging/train.yaml").unlink()
    return "deploy/staging/train.yaml"


def _edit_unchanged_tracked(root: Path) -> str:
    (root / "train.Dockerfile").write_text("FROM scratch\n")
    return "train.Dockerfile"


def _delete_unchanged_tracked(root: Path) -> str:
    (root / ".github/workflows/demo-pr.yml").unlink()
    return ".github/workflows/demo-pr.yml"


def _edit_spec_comment_only(root: Path) -> str:
    spec = root / "mlproject.yaml"
    spec.write_text(spec.read_text() + "# the same data, other bytes\n")
    return "mlproject.yaml"


def _add_images_lock(root: Path) -> str:
    (root / "mlc.images.lock").write_text('{"format_version": 1, "images": {}}\n')
    return "mlc.images.lock"


def _edit_lock(root: Path) -> str:
    lock = root / LOCK_FILENAME
    lock.write_text(lock.read_text().replace('"images": {}', '"images": {"serve": "x"}'))
    return LOCK_FILENAME


def _add_journal(root: Path) -> str:
    (root / INTENT_FILENAME).write_text('{"format_version": 1, "files": {}}\n')
    return INTENT_FILENAME


@pytest.mark.parametrize(
    "mutate",
    [
        _edit_planned_update,
        _delete_planned_update,
        _edit_unchanged_tracked,
        _delete_unchanged_tracked,
        _edit_spec_comment_only,
        _add_images_lock,
        _edit_lock,
        _add_journal,
    ],
)
def test_stale_plan_is_refused_naming_the_file_and_changes_nothing(clean: Path, mutate: Callable[[Path], str]) -> None:
    plan_path = save("saved.plan", "--image", PIN)  # updates the train files, the rest unchanged
    stale_path = mutate(clean)
    before = snapshot(clean)
    line = one_error_line(mlc("apply", str(plan_path)))
    assert line.startswith(f"{STALE}{stale_path}: changed since the plan was made"), line
    assert line.endswith("run `mlc plan --out` again and review it")
    assert snapshot(clean) == before


def test_stale_after_a_hand_edit_of_a_file_planned_for_deletion(applied: Path) -> None:
    plan_path = save()
    (applied / "deploy/staging/serve.yaml").write_text("edited\n")
    before = snapshot(applied)
    line = one_error_line(mlc("apply", str(plan_path)))
    assert line.startswith(f"{STALE}deploy/staging/serve.yaml: changed since the plan was made (planned: sha256:")
    assert snapshot(applied) == before


def test_stale_in_one_spec_writes_nothing_in_any(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = init_repo(tmp_path / "mono")
    for name in ("alpha", "beta"):
        (root / name).mkdir()
        write_project(root / name, name=name)
    monkeypatch.chdir(root)
    plan_path = save("mono.plan", "-f", ".")
    (root / "beta/deploy/staging").mkdir(parents=True)
    (root / "beta/deploy/staging/config.yaml").write_text("mine\n")  # a path planned as absent
    line = one_error_line(mlc("apply", str(plan_path)))
    assert line.startswith(f"{STALE}beta/deploy/staging/config.yaml: changed since the plan was made")
    assert "planned: absent" in line
    assert not (root / "alpha/deploy").exists() and not (root / ".github").exists()
    (root / "beta/deploy").joinpath("staging/config.yaml").unlink()
    assert mlc("apply", str(plan_path)).exit_code == 0  # the tree is as planned again
    assert (root / ".github/workflows/alpha-pr.yml").exists()
    assert (root / "beta/deploy/staging/config.yaml").exists()


def test_applied_plan_is_refused_as_already_applied(applied: Path) -> None:
    plan_path = save()
    assert mlc("apply", str(plan_path)).exit_code == 0
    after = snapshot(applied)
    line = one_error_line(mlc("apply", str(plan_path)))
    assert line.startswith(f"{STALE}it was applied already")
    assert snapshot(applied) == after


def test_plan_applied_by_plain_apply_is_stale_too(applied: Path) -> None:
    plan_path = save()
    assert mlc("apply").exit_code == 0
    assert one_error_line(mlc("apply", str(plan_path))).startswith(f"{STALE}it was applied already")


def test_apply_plan_file_from_another_directory_is_refused(applied: Path, tmp_path: Path) -> None:
    plan_path = save()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        line = one_error_line(mlc("apply", str(plan_path)))
    assert line.startswith(f"{STALE}mlproject.yaml: no such spec file here")
    assert (applied / "deploy/production/serve.yaml").exists()


# --- refused plan files -------------------------------------------------------------------


def _flip_content(data: dict[str, Any]) -> None:
    change = next(c for c in data["specs"][0]["changes"] if c["content"] and c["path"] != LOCK_FILENAME)
    change["content"] += "# added after review\n"


def _flip_content_and_sha(data: dict[str, Any]) -> None:
    change = next(c for c in data["specs"][0]["changes"] if c["content"] and c["path"] != LOCK_FILENAME)
    change["content"] += "# added after review\n"
    change["after_sha256"] = sha256_hex(change["content"].encode())


def _escape_root(data: dict[str, Any]) -> None:
    change = next(c for c in data["specs"][0]["changes"] if c["content"] and c["path"] != LOCK_FILENAME)
    change["path"] = "../outside.yaml"


def _other_version(data: dict[str, Any]) -> None:
    data["format_version"] = 3


def _other_build(data: dict[str, Any]) -> None:
    data["compiler_fingerprint"] = "0" * 64


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (_flip_content, r"the saved plan is invalid \(\S+: content does not match its after_sha256\)"),
        (_flip_content_and_sha, r"the saved plan is invalid \(the files in changes are not the files the new lock"),
        (_escape_root, r"the saved plan is invalid \(path '\.\./outside\.yaml' must be a relative path"),
        (_other_version, r"saved plan format_version 3 is not the one this mlc reads \(2\)"),
        (_other_build, r"written by another mlc build \(mlc 0\.1\.0, build 000000000000; this is build [0-9a-f]{12}\)"),
    ],
)
def test_edited_plan_file_is_refused(applied: Path, edit: Callable[[dict[str, Any]], None], expected: str) -> None:
    plan_path = save()
    reseal(plan_path, edit)
    before = snapshot(applied)
    line = one_error_line(mlc("apply", str(plan_path)))
    assert re.search(expected, line), line
    assert line.startswith("error: saved.plan: ")
    assert snapshot(applied) == before
    assert not (applied.parent / "outside.yaml").exists()


WHEEL = "wheels/mlc-0.1.0-py3-none-any.whl"


def test_a_saved_plan_carries_the_runtime_wheel_it_creates(repo: Path) -> None:
    from mlc.compiler.plan.runtime_wheel import wheel_bytes

    data = json.loads(save().read_text(encoding="utf-8"))
    (spec,) = data["specs"]
    assert spec["runtime_wheel"] == WHEEL
    change = next(c for c in spec["changes"] if c["path"] == WHEEL)
    assert (change["action"], change["content"]) == ("create", None)
    content = base64.b64decode(change["content_base64"])
    assert content == wheel_bytes("0.1.0") and sha256_hex(content) == change["after_sha256"]
    assert WHEEL not in json.loads(spec["lock"])["files"]  # `mlc vendor` may rewrite it: not locked

    applied = mlc("apply", "saved.plan")
    assert applied.exit_code == 0, applied.output + applied.stderr
    assert (repo / WHEEL).read_bytes() == content
    assert mlc("plan", "--detailed-exitcode").exit_code == 0  # the wheel is there: nothing left


def _wheel_bytes_flipped(data: dict[str, Any]) -> None:
    change = next(c for c in data["specs"][0]["changes"] if c["path"] == WHEEL)
    raw = bytearray(base64.b64decode(change["content_base64"]))
    raw[100] ^= 1
    change["content_base64"] = base64.b64encode(bytes(raw)).decode()


def _wheel_named_elsewhere(data: dict[str, Any]) -> None:
    data["specs"][0]["runtime_wheel"] = "wheels/mlc-9.9.9-py3-none-any.whl"


def _wheel_given_twice(data: dict[str, Any]) -> None:
    change = next(c for c in data["specs"][0]["changes"] if c["path"] == WHEEL)
    change["content"] = "text too"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (_wheel_bytes_flipped, rf"\({WHEEL}: content does not match its after_sha256\)"),
        (_wheel_named_elsewhere, r"\(runtime_wheel must name a path the plan creates\)"),
        (_wheel_given_twice, rf"\({WHEEL}: content must be given exactly when the path is written\)"),
    ],
)
def test_an_edited_runtime_wheel_in_a_saved_plan_is_refused(
    repo: Path, edit: Callable[[dict[str, Any]], None], expected: str
) -> None:
    plan_path = save()
    reseal(plan_path, edit)
    before = snapshot(repo)
    line = one_error_line(mlc("apply", str(plan_path)))
    assert re.search(expected, line), line
    assert snapshot(repo) == before and not (repo / WHEEL).exists()


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda b: b[: len(b) // 2], "not a saved plan (not JSON; truncated?)"),
        (lambda b: b.replace(b"namespace: ", b"namespace:  ", 1), "corrupt or was edited (checksum mismatch)"),
        (lambda b: b.replace(b'"force": false', b'"force": true'), "corrupt or was edited (checksum mismatch)"),
        (lambda b: b"\xff\xfe" + b, "not a saved plan (not JSON; truncated?)"),
        (lambda b: b"[]\n", 'not a saved plan (no "format": "mlc-plan")'),
    ],
)
def test_damaged_plan_file_is_refused(applied: Path, damage: Callable[[bytes], bytes], expected: str) -> None:
    plan_path = save()
    plan_path.write_bytes(damage(plan_path.read_bytes()))
    before = snapshot(applied)
    line = one_error_line(mlc("apply", str(plan_path)))
    assert line.startswith("error: saved.plan: ") and expected in line, line
    assert snapshot(applied) == before


def test_a_spec_given_as_plan_file_is_refused_with_a_hint(applied: Path) -> None:
    line = one_error_line(mlc("apply", "mlproject.yaml"))
    assert "not a saved plan" in line and "mlc apply -f SPEC" in line


def test_missing_plan_file_is_an_error(applied: Path) -> None:
    line = one_error_line(mlc("apply", "nope.plan"))
    assert line == "error: nope.plan: no such file; write one with `mlc plan --out nope.plan`"


# --- usage errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        ["-f", "mlproject.yaml"],
        ["--file", "."],
        ["--image", f"train=ghcr.io/acme/demo-train@sha256:{DIGEST}"],
        ["--force"],
        ["--env", "staging"],
    ],
)
def test_options_fixed_by_the_plan_are_usage_errors_with_plan_file(applied: Path, extra: list[str]) -> None:
    plan_path = save()
    before = snapshot(applied)
    result = mlc("apply", str(plan_path), *extra)
    assert result.exit_code == ExitCode.USAGE, result.output + result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(applied) == before


def test_plan_usage_errors(applied: Path) -> None:
    force = mlc("plan", "--force")
    assert force.exit_code == ExitCode.USAGE and "--force only applies to a saved plan" in force.stderr
    env = mlc("plan", "--out", "saved.plan", "--env", "staging")
    assert env.exit_code == ExitCode.USAGE and "--env cannot be used with --out" in env.stderr
    assert not (applied / "saved.plan").exists()


def test_apply_help_documents_plan_file() -> None:
    text = mlc("apply", "--help").output
    assert "[PLANFILE]" in text and "mlc plan --out PLANFILE" in text and "stale" in text


# --- commit -------------------------------------------------------------------------------


def test_commit_commits_exactly_the_planned_paths(clean: Path) -> None:
    git(clean, "add", "-A")
    git(clean, "commit", "-q", "-m", "first apply")
    (clean / "README.md").write_text("unrelated, unstaged\n")
    (clean / "requirements.lock").write_text("numpy==2.1.1\n")
    git(clean, "add", "requirements.lock")  # unrelated, staged
    plan_path = save("saved.plan", "--image", PIN)
    result = mlc("apply", str(plan_path), "--commit", "-m", "apply the reviewed plan")
    assert result.exit_code == 0, result.output + result.stderr
    assert "committed " in result.output
    assert git(clean, "log", "-1", "--format=%s").strip() == "apply the reviewed plan"
    committed = set(git(clean, "show", "--name-only", "--format=", "HEAD").split())
    assert committed == {"deploy/production/train.yaml", "deploy/staging/train.yaml", LOCK_FILENAME}
    status = git(clean, "status", "--porcelain").splitlines()
    assert sorted(status) == sorted([" M README.md", "M  requirements.lock", "?? saved.plan"])


def test_commit_records_deletions_with_the_default_message(applied: Path) -> None:
    git(applied, "add", "-A")
    git(applied, "commit", "-q", "-m", "first apply, spec change")
    plan_path = save()
    digest = json.loads(plan_path.read_text())["specs"][0]["spec_digest"]
    assert mlc("apply", str(plan_path), "--commit").exit_code == 0
    assert git(applied, "log", "-1", "--format=%s").strip() == f"mlc: apply generated files (demo sha256:{digest[:12]})"
    show = git(applied, "show", "--name-status", "--format=", "HEAD").splitlines()
    assert "D\tdeploy/staging/serve.yaml" in show and "D\tdeploy/production/serve.yaml" in show
    assert "M\tmlc.lock" in show and len(show) == 9
    assert git(applied, "status", "--porcelain") == "?? saved.plan\n"


# --- interrupted ----------------------------------------------------------------------------

RUNNER = "import plan_backend; plan_backend.install(); from mlc.compiler.cli import main; main()"


def test_killed_apply_of_a_saved_plan_leaves_its_journal_and_recovers(applied: Path) -> None:
    # Subprocesses for both plan and apply: they compute the same build fingerprint.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "MLC_APPLY_TEST_DELAY": "0.3"}
    command = [sys.executable, "-c", RUNNER]
    subprocess.run([*command, "plan", "--out", "saved.plan"], cwd=applied, env=env, check=True, capture_output=True)
    first = applied / ".github/workflows/demo-pr.yml"  # the first path apply writes
    old, lock = first.read_bytes(), (applied / LOCK_FILENAME).read_bytes()
    process = subprocess.Popen([*command, "apply", "saved.plan"], cwd=applied, env=env)
    deadline = time.monotonic() + 30
    while first.read_bytes() == old:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)  # 0.3 s after each file: the lock is seconds away
    process.wait()
    assert (applied / LOCK_FILENAME).read_bytes() == lock
    assert (applied / INTENT_FILENAME).exists()  # cut midway: the saved plan's journal is there

    plan = mlc("plan", "--detailed-exitcode")
    assert plan.exit_code == 2 and "!" not in plan.output, plan.output  # mlc's own writes, not hand edits
    refused = mlc("apply", "saved.plan")
    assert refused.exit_code == 1 and refused.stderr.startswith(STALE)
    assert mlc("apply").exit_code == 0
    assert mlc("plan", "--detailed-exitcode").exit_code == 0
