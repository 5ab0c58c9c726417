"""Validation across sections, environments and project files."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from mlc.compiler.diagnostics import Severity
from mlc.compiler.pipeline import resolve_spec_file
from mlc.compiler.validate.project_files import check_requirements_lock
from spec_fixtures import MINIMAL_SPEC, REPO_ROOT, run_mlc

BASE = MINIMAL_SPEC

# The same spec, its data where a cluster's jobs reach it (same lines and columns as BASE): what
# a spec with environments needs (tests/test_job_data.py covers local paths in a cluster).
CLUSTER_BASE = BASE.replace("data/train.csv", "s3://demo/train.csv").replace("data/eval.csv", "s3://demo/eval.csv")


def lines(spec: Path) -> list[str]:
    return [d.render().splitlines()[0] for d in resolve_spec_file(spec, "mlproject.yaml").diagnostics]


def test_minimal_spec_is_valid(project) -> None:
    result = resolve_spec_file(project(BASE))
    assert result.ok, result.diagnostics
    assert [r.environment for r in result.resolved] == ["default"]


def test_reference_spec_is_valid(project, reference_spec_text: str) -> None:
    spec = project(reference_spec_text, package="churn")
    result = resolve_spec_file(spec, "mlproject.yaml")
    assert result.ok, [d.render() for d in result.diagnostics]
    assert [r.environment for r in result.resolved] == ["staging", "production"]


@pytest.mark.parametrize(
    "example", sorted((REPO_ROOT / "examples").glob("*/mlproject.yaml")), ids=lambda p: p.parent.name
)
def test_examples_are_valid(example: Path) -> None:
    result = resolve_spec_file(example)
    assert result.ok, [d.render() for d in result.diagnostics]


def test_all_errors_at_once_sorted_by_line(project) -> None:
    spec = project(BASE + "  seed: x\n  timeout: forever\nserve:\n  port: 0\n")
    found = lines(spec)
    assert [int(line.split(":")[1]) for line in found] == [12, 13, 15]


def test_gate_direction_rules(project) -> None:
    spec = project(
        BASE
        + "evaluate:\n  metrics: [f1, log_loss]\n  gates:\n"
        + "    - {metric: log_loss, max_rise: 0.1}\n    - {metric: f1, max_rise: 0.1}\n"
    )
    assert lines(spec) == [
        "mlproject.yaml:16:30: error: evaluate.gates.1.max_rise: 'f1' is higher-is-better: use max_drop, not max_rise"
    ]


def test_parametric_metrics(project) -> None:
    ok = project(BASE + "evaluate:\n  metrics: [top5_accuracy, accuracy]\n")
    assert resolve_spec_file(ok).ok
    bad = project(BASE + "evaluate:\n  metrics: [top0_accuracy]\n")
    assert "unknown metric 'top0_accuracy'" in lines(bad)[0]
    ranking = project(BASE + "evaluate:\n  metrics: [ndcg_at_10]\n")
    assert "unknown metric 'ndcg_at_10' (ranking metrics need a ranking task" in lines(ranking)[0]


def test_metrics_are_checked_against_the_targets_task(project) -> None:
    """The gate could not compute a metric of another task (it exited 2 on every run): validate
    says so at the metric's line, against the declared task or, undeclared, each other."""
    contract = "  contract:\n    target: y\n    task: regression\n    features: {x: {type: float}}\n"
    declared = project(BASE.replace("\ndata:\n", "\ndata:\n" + contract) + "evaluate:\n  metrics: [rmse, f1]\n")
    assert lines(declared) == [
        "mlproject.yaml:17:19: error: evaluate.metrics.1: 'f1' does not apply to a regression target "
        "(data.contract.task); it applies to: binary, multiclass"
    ]
    mixed = project(BASE + "evaluate:\n  metrics: [f1, rmse, latency_p95_ms]\n")
    assert lines(mixed) == [
        "mlproject.yaml:13:12: error: evaluate.metrics: no target has all these metrics (they fit binary: f1, "
        "latency_p95_ms; multiclass: f1, latency_p95_ms; regression: rmse, latency_p95_ms)"
    ]
    for metrics in ("[f1, roc_auc, latency_p95_ms]", "[mae, r2]", "[top3_accuracy, log_loss]"):
        assert lines(project(BASE + f"evaluate:\n  metrics: {metrics}\n")) == [], metrics


