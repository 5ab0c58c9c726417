"""Resolution: derived values computed once, deterministically."""

from __future__ import annotations

from pathlib import Path

from mlc.compiler.pipeline import resolve_spec_file
from spec_fixtures import REPO_ROOT
from test_validate import BASE


def test_churn_example_resolves_every_environment() -> None:
    result = resolve_spec_file(REPO_ROOT / "examples" / "churn" / "mlproject.yaml")
    staging, production = result.resolved
    assert (staging.environment, production.environment) == ("staging", "production")
    assert (staging.namespace, production.namespace) == ("ml-churn-staging", "ml-churn-production")
    assert staging.train_image == "ghcr.io/acme/churn-train"
    assert staging.serve_image == "ghcr.io/acme/churn-serve"
    assert not staging.train_gpu and production.train_gpu  # production trains on an L4
    assert staging.registered_model == "churn-classifier"
    assert staging.autoscale_target == 8
    assert staging.spec_digest == production.spec_digest
    assert staging.training_digest != production.training_digest  # staging trains on CPU
    assert staging.names.training_job == f"churn-train-{staging.training_digest[:8]}"
    assert staging.labels["app.kubernetes.io/instance"] == "churn-staging"
    assert staging.labels["team"] == "growth"
    assert staging.annotations["mlc.dev/environment"] == "staging"


def test_defaults_filled(project) -> None:
    (resolved,) = resolve_spec_file(project(BASE + "serve:\n  autoscale: {on: cpu}\n")).resolved
    assert resolved.namespace == "demo"
    assert resolved.registered_model == "demo"
    assert resolved.tracking_uri == "http://mlflow.mlflow.svc:5000"
    assert resolved.pushgateway == "http://prometheus-pushgateway.monitoring.svc:9091"
    assert resolved.autoscale_target == 70


def test_digest_ignores_comments_and_formatting(project) -> None:
    a = resolve_spec_file(project(BASE)).resolved[0]
    b = resolve_spec_file(
        project("# a comment\n" + BASE.replace("{uri: data/train.csv}", "\n    uri: data/train.csv"))
    ).resolved[0]
    c = resolve_spec_file(project(BASE.replace("demo.model:train", "demo.model:train\n  seed: 1"))).resolved[0]
    assert a.spec_digest == b.spec_digest  # same data: a comment and another layout change nothing
    assert a.spec_digest != c.spec_digest  # one value more: another digest


def test_digest_independent_of_location(tmp_path: Path, project) -> None:
    first = resolve_spec_file(project(BASE)).resolved[0]
    second = resolve_spec_file(project(BASE)).resolved[0]
    assert first == second


def test_every_resolved_field_derives_from_the_spec_or_is_an_edge_input() -> None:
    """Plan skips emit when the spec's data, the edge inputs and the compiler are unchanged:
    a field read from anywhere else would go stale unseen (e.g. `mlc.images.lock` did)."""
    from dataclasses import fields

    from mlc.compiler.resolve.environment import edge_inputs
    from mlc.compiler.resolve.resolved import ResolvedSpec

    from_spec_or_compiler = {
        "spec",
        "environment",
        "namespace",
        "spec_digest",
        "training_digest",
        "compiler_version",
        "names",
        "train_image",
        "serve_image",
        "train_gpu",
        "serve_gpu",
        "registered_model",
        "tracking_uri",
        "pushgateway",
        "labels",
        "annotations",
        "retrains_on_drift",
        "drift_grouping",
        "retrains_on_degrade",
        "drift_current_uri",
        "drift_reads_log",
        "feedback_label_column",
        "compiler_requirement",
        "runtime_requirement",
        "manifests_folder",
        "images",
        "train_image_ref",
        "serve_image_ref",
        "train_resources",
        "serving",
        "champion_uri",
        "ci_tracking_uri",
        "ci_runs_on",
        "ci_model_runs_on",
        "volumes",
    }
    resolved = resolve_spec_file(REPO_ROOT / "examples" / "churn" / "mlproject.yaml").resolved[0]
    assert {f.name for f in fields(ResolvedSpec)} == from_spec_or_compiler | set(edge_inputs(resolved))


def test_the_repository_folder_is_where_the_spec_sits_in_its_git_repository(tmp_path: Path) -> None:
    import shutil
    import subprocess

    churn = REPO_ROOT / "examples" / "churn"
    outside, top = tmp_path / "plain" / "churn", tmp_path / "repo"
    shutil.copytree(churn, outside)
    shutil.copytree(churn, top / "models" / "churn")
    shutil.copytree(churn, top, dirs_exist_ok=True)
    subprocess.run(["git", "init", "-q", str(top)], check=True)

    def folder(spec: Path) -> str:
        result = resolve_spec_file(spec)
        assert result.ok, [d.render() for d in result.diagnostics]
        return result.resolved[0].repository_folder

    assert folder(outside / "mlproject.yaml") == "."
    assert folder(top / "mlproject.yaml") == "."
    assert folder(top / "models" / "churn" / "mlproject.yaml") == "models/churn"
    assert folder(top / "models" / ".." / "models" / "churn" / "mlproject.yaml") == "models/churn"


def test_batch_invalid_rows_reaches_the_runtime_config(project) -> None:
    from mlc.compiler.resolve.runtime_config import runtime_config
    from mlc.runtime.contract import BATCH_INVALID_ROWS

    batch = "serve:\n  batch: {schedule: '0 * * * *', input: in/, output: out/"
    (default,) = resolve_spec_file(project(BASE + batch + "}\n")).resolved
    assert runtime_config(default).require_batch().invalid_rows == BATCH_INVALID_ROWS == "fail"
    (skipping,) = resolve_spec_file(project(BASE + batch + ", invalid_rows: skip}\n")).resolved
    assert runtime_config(skipping).require_batch().invalid_rows == "skip"
