"""Unit tests of the pure parts: the lock format, image pinning, and build_plan's table."""

from __future__ import annotations

import json

import pytest

from mlc.compiler.artifact import Artifact
from mlc.compiler.output_tree import DiskFile
from mlc.compiler.plan.changes import Action, build_plan
from mlc.compiler.plan.image_pins import ImagePinError, effective_pins, parse_image_pin, pin_images
from mlc.compiler.plan.lock import Lock, LockError, lock_to_bytes, parse_lock, sha256_hex

DIGEST = "c" * 64
REPO = "ghcr.io/acme/churn-train"


def test_lock_round_trips_and_is_canonical() -> None:
    lock = Lock(
        "0.1.0",
        "d" * 64,
        {"b.yaml": "2" * 64, "a.yaml": "1" * 64},
        {"train": f"{REPO}@sha256:{DIGEST}"},
    )
    content = lock_to_bytes(lock)
    assert parse_lock(content) == Lock("0.1.0", "d" * 64, dict(lock.files), dict(lock.images))
    data = json.loads(content)
    assert list(data) == ["format_version", "compiler_version", "spec_digest", "files", "images", "inputs_digest"]
    assert list(data["files"]) == ["a.yaml", "b.yaml"]
    assert content.endswith(b"}\n")


def test_lock_reads_older_files_without_added_fields() -> None:
    old = {"format_version": 1, "compiler_version": "0.1.0", "spec_digest": "x", "files": {}}
    assert parse_lock(json.dumps(old).encode()).images == {}
    assert parse_lock(json.dumps(old).encode()).inputs_digest == ""


@pytest.mark.parametrize(
    "content",
    [
        b"{",
        b"[]",
        b'{"format_version": 2, "compiler_version": "1", "spec_digest": "x"}',
        b'{"format_version": 1, "compiler_version": 1, "spec_digest": "x"}',
    ],
)
def test_bad_locks_raise_lock_error(content: bytes) -> None:
    with pytest.raises(LockError):
        parse_lock(content)


def test_parse_image_pin() -> None:
    pin = parse_image_pin(f"train={REPO}@sha256:{DIGEST}")
    assert (pin.role, pin.repository) == ("train", REPO)
    for bad in (
        f"train={REPO}:v1",
        f"x={REPO}@sha256:{DIGEST}",
        f"train={REPO}@sha256:{DIGEST[:-1]}",
    ):
        with pytest.raises(ImagePinError):
            parse_image_pin(bad)


def test_pin_images_rewrites_whole_references_in_manifests_only() -> None:
    ref = f"{REPO}@sha256:{DIGEST}"
    manifest = (f'a: {REPO}:v1\nb: "{REPO}"\nc: {REPO}@sha256:{"e" * 64}\nd: {REPO}-gpu:v1\ne: x{REPO}:v1\n').encode()
    artifacts = [
        Artifact("deploy/job.yaml", manifest, "k8s"),
        Artifact(".github/workflows/main.yml", f"image: {REPO}:tag\n".encode(), "ci"),
        Artifact("train.Dockerfile", f"# {REPO}:v1\n".encode(), "docker"),
    ]
    job, workflow, dockerfile = pin_images(artifacts, {"train": ref})
    assert job.content.decode().splitlines() == [
        f"a: {ref}",
        f'b: "{ref}"',
        f"c: {ref}",
        f"d: {REPO}-gpu:v1",
        f"e: x{REPO}:v1",
    ]
    assert workflow is artifacts[1] and dockerfile is artifacts[2]
    assert pin_images([job], {"train": ref})[0] is job  # stable: pinning twice changes nothing


def test_effective_pins_keep_only_the_specs_repositories() -> None:
    ours, theirs = f"{REPO}@sha256:{DIGEST}", f"ghcr.io/other/x@sha256:{DIGEST}"
    repos = {"train": {REPO}, "serve": set()}
    assert effective_pins(repos, {"train": ours}, []) == {"train": ours}
    assert effective_pins(repos, {}, [parse_image_pin(f"train={theirs}")]) == {}
    assert effective_pins({"train": set()}, {"train": ours}, []) == {}  # registry changed: dropped


@pytest.mark.parametrize(
    ("produced", "disk", "locked", "expected"),
    [
        (b"new", b"new", None, Action.UNCHANGED),
        (b"new", None, None, Action.CREATE),
        (b"new", None, b"old", Action.CREATE),  # deleted by hand: create again
        (b"new", b"old", b"old", Action.UPDATE),
        (b"new", b"hand", b"old", Action.CONFLICT),
        (b"new", b"mine", None, Action.CONFLICT),  # an unmanaged file is never clobbered
        (None, b"old", b"old", Action.DELETE),
        (None, b"hand", b"old", Action.CONFLICT),
        (None, None, b"old", None),  # already gone: only the lock changes
    ],
)
def test_build_plan_decision_table(
    produced: bytes | None, disk: bytes | None, locked: bytes | None, expected: Action | None
) -> None:
    artifacts = [Artifact("f.yaml", produced, "t")] if produced is not None else []
    lock = Lock("0", "s", {"f.yaml": sha256_hex(locked)} if locked is not None else {})
    plan = build_plan(
        spec="mlproject.yaml",
        project="p",
        artifacts=artifacts,
        on_disk={"f.yaml": DiskFile(disk)},
        lock=lock,
        new_lock=Lock("0", "s", {a.path: sha256_hex(a.content) for a in artifacts}),
    )
    actions = {c.path: c.action for c in plan.changes}
    assert actions.get("f.yaml") == expected
    assert plan.changes[-1].path == "mlc.lock"


def test_intent_makes_a_half_applied_file_an_update_not_a_conflict() -> None:
    common = {"spec": "s", "project": "p", "on_disk": {"f.yaml": DiskFile(b"v2")}}
    lock = Lock("0", "s", {"f.yaml": sha256_hex(b"v1")})
    new_lock = Lock("0", "s", {"f.yaml": sha256_hex(b"v3")})
    artifacts = [Artifact("f.yaml", b"v3", "t")]
    without = build_plan(**common, artifacts=artifacts, lock=lock, new_lock=new_lock)
    assert without.changes[0].action is Action.CONFLICT
    intent = {"f.yaml": {sha256_hex(b"v2")}}
    with_intent = build_plan(**common, artifacts=artifacts, lock=lock, new_lock=new_lock, intent=intent)
    assert with_intent.changes[0].action is Action.UPDATE


@pytest.mark.parametrize("text", ["[]", '"text"', "3", "{}", '{"format_version": 1, "files": []}', "{"])
def test_an_unusable_intent_file_is_a_lock_error(tmp_path, text: str) -> None:
    from mlc.compiler.plan.lock import INTENT_FILENAME, read_intent

    (tmp_path / INTENT_FILENAME).write_text(text)
    with pytest.raises(LockError, match=INTENT_FILENAME):
        read_intent(tmp_path)