def test_overlay_null_deletes_a_section(project) -> None:
    spec = project(
        CLUSTER_BASE
        + "serve:\n  replicas: {min: 1, max: 2}\nenvironments:\n  dev:\n    serve: null\n  prod:\n    serve: {replicas: {max: 9}}\n"
    )
    result = resolve_spec_file(spec)
    assert result.ok, result.diagnostics
    dev, prod = result.resolved
    assert dev.spec.serve is None
    assert prod.spec.serve is not None and (prod.spec.serve.replicas.min, prod.spec.serve.replicas.max) == (1, 9)


def test_overlay_error_is_reported_at_the_overlay_line_once(project) -> None:
    spec = project(
        CLUSTER_BASE
        + "serve:\n  replicas: {min: 1, max: 2}\nenvironments:\n  a:\n    serve: {replicas: {min: 5}}\n  b: {}\n"
    )
    assert lines(spec) == [
        "mlproject.yaml:16:29: error: environments.a.serve.replicas: min (5) must not exceed max (2), e.g. {min: 2, max: 10}"
    ]


def test_base_error_is_reported_once_not_per_environment(project) -> None:
    spec = project(CLUSTER_BASE + "  seed: x\nenvironments:\n  a: {}\n  b: {}\n")
    assert lines(spec) == ["mlproject.yaml:12:9: error: train.seed: must be an integer, got the string 'x'"]


def test_error_that_appears_only_in_one_environment_names_it(project) -> None:
    spec = project(
        CLUSTER_BASE
        + "serve:\n  replicas: {min: 1, max: 2}\nenvironments:\n  big:\n    serve: {replicas: {max: 1}}\n    images: {train: {base: python}}\n  production:\n    images: {train: {base: python}}\n"
    )
    assert lines(spec) == [
        "mlproject.yaml:19:28: error: environments.production.images.train.base: environment 'production' ships this image, so its base must be pinned by digest",
    ]


def test_overlay_cannot_change_identity(project) -> None:
    spec = project(CLUSTER_BASE + "environments:\n  a:\n    apiVersion: mlc/v2\n")
    assert lines(spec) == ["mlproject.yaml:14:5: error: environments.a.apiVersion: an overlay cannot set 'apiVersion'"]


def test_production_base_pinned_by_digest_is_accepted(project) -> None:
    digest = "python:3.11-slim@sha256:" + "0" * 64
    spec = project(CLUSTER_BASE + f"environments:\n  prod:\n    images: {{train: {{base: '{digest}'}}}}\n")
    assert resolve_spec_file(spec).ok


def test_secret_values_are_never_echoed(project) -> None:
    secret = "s3cr3t-value-do-not-print"
    for body in (
        f"  TOKEN: {secret}\n",
        f"  TOKEN: {{k8s: x, key: y, github: '{secret}'}}\n",
        f"  TOKEN: [{secret}]\n",
    ):
        result = resolve_spec_file(project(BASE + "secrets:\n" + body))
        assert not result.ok
        assert all(secret not in d.render() for d in result.diagnostics)


def test_spot_without_checkpoint_is_a_warning_not_an_error(project) -> None:
    result = resolve_spec_file(project(BASE + "  spot: true\n"))
    assert result.ok
    assert [d.severity for d in result.diagnostics] == [Severity.WARNING]


def test_memory_in_bytes_is_caught(project) -> None:
    assert lines(project(BASE + "  resources: {memory: 2}\n")) == [
        "mlproject.yaml:12:23: error: train.resources.memory: '2' is less than one mebibyte (a bare number means bytes)"
    ]


