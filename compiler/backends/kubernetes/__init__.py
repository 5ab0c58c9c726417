"""Kubernetes backend: manifests, kustomization, GitOps objects and alert tests per environment.

Output, per environment `<env>` (`default` when the spec has none), under `gitops.path`:

    <path>/<env>/<kind-lowercase>-<name>.yaml   one resource per file
    <path>/<env>/kustomization.yaml             lists exactly those files, sorted
    <path>/clusters/<env>.yaml                  the Argo CD Application or Flux objects
    <path>/tests/<env>/alerts.test.yaml         `promtool test rules` cases for the PrometheusRule
    <path>/tests/<env>/alerts.rules.yaml        its rule groups, the file those cases name

Modules: `pod` (the hardened pod template), `runtime_config` (the ConfigMap), `training`,
`serving`, `kserve`, `batch`, `monitoring`, `gitops`, `job_network_policies` (the jobs' pods);
`objects` (metadata) and `images` (image references).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlc.compiler.artifact import Artifact, with_generated_notice
from mlc.compiler.backends.kubernetes.batch import emit_batch
from mlc.compiler.backends.kubernetes.config_map import emit_runtime_config_map
from mlc.compiler.backends.kubernetes.gitops import (
    emit_argocd_application,
    emit_flux_objects,
    emit_kustomization,
    emit_namespace,
)
from mlc.compiler.backends.kubernetes.job_network_policies import emit_job_network_policies
from mlc.compiler.backends.kubernetes.kserve import emit_kserve
from mlc.compiler.backends.kubernetes.monitoring import RULE_FILE, emit_alert_rules, emit_alert_tests, emit_monitoring
from mlc.compiler.backends.kubernetes.objects import stamp_version
from mlc.compiler.backends.kubernetes.serving import emit_serving, fields_owned_elsewhere
from mlc.compiler.backends.kubernetes.training import emit_training
from mlc.compiler.backends.yaml_writer import dump_yaml
from mlc.compiler.resolve.resolved import ResolvedSpec

__all__ = ["emit", "emit_environment_resources", "manifest_filename"]

BACKEND = "kubernetes"
KUSTOMIZATION = "kustomization.yaml"


def emit_environment_resources(resolved: ResolvedSpec) -> list[dict[str, Any]]:
    """Every Kubernetes resource the environment's folder holds."""
    resources = [
        *emit_namespace(resolved),
        emit_runtime_config_map(resolved),
        *emit_training(resolved),
        *emit_serving(resolved),
        *emit_kserve(resolved),
        *emit_batch(resolved),
        *emit_monitoring(resolved),
    ]
    return [*resources, *emit_job_network_policies(resolved, resources)]


def manifest_filename(resource: dict[str, Any]) -> str:
    """`<kind-lowercase>-<name>.yaml`."""
    return f"{resource['kind'].lower()}-{resource['metadata']['name']}.yaml"


def _file(documents: list[dict[str, Any]], resolved: ResolvedSpec) -> bytes:
    """Documents as a generated file: each resource's version label stamped, the notice on top."""
    return with_generated_notice(dump_yaml([stamp_version(doc) for doc in documents]), resolved.compiler_version)


def _sources(resource: dict[str, Any]) -> tuple[str, ...]:
    component = resource["metadata"].get("labels", {}).get("app.kubernetes.io/component", "")
    return (component,) if component else ()


def emit_environment(resolved: ResolvedSpec) -> list[Artifact]:
    """The artifacts of one environment."""
    root = resolved.spec.gitops.path.rstrip("/")
    folder = resolved.manifests_folder
    artifacts: list[Artifact] = []
    files: list[str] = []
    for resource in emit_environment_resources(resolved):
        filename = manifest_filename(resource)
        if filename in files:
            raise ValueError(f"two resources would be written to {folder}/{filename}")  # a compiler bug
        files.append(filename)
        artifacts.append(Artifact(f"{folder}/{filename}", _file([resource], resolved), BACKEND, _sources(resource)))
    artifacts.append(
        Artifact(
            f"{folder}/{KUSTOMIZATION}",
            _file([emit_kustomization(files)], resolved),
            BACKEND,
            ("gitops",),
        )
    )

    engine = resolved.spec.gitops.engine
    if engine == "argocd":
        application = emit_argocd_application(resolved, fields_owned_elsewhere(resolved))
        artifacts.append(
            Artifact(
                f"{root}/clusters/{resolved.environment}.yaml",
                _file([application], resolved),
                BACKEND,
                ("gitops",),
            )
        )
    elif engine == "flux":
        artifacts.append(
            Artifact(
                f"{root}/clusters/{resolved.environment}.yaml",
                _file(emit_flux_objects(resolved), resolved),
                BACKEND,
                ("gitops",),
            )
        )
    # The promtool tests and the rule file they name, side by side: `promtool test rules` runs there as written.
    for filename, document in (
        ("alerts.test.yaml", emit_alert_tests(resolved)),
        (RULE_FILE, emit_alert_rules(resolved)),
    ):
        if document is not None:
            artifacts.append(
                Artifact(
                    f"{root}/tests/{resolved.environment}/{filename}",
                    _file([document], resolved),
                    BACKEND,
                    ("monitor",),
                )
            )
    return artifacts


def emit(environments: Sequence[ResolvedSpec]) -> list[Artifact]:
    """The backend entry point: the artifacts of every environment of one project."""
    return [artifact for resolved in environments for artifact in emit_environment(resolved)]
