"""Changes touch only what they change: an edit rewrites the artifacts that depend on it, no more.

Every file's header digest is its own content's, every resource's version label its own digest,
each image's tag what it is built from: a training parameter no longer rewrote 35 files and
changed the serve image's tag (which rolls serving for an edit that does not touch it).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlc.compiler.pipeline import compile_spec_file
from spec_fixtures import REPO_ROOT

CHURN = REPO_ROOT / "examples" / "churn"


def compiled(tmp_path: Path, edit: tuple[str, str] | None = None) -> dict[str, bytes]:
    project = tmp_path / (f"edited-{abs(hash(edit))}" if edit else "original")
    shutil.copytree(CHURN, project, ignore=shutil.ignore_patterns(".mlc", "deploy"))
    spec = project / "mlproject.yaml"
    if edit is not None:
        old, new = edit
        text = spec.read_text()
        assert text.count(old) == 1, old
        spec.write_text(text.replace(old, new))
    result = compile_spec_file(spec)
    assert result.ok, [d.render() for d in result.result.diagnostics]
    return {artifact.path: artifact.content for artifact in result.artifacts}


def changed_paths(before: dict[str, bytes], after: dict[str, bytes]) -> set[str]:
    return {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}


def test_a_training_parameter_changes_only_the_training_job_and_the_runtime_config(tmp_path: Path) -> None:
    before = compiled(tmp_path)
    after = compiled(tmp_path, ("lr: 0.05", "lr: 0.01"))
    changed = changed_paths(before, after)
    kinds = {Path(path).name.split("-")[0] for path in changed}
    # The Job is renamed (its pod template is immutable), so its folder's kustomization lists the new name.
    assert kinds == {"configmap", "job", "kustomization.yaml"}, sorted(changed)
    assert all(path.startswith(("deploy/staging/", "deploy/production/")) for path in changed)
    serving = [path for path in before if "serve" in path or "rollout" in path or path.startswith(".github/")]
    assert serving and not set(serving) & changed


def test_a_serving_edit_leaves_training_and_the_images_alone(tmp_path: Path) -> None:
    before = compiled(tmp_path)
    after = compiled(
        tmp_path,
        ("abort_if: {error_rate: 0.02, latency_p95_ms: 120}", "abort_if: {error_rate: 0.05, latency_p95_ms: 120}"),
    )
    changed = changed_paths(before, after)
    # The runtime config records the spec's digest (the lineage every MLflow run logs): it is
    # the one file besides the canary's analysis that a serving edit rewrites. No pod reads it
    # again for that: a ConfigMap edit restarts nothing.
    assert changed == {
        "deploy/production/analysistemplate-churn-serve-canary.yaml",
        "deploy/production/configmap-churn-runtime-config.yaml",
        "deploy/staging/configmap-churn-runtime-config.yaml",
    }, sorted(changed)


@pytest.mark.parametrize("role", ["train", "serve"])
def test_an_image_tag_follows_what_the_image_is_built_from(tmp_path: Path, role: str) -> None:
    before = compiled(tmp_path)
    after = compiled(tmp_path, ("lr: 0.05", "lr: 0.01"))
    image = f"ghcr.io/acme/churn-{role}:"

    def tags(artifacts: dict[str, bytes]) -> set[str]:
        return {
            line.split(image, 1)[1].strip().strip('"')
            for content in artifacts.values()
            for line in content.decode().splitlines()
            if image in line
        }

    assert tags(before) == tags(after)  # a parameter is read from the config: no image changes
    rebuilt = compiled(tmp_path, ('python: "3.11"', 'python: "3.12"'))
    assert tags(rebuilt) != tags(before)
