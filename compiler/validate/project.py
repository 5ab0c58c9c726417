"""Stage 2, validate: loaded data -> typed `MLProject` per environment, or positioned diagnostics.

Three layers, all collected before anything is reported:

1. the pydantic models (`load.spec`): shape, types and value rules of each field, their errors
   worded by `findings`;
2. cross-section rules (`rules`): facts that span sections, e.g. a gate's metric must be one
   of `evaluate.metrics`;
3. project files (`project_files`): what the spec points at on disk.

`environments.*` overlays are deep-merged over the base (`overlays`) and every merged result is
validated in full; a problem inside an overlay is reported at the overlay's own line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mlc.compiler.diagnostics import Diagnostic, Finding, Severity, error
from mlc.compiler.load.document import FieldPath, LoadedDocument, SourceMap
from mlc.compiler.load.file_probes import FileProbes
from mlc.compiler.load.spec import MLProject
from mlc.compiler.load.values import image_reference_with_digest
from mlc.compiler.validate.findings import findings_from_pydantic
from mlc.compiler.validate.job_data import job_data_rules
from mlc.compiler.validate.overlays import OverlaySources, merge_overlay
from mlc.compiler.validate.project_files import (
    check_project_files,
    requirements_use_hashes,
    runtime_index_hashes,
    runtime_wheel_sha256,
)
from mlc.compiler.validate.rules import PRODUCTION_ENVIRONMENTS, section_rules
from mlc.compiler.validate.secret_scan import scan_data

# Keys an overlay may not change: they identify the project or would nest overlays.
_FIXED_KEYS = ("apiVersion", "kind", "environments", "code")
_FIXED_REASON = {
    "code": "one image is built from the code and promoted to every environment",
}


@dataclass(frozen=True)
class ValidatedProject:
    """A valid spec: the base and the merged, validated spec of each environment."""

    document: LoadedDocument
    base: MLProject
    environments: dict[str, MLProject]
    root: Path | None
    requirements_hashed: bool = False
    # environment -> the namespace its resources live in (`environment_namespaces`); the base's
    # when the spec has no environments, under "default"
    namespaces: dict[str, str] = field(default_factory=dict)
    runtime_wheel_sha256: str | None = None  # of the mlc wheel in the repository images and CI install
    runtime_index_hashes: tuple[str, ...] = ()  # mlc.runtime.lock's, for an install from an index


def validate_document(
    document: LoadedDocument, root: Path | None = None, files: FileProbes | None = None
) -> tuple[ValidatedProject | None, list[Diagnostic]]:
    """Validate a loaded spec and every environment overlay; `root` enables file checks.

    Files under `root` are read and stat-ed through `files` (a fresh `FileProbes` when None);
    pass one to learn afterwards which filesystem facts the outcome depended on.
    """
    files = files if files is not None else FileProbes()
    raw_envs = document.data.get("environments")
    has_environments = isinstance(raw_envs, dict) and bool(raw_envs)
    base, diagnostics = _validate_view(document.data, document.source, None, root, files, has_environments)
    base_seen = {(d.position, d.field, d.message) for d in diagnostics}
    environments: dict[str, MLProject] = {}
    if isinstance(raw_envs, dict):
        sources = OverlaySources.of(document)
        for name, overlay in raw_envs.items():
            env_path: FieldPath = ("environments", name)
            if not isinstance(overlay, dict):
                continue  # the base validation already reported the overlay's type
            fixed = [k for k in _FIXED_KEYS if k in overlay]
            for key in fixed:
                diagnostics.append(
                    error(
                        f"an overlay cannot set '{key}'",
                        document.source.key_position((*env_path, key)),
                        field=".".join(map(str, (*env_path, key))),
                        hint=_FIXED_REASON.get(
                            key, "overlays change sections of the base, e.g. `serve: {replicas: {min: 1}}`"
                        ),
                    )
                )
            if fixed:
                continue
            merged, source, origin = merge_overlay(document, name, sources)
            spec, env_diagnostics = _validate_view(merged, source, (name, origin), root, files, True)
            for d in env_diagnostics:
                if (d.position, d.field, d.message) in base_seen:
                    continue  # the base has this problem; report it once, there
                if not d.field.startswith("environments."):
                    d = Diagnostic(d.severity, f"{d.message} (in environment '{name}')", d.position, d.field, d.hint)
                diagnostics.append(d)
            if spec is not None:
                environments[name] = spec
    if isinstance(raw_envs, dict):
        diagnostics += _project_rules(document, base, environments)
    namespaces, namespace_diagnostics = environment_namespaces(document, base, environments)
    diagnostics += namespace_diagnostics
    diagnostics += _credentials(document)
    if any(d.severity is Severity.ERROR for d in diagnostics) or base is None:
        return None, diagnostics
    hashed = root is not None and requirements_use_hashes(root / base.code.requirements, files)
    wheel_sha256 = runtime_wheel_sha256(base, root, files) if root is not None else None
    index_hashes = runtime_index_hashes(base, root, files) if root is not None else ()
    validated = ValidatedProject(document, base, environments, root, hashed, namespaces, wheel_sha256, index_hashes)
    return validated, diagnostics


DEFAULT_ENVIRONMENT = "default"  # the one environment of a spec without `environments:`


def environment_namespaces(
    document: LoadedDocument, base: MLProject | None, environments: dict[str, MLProject]
) -> tuple[dict[str, str], list[Diagnostic]]:
    """The namespace of each environment, and errors where two would share one.

    Environments may share a cluster, and their resources have the same names, so each gets a
    namespace of its own: the one its overlay sets (`environments.<env>.metadata.namespace`),
    else `<metadata.namespace or name>-<env>`. A spec without environments deploys to
    `metadata.namespace` (default: the project name).
    """
    if base is None:
        return {}, []
    if not environments:
        return {DEFAULT_ENVIRONMENT: base.metadata.namespace or base.metadata.name}, []
    namespaces: dict[str, str] = {}
    found: list[Diagnostic] = []
    owners: dict[str, str] = {}
    for name, spec in environments.items():
        path: FieldPath = ("environments", name, "metadata", "namespace")
        if _overlay_sets(document, name, ("metadata", "namespace")):
            namespace, position = spec.metadata.namespace or "", document.source.value_position(path)
        else:
            namespace = f"{spec.metadata.namespace or spec.metadata.name}-{name}"
            position = document.source.key_position(("environments", name))
            if len(namespace) > 63:
                found.append(
                    error(
                        f"its default namespace '{namespace}' is longer than 63 characters",
                        position,
                        field=f"environments.{name}",
                        hint=f"set one: `environments: {{{name}: {{metadata: {{namespace: <name>}}}}}}`",
                    )
                )
                continue
        if namespace in owners:
            found.append(
                error(
                    f"environments '{owners[namespace]}' and '{name}' would both deploy to namespace '{namespace}', "
                    "where their resources (same names) would overwrite each other",
                    position,
                    field=".".join(path),
                    hint="give each environment its own `metadata.namespace` (or leave it out: "
                    f"the default is '<namespace>-<environment>', e.g. '{spec.metadata.name}-{name}')",
                )
            )
            continue
        owners[namespace] = name
        namespaces[name] = namespace
    return namespaces, found


# Folders mlc writes beside the environments' under `gitops.path`: an environment of that name
# would mix its manifests with them (and prune them).
_RESERVED_ENVIRONMENT_NAMES = frozenset({"docker", "tests", "clusters"})
# `mlc run`'s name for the base of a spec with environments, as it runs it without `--env`: on
# this machine, local paths as written. Never compiled; no environment may take the name.
LOCAL_ENVIRONMENT = "local"


def _project_rules(
    document: LoadedDocument, base: MLProject | None, environments: dict[str, MLProject]
) -> list[Diagnostic]:
    """Rules across environments: their names, and what their shared images must satisfy."""
    found = []
    for name in document.data.get("environments") or {}:
        if name == LOCAL_ENVIRONMENT:
            found.append(
                error(
                    "environment 'local' is the name `mlc run` gives the base (the spec without an overlay, "
                    "on this machine); environments run in a cluster",
                    document.source.key_position(("environments", name)),
                    field=f"environments.{name}",
                    hint="keep local settings in the base, and name environments for where they run, e.g. 'staging'",
                )
            )
        if name in _RESERVED_ENVIRONMENT_NAMES:
            found.append(
                error(
                    f"environment '{name}' would share its folder with mlc's own `{name}/` under gitops.path",
                    document.source.key_position(("environments", name)),
                    field=f"environments.{name}",
                    hint="name it for where it runs, e.g. 'staging' or 'production'",
                )
            )
    production = [name for name in environments if name in PRODUCTION_ENVIRONMENTS]
    if not production:
        return found
    # One image of each role ships to every environment, production included: the base it is
    # built from (a digest-pinned override wins, as resolve picks it) must be pinned.
    for role in ("train", "serve"):
        path: FieldPath = ("images", role, "base")
        overrides = [image for spec in environments.values() if (image := getattr(spec.images, role).base)]
        if not overrides or any(image_reference_with_digest(image) for image in overrides):
            continue
        setters = [name for name in environments if _overlay_sets(document, name, path)]
        blamed = next((n for n in setters if n in production), None)
        if blamed is None and base is not None and getattr(base.images, role).base is not None:
            where: FieldPath = path
        else:
            where = ("environments", blamed or setters[0], *path)
        found.append(
            error(
                f"environment '{production[0]}' ships this image, so its base must be pinned by digest",
                document.source.value_position(where),
                field=".".join(map(str, where)),
                hint=f"e.g. `base: {overrides[0].split('@')[0]}@sha256:<64 hex>` (`mlc images lock` finds it)",
            )
        )
    return found


def _credentials(document: LoadedDocument) -> list[Diagnostic]:
    """Token-shaped literals anywhere but `secrets:` (whose own rule refuses literals there)."""
    found = []
    for path, kind in scan_data({k: v for k, v in document.data.items() if k != "secrets"}):
        found.append(
            error(
                f"looks like {kind}: a credential is never written in mlproject.yaml (it would reach "
                "ConfigMaps, labels and workflows)",
                document.source.value_position(path),
                field=".".join(map(str, path)),
                hint="keep it in a Kubernetes Secret (and a GitHub secret) and reference it: "
                "`secrets: {NAME: {k8s: <secret>, key: <key>, github: <NAME>}}`",
            )
        )
    return found


def _overlay_sets(document: LoadedDocument, environment: str, path: FieldPath) -> bool:
    node: Any = document.data["environments"][environment]
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return node is not None


def _validate_view(
    data: dict[str, Any],
    source: SourceMap,
    environment: tuple[str, set[FieldPath]] | None,
    root: Path | None,
    files: FileProbes,
    has_environments: bool,
) -> tuple[MLProject | None, list[Diagnostic]]:
    findings: list[Finding] = []
    spec: MLProject | None = None
    try:
        spec = MLProject.model_validate(data)
    except ValidationError as exc:
        findings.extend(findings_from_pydantic(exc, data))
    if spec is not None:
        env_name = environment[0] if environment else None
        findings.extend(section_rules(spec, env_name))
        findings.extend(job_data_rules(spec, env_name, has_environments))
    diagnostics = [_position(f, source, environment) for f in findings]
    if spec is not None and root is not None:
        for item in check_project_files(spec, root, source.file, files):
            diagnostics.append(item if isinstance(item, Diagnostic) else _position(item, source, environment))
    return spec, diagnostics


def _position(finding: Finding, source: SourceMap, environment: tuple[str, set[FieldPath]] | None) -> Diagnostic:
    path = finding.path
    position = source.key_position(path) if finding.at_key else source.value_position(path)
    field = ".".join(str(p) for p in path)
    if environment is not None:
        name, origin = environment
        if any(path[:i] in origin for i in range(len(path), 0, -1)):
            field = f"environments.{name}.{field}"
        else:
            # A rule about a merged mapping (e.g. replicas min <= max) blames the overlay when
            # the overlay changed something inside it: that is the line the user just edited.
            inside = sorted((p for p in origin if p[: len(path)] == path), key=str)
            if inside and path:
                position = source.value_position(inside[0])
                field = f"environments.{name}.{field}"
    return Diagnostic(finding.severity, finding.message, position, field, finding.hint)