def test_serving_only_llm_project_needs_no_code(tmp_path: Path) -> None:
    spec = tmp_path / "mlproject.yaml"
    spec.write_text(
        "apiVersion: mlc/v1\nkind: MLProject\nmetadata: {name: chat}\n"
        "serve:\n  engine: vllm\n  llm: {model: a/b, revision: " + "a" * 40 + "}\n  resources: {gpus: 2}\n"
    )
    result = resolve_spec_file(spec)
    assert result.ok, result.diagnostics
    assert result.resolved[0].tensor_parallel == 2


def test_llm_revision_must_be_a_commit(project) -> None:
    spec = project(
        "apiVersion: mlc/v1\nkind: MLProject\nmetadata: {name: chat}\nserve:\n  engine: vllm\n  llm: {model: a/b, revision: main}\n  resources: {gpus: 1}\n"
    )
    assert "40-hex commit sha" in lines(spec)[0]


# --- project files ---------------------------------------------------------------------------


def test_missing_requirements_and_module(tmp_path: Path) -> None:
    spec = tmp_path / "mlproject.yaml"
    spec.write_text(BASE)
    # Defaults have no line of their own: they are reported at the start of the file.
    assert lines(spec) == [
        "mlproject.yaml:1:1: error: code.requirements: 'requirements.lock' does not exist",
        "mlproject.yaml:1:1: error: code.source: 'src/' is not a directory",
    ]


def test_unpinned_requirement_positioned_in_the_lock(project) -> None:
    spec = project(BASE, lock="# pinned\nnumpy==2.0.0\n  pandas>=2.1\nscipy\n")
    assert lines(spec) == [
        "requirements.lock:3:9: error: 'pandas>=2.1' is not pinned with ==",
        "requirements.lock:4:1: error: 'scipy' is not pinned with ==",
    ]


def test_requirements_lock_rules() -> None:
    ok = "a==1.0 \\\n    --hash=sha256:abc\nb[extra]==2.0 ; python_version >= '3.9' --hash=sha256:def\n--index-url https://pypi.org/simple\n"
    assert check_requirements_lock(ok, "r.lock") == []
    mixed = "a==1.0 --hash=sha256:abc\nb==2.0\n"
    assert [d.render().splitlines()[0] for d in check_requirements_lock(mixed, "r.lock")] == [
        "r.lock:2:1: error: requirement without --hash in a lock that uses hashes (pip --require-hashes needs all)"
    ]
    bad = "-r other.txt\n-e .\npkg @ https://x/y.whl\nc==1.*\n--extra-index-url https://user:tok@host/simple\n"
    found = [d.render().splitlines()[0] for d in check_requirements_lock(bad, "r.lock")]
    assert found == [
        "r.lock:1:1: error: option '-r' is not allowed in a lock file",
        "r.lock:2:1: error: an editable install cannot go into an image (it points at a folder on this machine)",
        "r.lock:3:1: error: 'pkg @ https://x/y.whl' is not a pinned requirement",
        "r.lock:4:2: error: 'c==1.*' is not pinned with ==",
        "r.lock:5:1: error: credentials in an index URL; they would be baked into the image",
    ]
    assert all("tok" not in d.render() for d in check_requirements_lock(bad, "r.lock"))


def test_symlink_out_of_the_repository_is_refused(project, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    spec = project(BASE.replace("data/train.csv", "data/escape/train.csv"))
    (spec.parent / "data").mkdir()
    os.symlink(outside, spec.parent / "data" / "escape")
    assert lines(spec) == [
        "mlproject.yaml:8:16: error: data.train.uri: 'data/escape/train.csv' leads outside the repository through a symlink"
    ]


def test_diagnostic_lines_are_grep_friendly(project) -> None:
    for line in lines(project(BASE + "trian: {}\n  x: 1\n")):
        assert re.match(r"^mlproject\.yaml:\d+:\d+: (error|warning): ", line)


def test_kserve_without_train_still_builds_the_serve_image_so_needs_a_registry(project) -> None:
    """KServe's storage initializer runs the serve image: validate asks for the registry at its
    line, instead of reporting the spec valid and `mlc plan` failing with a traceback."""
    spec = project("apiVersion: mlc/v1\nkind: MLProject\nmetadata:\n  name: demo\nserve:\n  engine: kserve\n")
    found = lines(spec)
    assert len(found) == 1 and found[0].startswith("mlproject.yaml:1:1: error: images: ")
    assert "needs `images.registry`" in found[0] and "storage initializer" in found[0]
    fixed = project(
        "apiVersion: mlc/v1\nkind: MLProject\nmetadata:\n  name: demo\n"
        "images:\n  registry: ghcr.io/acme\nserve:\n  engine: kserve\n"
    )
    code, out, err = run_mlc("plan", "-f", str(fixed))
    assert code == 0, err
    assert "deploy/docker/serve.Dockerfile" in out and "Traceback" not in err


def test_a_drift_check_needs_an_image_that_runs_it(project) -> None:
    """A serving-only vLLM project builds no image with `mlc-runtime`: its drift CronJob had no
    image and `mlc plan` crashed; validate refuses it at its line."""
    spec = project(
        "apiVersion: mlc/v1\nkind: MLProject\nmetadata:\n  name: chat\n"
        "data:\n  contract:\n    features: {prompt_tokens: {type: int}}\n"
        "serve:\n  engine: vllm\n  llm: {model: m/m, revision: " + "a" * 40 + "}\n"
        "  resources: {gpus: 1, gpu_type: nvidia-l4}\n"
        "monitor:\n  drift:\n    current: {uri: s3://b/live/}\n"
    )
    (found,) = lines(spec)
    assert found.startswith("mlproject.yaml:14:5: error: monitor.drift: the drift check runs `mlc-runtime`")


def test_a_production_image_cannot_be_left_unpinned_by_an_overlay(project) -> None:
    """The one serve image ships to production: an overlay removing production's pinned base
    (`base: null`) while another environment names an unpinned one is refused where it ships."""
    spec = project(
        CLUSTER_BASE.replace(
            "  registry: ghcr.io/acme\n", "  registry: ghcr.io/acme\n  train: {base: 'python:3.11-slim'}\n"
        )
        + "environments:\n  staging: {}\n  production:\n    images: {train: {base: null}}\n"
    )
    (found,) = lines(spec)
    assert found.startswith("mlproject.yaml:7:") and "images.train.base: environment 'production' ships" in found


def test_hostile_values_are_refused_at_their_line(project) -> None:
    """Values that become Dockerfile lines, ignore-file lines, workflow triggers or paths."""
    cases = {
        'images:\n  registry: ghcr.io/acme\n  train: {base: "python:3.11\\nRUN curl x | sh"}\n': "images.train.base",
        'code:\n  source: "src/\\n!../secrets"\n': "code.source",
        "gitops:\n  branch: '*'\n": "gitops.branch",
        "gitops:\n  path: .git/hooks\n": "gitops.path",
        "gitops:\n  path: .github/workflows\n": "gitops.path",
        "secrets:\n  LD_PRELOAD: {k8s: x, key: y}\n": "secrets.LD_PRELOAD",
        "serve:\n  replicas: {min: 1, max: 99999999999}\n": "serve.replicas.max",
        "serve:\n  port: 8080\n  replicas: {min: 1e400}\n": "",
        "environments:\n  docker: {}\n": "environments.docker",
    }
    for text, field in cases.items():
        found = lines(project(BASE.replace("images:\n  registry: ghcr.io/acme\n", "") + text))
        assert found and all(line.startswith("mlproject.yaml:") for line in found), (text, found)
        assert any(f"error: {field}" in line for line in found), (text, found)


TOKENS = {
    "an AWS access key": "AKIA" + "ABCDEFGHIJKLMNOP",
    "a GitHub token": "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "an OpenAI key": "sk-" + "proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8t",
    "a Slack token": "xoxb-" + "123456789012-abcdefghijkl",
    "a private key": "-----BEGIN RSA " + "PRIVATE KEY-----",
    "a password in a URL": "https://mlflow:" + "hunter2@mlflow.example.com",
}


@pytest.mark.parametrize("kind", sorted(TOKENS))
def test_a_token_anywhere_in_the_spec_is_refused_and_never_echoed(kind: str, project) -> None:
    token = TOKENS[kind]
    for where in (
        f"metadata:\n  name: demo\n  labels: {{team: '{token}'}}\n",
        f"registry:\n  tracking_uri: '{token}'\n",
        f"train:\n  entrypoint: demo.model:train\n  params: {{api_key: '{token}'}}\n",
    ):
        text = BASE.replace("metadata:\n  name: demo\n", "") if where.startswith("metadata") else BASE
        if where.startswith("train"):
            text = text.replace("train:\n  entrypoint: demo.model:train\n", "")
        result = resolve_spec_file(project(text + where), "mlproject.yaml")
        rendered = "\n".join(d.render() for d in result.diagnostics)
        assert not result.ok and f"looks like {kind}: a credential is never written" in rendered, rendered
        assert token not in rendered and token[:12] not in rendered  # no echo, not even in a hint


def test_a_lock_linked_out_of_the_repository_is_never_read_or_quoted(project, tmp_path: Path) -> None:
    """It was reported as leading outside and printed anyway (also into the bot's PR comment)."""
    outside = tmp_path / "outside-config"
    outside.write_text("[core]\n\textraheader = AUTHORIZATION: basic c2VjcmV0\n")
    spec = project(BASE)
    lock = spec.parent / "requirements.lock"
    lock.unlink()
    lock.symlink_to(outside)
    found = lines(spec)
    assert found == [
        "mlproject.yaml:1:1: error: code.requirements: 'requirements.lock' leads outside the repository through a symlink"
    ]
    rendered = "\n".join(d.render() for d in resolve_spec_file(spec, "mlproject.yaml").diagnostics)
    assert "AUTHORIZATION" not in rendered and "core" not in rendered


def test_the_lock_matches_the_spec_and_can_be_installed(project) -> None:
    """Each problem at the lock's line with the fix: a duplicate, mlc itself, an editable
    install (what `pip freeze` writes for a checkout), and torch at another version than
    code.framework.torch (the image installs that one first; the pin would replace it)."""
    lock = "numpy==2.0.0\nNumPy==2.0.1\ntorch==2.5.1+cpu\nmlc[runtime]==0.1.0\n-e ./mypkg\n"
    spec = project(BASE + 'code:\n  framework: {torch: "2.13.0"}\n', lock=lock)
    found = [d.render() for d in resolve_spec_file(spec, "mlproject.yaml").diagnostics]
    assert [line.splitlines()[0] for line in found] == [
        "requirements.lock:2:1: error: 'NumPy' is pinned twice (first at line 1)",
        "requirements.lock:3:6: error: torch==2.5.1+cpu here, but code.framework.torch is 2.13.0: the image "
        "installs torch 2.13.0 from its wheel index first, and this pin would replace it",
        "requirements.lock:4:1: error: mlc itself is pinned here: the image installs the mlc runtime that matches "
        "the compiler",
        "requirements.lock:5:1: error: an editable install cannot go into an image (it points at a folder on this "
        "machine)",
    ]
    assert "hint: leave it out: `mlc lock` (pins requirements.in to what is installed here)" in found[-1]
    fixed = project(BASE + 'code:\n  framework: {torch: "2.13.0"}\n', lock="numpy==2.0.0\ntorch==2.13.0+cpu\n")
    assert resolve_spec_file(fixed).ok


def test_an_apt_package_without_a_pinned_version_is_refused_at_its_line(project) -> None:
    spec = BASE.replace(
        "  registry: ghcr.io/acme\n", "  registry: ghcr.io/acme\n  train:\n    system_packages: [libgl1, libunknown1]\n"
    )
    found = [d.render() for d in resolve_spec_file(project(spec), "mlproject.yaml").diagnostics]
    assert len(found) == 1, found  # libgl1: every distro of the table pins it
    assert found[0].splitlines()[0] == (
        "mlproject.yaml:8:31: error: images.train.system_packages.1: apt package 'libunknown1' has no pinned version "
        "for debian-bookworm, ubuntu-22.04, ubuntu-24.04 in mlc's table (compiler/compat/data/docker_build.json): it "
        "would install whatever the archive has that day (hadolint DL3008), or is not a package of that distribution"
    )
    assert "write it with its version, e.g. 'libunknown1=<version>'" in found[0]
    pinned = spec.replace("libunknown1]", "libunknown1=1.0-1]")
    assert resolve_spec_file(project(pinned)).ok
    override = pinned.replace("  train:\n", f"  train:\n    base: python:3.11-slim@sha256:{'a' * 64}\n")
    found = lines(project(override))
    assert len(found) == 1 and "apt package 'libgl1' has no version, and the base image" in found[0]


def test_libgl1_is_pinned_on_every_base_distro_mlc_builds_on() -> None:
    from mlc.compiler.compat import docker_build_table
    from mlc.compiler.resolve.images import _pinned_packages

    for distro in docker_build_table().apt.distros:
        packages, unpinned = _pinned_packages(["libgl1"], distro)
        assert unpinned == () and packages[0].startswith("libgl1="), distro
    assert _pinned_packages(["libgl1"], "ubuntu-22.04")[0] == ("libgl1=1.4.0-1",)


def test_where_the_runtime_comes_from_is_checked_at_its_line(project) -> None:
    def with_runtime(runtime: str) -> Path:
        return project(BASE.replace("  registry: ghcr.io/acme\n", f"  registry: ghcr.io/acme\n  runtime:\n{runtime}"))

    missing = lines(with_runtime("    wheel: vendor/mlc-0.1.0-py3-none-any.whl\n"))
    assert missing == [
        "mlproject.yaml:8:12: error: images.runtime.wheel: 'vendor/mlc-0.1.0-py3-none-any.whl' does not exist"
    ]
    vendored = with_runtime("    wheel: vendor/mlc-0.1.0-py3-none-any.whl\n")
    (vendored.parent / "vendor").mkdir()
    (vendored.parent / "vendor" / "mlc-0.1.0-py3-none-any.whl").write_bytes(b"PK")
    assert lines(vendored) == []
    other = lines(with_runtime("    wheel: vendor/mlc-0.2.0-py3-none-any.whl\n"))
    assert len(other) == 1 and other[0].startswith(
        "mlproject.yaml:8:12: error: images.runtime.wheel: is a wheel of mlc 0.2.0"
    )
    secret = lines(with_runtime("    index_url: https://ci:hunter2@pypi.example.com/simple\n"))
    # The secret scan refuses a password in a URL without quoting it; a token as the user name too.
    assert secret and all(line.startswith("mlproject.yaml:8:16: error: images.runtime.index_url:") for line in secret)
    assert "a credential is never written in mlproject.yaml" in " ".join(secret)
    token = lines(with_runtime("    index_url: https://glpat-abc123@gitlab.example.com/api/v4/simple\n"))
    assert len(token) == 1 and token[0].startswith(
        "mlproject.yaml:8:16: error: images.runtime.index_url: has credentials in it: the spec is committed"
    )
    version = lines(with_runtime('    version: "0.2.0"\n'))
    assert version == [
        "mlproject.yaml:8:14: error: images.runtime.version: is not this compiler's version (0.1.0): the runtime "
        "reads the config the compiler writes, so images install the same release; write '0.1.0' or leave it out"
    ]


def test_a_runtime_lock_for_another_mlc_is_refused_at_the_index_url(project) -> None:
    spec = project(
        BASE.replace(
            "  registry: ghcr.io/acme\n",
            "  registry: ghcr.io/acme\n  runtime:\n    index_url: https://pypi.example.com/simple\n",
        )
    )
    (spec.parent / "mlc.runtime.lock").write_text(f"mlc==0.0.9 \\\n    --hash=sha256:{'a' * 64}\n")
    assert lines(spec) == [
        "mlproject.yaml:8:16: error: images.runtime.index_url: mlc.runtime.lock pins mlc 0.0.9, but this compiler "
        "is 0.1.0"
    ]
    (spec.parent / "mlc.runtime.lock").write_text(f"mlc==0.1.0 \\\n    --hash=sha256:{'a' * 64}\n")
    result = resolve_spec_file(spec)
    assert result.ok and result.resolved[0].runtime_requirement.index_hashes == ("a" * 64,)


def test_serve_limits_are_checked_at_their_line(project) -> None:
    """Each limit within its range (int32 at most), timeouts as durations; only where they are enforced."""
    limits = "serve:\n  limits:\n    max_rows: 0\n    max_body_bytes: 3000000000\n    header_timeout: 2h\n"
    limits += "    max_depth: 3\n    max_columns: true\n    body_timeout: 0s\n"
    assert lines(project(BASE + limits)) == [
        "mlproject.yaml:14:15: error: serve.limits.max_rows: must be an integer >= 1, got 0",
        "mlproject.yaml:15:21: error: serve.limits.max_body_bytes: must be an integer <= 1073741824, got 3000000000",
        "mlproject.yaml:16:21: error: serve.limits.header_timeout: must be between 1s and 1h, e.g. '30s'",
        "mlproject.yaml:17:16: error: serve.limits.max_depth: must be an integer >= 4, got 3",
        "mlproject.yaml:18:18: error: serve.limits.max_columns: must be an integer, got the boolean true",
        "mlproject.yaml:19:19: error: serve.limits.body_timeout: must be longer than zero, e.g. '10m'",
    ]
    within = "serve:\n  limits: {max_rows: 10, max_body_bytes: 1024, header_timeout: 1h, body_timeout: 1s}\n"
    assert lines(project(BASE + within)) == []
    kserve = "serve:\n  engine: kserve\n  autoscale: {on: cpu}\n  limits: {max_rows: 10}\n"
    (found,) = lines(project(BASE + kserve))
    assert found.startswith("mlproject.yaml:15:11: error: serve.limits: `limits` applies to engine 'runtime'")


def test_trusted_proxies_are_networks_at_their_line(project) -> None:
    spec = BASE + "serve:\n  access:\n    trusted_proxies: [10.0.0.0/8, 10.0.0.1/8, nonsense, 'fd00::/8']\n"
    found = lines(project(spec))
    assert [line.split(": error: ")[0] for line in found] == ["mlproject.yaml:14:35", "mlproject.yaml:14:47"]
    assert "'10.0.0.1/8' is not a network" in found[0] and "trusted_proxies.2" in found[1]


def test_a_given_vllm_image_is_an_image_reference_pinned_by_digest_in_production(project) -> None:
    llm = (
        "serve:\n  engine: vllm\n  llm:\n    model: Qwen/Qwen2.5-7B-Instruct\n    revision: " + "a" * 40 + "\n"
        "    image: IMAGE\n  resources: {gpus: 1, gpu_type: nvidia-l4}\n"
    )
    serving_only = BASE.split("\ndata:")[0] + "\n"  # the LLM project trains nothing
    (found,) = lines(project(serving_only + llm.replace("IMAGE", '"vllm/vllm-openai:v1\\nRUN x"')))
    assert found.startswith("mlproject.yaml:12:12: error: serve.llm.image: must be an image reference")
    tagged = serving_only + llm.replace("IMAGE", "registry.local/vllm:v1") + "environments:\n  staging: {}\n"
    assert lines(project(tagged)) == []  # a tag is fine outside production
    (found,) = lines(project(tagged + "  production: {}\n"))
    assert "serve.llm.image: environment 'production' serves with this image, so it must be pinned by digest" in found
    pinned = tagged.replace("registry.local/vllm:v1", "registry.local/vllm@sha256:" + "b" * 64)
    (resolved, _) = resolve_spec_file(project(pinned + "  production: {}\n")).resolved
    assert resolved.serving.engine_image == "registry.local/vllm@sha256:" + "b" * 64
