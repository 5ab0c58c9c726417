"""Stage 2, validate: loaded data -> typed `MLProject` per environment, or positioned diagnostics.

Three layers, all collected before anything is reported:

1. the pydantic models (`spec`): shape, types and value rules of each field;
2. cross-section rules (`_section_rules`): facts that span sections, e.g. a gate's metric
   must be one of `evaluate.metrics`;
3. project files (`project_files`): what the spec points at on disk.

`environments.*` overlays are deep-merged over the base and every merged result is validated in
full; a problem inside an overlay is reported at the overlay's own line.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from mlc.compiler.diagnostics import Diagnostic, Finding, Severity, error
from mlc.compiler.load.document import FieldPath, LoadedDocument, SourceMap
from mlc.compiler.load.file_probes import FileProbes
from mlc.compiler.load.spec import (
    Data,
    Dataset,
    MLProject,
    metric_is_higher_better,
)
from mlc.compiler.load.values import image_reference_with_digest, quantity_to_number
from mlc.compiler.validate.project_files import check_project_files, requirements_use_hashes

PRODUCTION_ENVIRONMENTS = frozenset({"production", "prod"})
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


def validate_document(
    document: LoadedDocument, root: Path | None = None, files: FileProbes | None = None
) -> tuple[ValidatedProject | None, list[Diagnostic]]:
    """Validate a loaded spec and every environment overlay; `root` enables file checks.

    Files under `root` are read and stat-ed through `files` (a fresh `FileProbes` when None);
    pass one to learn afterwards which filesystem facts the outcome depended on.
    """
    files = files if files is not None else FileProbes()
    base, diagnostics = _validate_view(document.data, document.source, None, root, files)
    base_seen = {(d.position, d.field, d.message) for d in diagnostics}
    environments: dict[str, MLProject] = {}
    raw_envs = document.data.get("environments")
    if isinstance(raw_envs, dict):
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
            merged, source, origin = merge_overlay(document, name)
            spec, env_diagnostics = _validate_view(merged, source, (name, origin), root, files)
            for d in env_diagnostics:
                if (d.position, d.field, d.message) in base_seen:
                    continue  # the base has this problem; report it once, there
                if not d.field.startswith("environments."):
                    d = Diagnostic(d.severity, f"{d.message} (in environment '{name}')", d.position, d.field, d.hint)
                diagnostics.append(d)
            if spec is not None:
                environments[name] = spec
    if any(d.severity is Severity.ERROR for d in diagnostics) or base is None:
        return None, diagnostics
    hashed = root is not None and requirements_use_hashes(root / base.code.requirements, files)
    return ValidatedProject(document, base, environments, root, hashed), diagnostics


def deep_merge(base: Any, overlay: Any) -> Any:
    """Overlay mappings onto base mappings; anything else replaces; `null` deletes a key."""
    if not (isinstance(base, dict) and isinstance(overlay, dict)):
        return overlay
    merged = dict(base)
    for key, value in overlay.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = deep_merge(base.get(key), value)
    return merged


def merge_overlay(document: LoadedDocument, env: str) -> tuple[dict[str, Any], SourceMap, set[FieldPath]]:
    """The merged data of one environment, its source map, and the paths the overlay set.

    A path is the overlay's when the overlay replaced the value there (a mapping merged into a
    mapping stays the base's, so only what the overlay really changed is blamed on it).
    """
    overlay = document.data["environments"][env]
    merged = deep_merge(document.data, overlay)
    merged.pop("environments", None)
    prefix: FieldPath = ("environments", env)
    base = document.source
    source = SourceMap(base.file, dict(base.values), dict(base.keys))
    origin: set[FieldPath] = set()

    def walk(base_node: Any, overlay_node: dict[str, Any], path: FieldPath) -> None:
        for key, value in overlay_node.items():
            here = (*path, key)
            if isinstance(value, dict) and isinstance(base_node, dict) and isinstance(base_node.get(key), dict):
                walk(base_node[key], value, here)
                continue
            origin.add(here)
            for table, target in ((base.values, source.values), (base.keys, source.keys)):
                for full, position in table.items():
                    if full[: len(prefix) + len(here)] == (*prefix, *here):
                        target[full[len(prefix) :]] = position

    walk(document.data, overlay, ())
    return merged, source, origin


def _validate_view(
    data: dict[str, Any],
    source: SourceMap,
    environment: tuple[str, set[FieldPath]] | None,
    root: Path | None,
    files: FileProbes,
) -> tuple[MLProject | None, list[Diagnostic]]:
    findings: list[Finding] = []
    spec: MLProject | None = None
    try:
        spec = MLProject.model_validate(data)
    except ValidationError as exc:
        findings.extend(_findings_from_pydantic(exc, data))
    if spec is not None:
        env_name = environment[0] if environment else None
        findings.extend(_section_rules(spec, env_name))
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


# --- pydantic errors -> findings ------------------------------------------------------------


def _findings_from_pydantic(exc: ValidationError, data: dict[str, Any]) -> Iterator[Finding]:
    grouped: dict[FieldPath, list[dict[str, Any]]] = {}
    for err in exc.errors(include_url=False):
        path = _data_path(err["loc"], data, err["type"])
        grouped.setdefault(path, []).append(err)
    for path, errors in grouped.items():
        yield _finding(path, errors)


def _data_path(loc: tuple[Any, ...], data: Any, kind: str) -> FieldPath:
    """Trim pydantic's loc to the part that names real data (drops union tags like 'str')."""
    path: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            node = node[part]
        else:
            last = i == len(loc) - 1
            if kind in ("missing", "extra_forbidden") and last:
                path.append(part)
            return tuple(path)
        path.append(part)
    return tuple(path)


_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
}


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string '{value}'" if len(value) <= 60 else "a long string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    return type(value).__name__


def _finding(path: FieldPath, errors: list[dict[str, Any]]) -> Finding:
    first = errors[0]
    kind = first["type"]
    value = first.get("input")
    secret = bool(path) and path[0] == "secrets"
    if kind == "missing":
        return Finding(path, "required field is missing", _example_for(path), at_key=False)
    if kind == "extra_forbidden":
        return _unknown_key(path)
    if secret and len(path) == 2 and kind in ("model_type", "dict_type", "model_attributes_type"):
        # Never echo what was written here: it may be the secret itself.
        return Finding(
            path,
            "must be a reference to a secret, not a value; a literal secret is never allowed in mlproject.yaml",
            "e.g. `AWS_ACCESS_KEY_ID: {k8s: aws-creds, key: access_key_id, github: AWS_ACCESS_KEY_ID}`",
        )
    if kind in _TYPE_NAMES or all(e["type"] in _TYPE_NAMES for e in errors):
        wanted = " or ".join(dict.fromkeys(_TYPE_NAMES.get(e["type"], "valid") for e in errors))
        got = "a value" if secret else _describe(value)
        return Finding(path, f"must be {wanted}, got {got}", _type_hint(kind, value))
    if kind == "literal_error":
        expected = first["ctx"]["expected"]
        got = "" if secret else f", got {_describe(value)}"
        return Finding(path, f"must be one of {expected}{got}", _close_match_hint(value, expected))
    if kind == "value_error":
        message = str(first["ctx"]["error"]) if "ctx" in first else first["msg"]
        return Finding(path, message)
    if kind in _COMPARISONS:
        bound = next(iter(first["ctx"].values()))
        what = "an integer" if isinstance(value, int) else "a number"
        got = "a value" if secret else repr(value)
        return Finding(path, f"must be {what} {_COMPARISONS[kind]} {bound}, got {got}")
    return Finding(path, first["msg"])


_COMPARISONS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}


def _type_hint(kind: str, value: Any) -> str:
    if kind == "string_type" and isinstance(value, float):
        return 'YAML read this as a number; quote it to keep it text, e.g. "3.10"'
    if kind == "string_type" and isinstance(value, int | bool):
        return "quote it to keep it text"
    if kind == "bool_type" and isinstance(value, str):
        return "write true or false (mlproject.yaml reads YAML 1.2: yes/no/on/off are plain strings)"
    if kind in ("int_type", "float_type") and isinstance(value, str):
        return "write the number without quotes"
    return ""


def _close_match_hint(value: Any, expected: str) -> str:
    if not isinstance(value, str):
        return ""
    options = re.findall(r"'([^']*)'", expected)
    match = difflib.get_close_matches(value, options, n=1)
    return f"did you mean '{match[0]}'?" if match else ""


_EXAMPLES = {
    ("apiVersion",): "start the file with `apiVersion: mlc/v1`",
    ("kind",): "add `kind: MLProject`",
    ("metadata",): "e.g. `metadata: {name: churn}`",
    ("metadata", "name"): "e.g. `name: churn` (DNS-1123 label, 1-40 chars)",
    ("train", "entrypoint"): "e.g. `entrypoint: churn.model:train`",
}


def _example_for(path: FieldPath) -> str:
    return _EXAMPLES.get(tuple(str(p) for p in path), "")


def _unknown_key(path: FieldPath) -> Finding:
    key = str(path[-1])
    allowed = sorted(allowed_keys(path[:-1]))
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        message = f"unknown key '{key}'; did you mean '{close[0]}'?"
    else:
        message = f"unknown key '{key}'; valid keys: {', '.join(allowed)}" if allowed else f"unknown key '{key}'"
    return Finding(path, message, at_key=True)


def _unwrap(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [a for arg in typing.get_args(annotation) for a in _unwrap(arg)]
    return [annotation]


def _step(annotation: Any, key: str | int) -> Any:
    for candidate in _unwrap(annotation):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            for name, info in candidate.model_fields.items():
                if key in (name, info.alias):
                    return info.annotation
            if candidate is Data:
                return Dataset
        origin = typing.get_origin(candidate)
        if origin is dict:
            return typing.get_args(candidate)[1]
        if origin is list:
            return typing.get_args(candidate)[0]
    return None


def allowed_keys(path: FieldPath) -> set[str]:
    """The keys the spec format allows in the mapping at `path` (for "did you mean")."""
    annotation: Any = MLProject
    for key in path:
        annotation = _step(annotation, key)
        if annotation is None:
            return set()
    for candidate in _unwrap(annotation):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return {info.alias or name for name, info in candidate.model_fields.items()}
    return set()


# --- rules across sections -------------------------------------------------------------------


def _section_rules(spec: MLProject, environment: str | None) -> Iterator[Finding]:
    """Facts that span sections of one (merged) spec."""
    datasets = spec.data.datasets()
    train, serve, evaluate = spec.train, spec.serve, spec.evaluate

    if train is None and serve is None:
        yield Finding((), "the project neither trains nor serves", "add a `train:` or a `serve:` section")
    if train is not None and "train" not in datasets:
        yield Finding(
            ("train",), "a project that trains needs `data.train`", "e.g. `data: {train: {uri: data/train.parquet}}`"
        )
    if evaluate is not None:
        if train is None:
            yield Finding(("evaluate",), "`evaluate` needs a `train` section (there is no challenger to evaluate)")
        if evaluate.dataset not in datasets:
            known = ", ".join(datasets) or "none defined"
            close = difflib.get_close_matches(evaluate.dataset, list(datasets), n=1)
            yield Finding(
                ("evaluate", "dataset"),
                f"'{evaluate.dataset}' is not a key of `data` (datasets: {known})",
                f"did you mean '{close[0]}'?" if close else "add it under `data:` with a `uri:`",
            )
        for i, gate in enumerate(evaluate.gates):
            if gate.metric not in evaluate.metrics:
                yield Finding(
                    ("evaluate", "gates", i, "metric"),
                    f"gate metric '{gate.metric}' is not listed in evaluate.metrics ({', '.join(evaluate.metrics)})",
                    "add it to `metrics:` so it is computed",
                )
            higher = metric_is_higher_better(gate.metric)
            if gate.max_drop is not None and not higher:
                yield Finding(
                    ("evaluate", "gates", i, "max_drop"),
                    f"'{gate.metric}' is lower-is-better: use max_rise, not max_drop",
                )
            if gate.max_rise is not None and higher:
                yield Finding(
                    ("evaluate", "gates", i, "max_rise"),
                    f"'{gate.metric}' is higher-is-better: use max_drop, not max_rise",
                )

    contract = spec.data.contract
    if contract is not None and contract.target is not None and contract.target in contract.features:
        yield Finding(
            ("data", "contract", "features", contract.target),
            f"the target '{contract.target}' must not also be a feature",
            "remove it from `features:` (it is the label the model predicts)",
            at_key=True,
        )

    if train is not None:
        yield from _memory_rule(("train", "resources", "memory"), train.resources.memory)
        if train.spot and train.checkpoint.uri is None:
            yield Finding(
                ("train", "spot"),
                "spot training without `checkpoint.uri` restarts from scratch after every preemption",
                "set `checkpoint: {uri: s3://.../checkpoints/}`",
                Severity.WARNING,
            )

    if serve is not None:
        yield from _memory_rule(("serve", "resources", "memory"), serve.resources.memory)
        if serve.engine == "vllm":
            if serve.llm is None:
                yield Finding(
                    ("serve", "engine"),
                    "engine 'vllm' needs `serve.llm`",
                    "e.g. `llm: {model: Qwen/Qwen2.5-7B-Instruct, revision: <commit sha>}`",
                )
            if serve.resources.gpus < 1:
                yield Finding(
                    ("serve", "resources", "gpus"),
                    "engine 'vllm' needs at least one GPU",
                    "e.g. `resources: {gpus: 1, gpu_type: nvidia-l4}`",
                )
            if serve.llm and serve.llm.tensor_parallel and serve.llm.tensor_parallel != serve.resources.gpus:
                yield Finding(
                    ("serve", "llm", "tensor_parallel"),
                    f"tensor_parallel ({serve.llm.tensor_parallel}) must equal serve.resources.gpus "
                    f"({serve.resources.gpus}): vLLM shards the model over the pod's GPUs",
                )
            if serve.batch is not None:
                yield Finding(
                    ("serve", "batch"), "batch inference runs the project's model with engine 'runtime', not 'vllm'"
                )
        elif serve.llm is not None:
            yield Finding(
                ("serve", "llm"),
                f"`llm` applies only to engine 'vllm', not '{serve.engine}'",
                "set `engine: vllm` or remove `llm`",
            )
        if serve.engine == "kserve" and serve.batch is not None:
            yield Finding(("serve", "batch"), "batch inference runs with engine 'runtime', not 'kserve'")
        if serve.engine == "kserve" and serve.autoscale.on == "queue_depth":
            yield Finding(
                ("serve", "autoscale", "on"),
                "KServe scales its own pods; `queue_depth` (KEDA) applies to engine runtime and vllm",
                "use `on: cpu` or `on: none` with engine kserve",
            )
        if serve.engine == "kserve" and serve.rollout.strategy == "canary":
            # mlc emits KServe's Standard (RawDeployment) mode, where KServe before 0.15 ignores
            # canaryTrafficPercent: a canary would silently be a full rollout.
            yield Finding(
                ("serve", "rollout", "strategy"),
                "KServe in Standard (RawDeployment) mode ignores canary traffic splitting; "
                "a canary would silently roll out to every replica",
                "use `rollout: {strategy: rolling}` with engine kserve, or engine runtime for a canary",
            )
        if serve.engine != "vllm" and serve.llm is None and train is None and serve.engine == "runtime":
            yield Finding(
                ("serve", "engine"),
                "engine 'runtime' serves the project's registered model, but the project has no `train`",
                "add `train:`, or serve an LLM with `engine: vllm`",
            )

    yield from _compatibility_rules(spec)

    images_built = train is not None or (serve is not None and serve.engine == "runtime")
    if images_built and spec.images.registry is None:
        yield Finding(
            ("images",),
            "a project that builds images needs `images.registry`",
            "e.g. `images: {registry: ghcr.io/acme}`",
        )
    if environment in PRODUCTION_ENVIRONMENTS:
        for role in ("train", "serve"):
            base = getattr(spec.images, role).base
            if base is not None and not image_reference_with_digest(base):
                yield Finding(
                    ("images", role, "base"),
                    f"environment '{environment}' requires the base image pinned by digest",
                    f"e.g. `base: {base.split('@')[0]}@sha256:<64 hex>` (`mlc images lock` finds it)",
                )

    monitor = spec.monitor
    if monitor is not None and monitor.drift is not None:
        if contract is None or not contract.features:
            yield Finding(("monitor", "drift"), "drift checks need `data.contract.features` to know what to watch")
        if monitor.drift.on_drift == "retrain" and train is None:
            yield Finding(("monitor", "drift", "on_drift"), "`on_drift: retrain` needs a `train` section")
    if monitor is not None and serve is None and (monitor.alerts.latency_p95_ms or monitor.alerts.error_rate):
        yield Finding(("monitor", "alerts"), "serving alerts need a `serve` section")
    if monitor is not None and monitor.alerts.prediction_psi is not None:
        # Nothing exports mlc_prediction_psi yet: an alert on it could never fire, so none is compiled.
        yield Finding(
            ("monitor", "alerts", "prediction_psi"),
            "not compiled yet: the prediction-drift alert needs the server's prediction log, which is coming; "
            "no alert is emitted for it",
            "remove it until then; input drift is alerted on through `monitor.drift`",
            Severity.WARNING,
        )

    if spec.gitops.engine != "none":
        if spec.gitops.repo is None:
            yield Finding(
                ("gitops", "repo"),
                f"gitops engine '{spec.gitops.engine}' needs `repo`",
                "e.g. `repo: https://github.com/acme/churn.git`",
            )
        elif not re.fullmatch(r"(https://|ssh://|git@)[^\s]+", spec.gitops.repo):
            yield Finding(
                ("gitops", "repo"), "must be an https:// or ssh git URL, e.g. https://github.com/acme/churn.git"
            )

    jobs = spec.ci.pull_request
    if len(set(jobs)) != len(jobs):
        yield Finding(("ci", "pull_request"), "jobs must not repeat")
    if "gate" in jobs and "smoke_train" not in jobs:
        yield Finding(
            ("ci", "pull_request"),
            "the `gate` job needs `smoke_train` (it gates the smoke model)",
            "e.g. `pull_request: [validate, plan, smoke_train, gate]`",
        )
    if "gate" in jobs and evaluate is None:
        yield Finding(("ci", "pull_request"), "the `gate` job needs an `evaluate` section")
    if "smoke_train" in jobs and train is None:
        yield Finding(("ci", "pull_request"), "the `smoke_train` job needs a `train` section")
    if "data_tests" in jobs and (contract is None or not contract.features):
        yield Finding(("ci", "pull_request"), "the `data_tests` job needs `data.contract.features`")


def _compatibility_rules(spec: MLProject) -> Iterator[Finding]:
    """torch/Python/GPU combinations that no base image or wheel can satisfy."""
    torch = spec.code.framework.torch
    placements = []
    if spec.train is not None and spec.train.resources.gpus:
        placements.append((("train", "resources", "gpu_type"), spec.train.resources.gpu_type, torch))
    if spec.serve is not None and spec.serve.resources.gpus:
        # vLLM images bring their own torch build: only the GPU name is checked for them.
        serve_torch = torch if spec.serve.engine != "vllm" else None
        placements.append((("serve", "resources", "gpu_type"), spec.serve.resources.gpu_type, serve_torch))
    placements = [p for p in placements if p[1] is not None]
    if torch is None and not placements:
        return  # nothing to check: the tables (and their models) are not even loaded
    from mlc.compiler.compat import CompatError, check_gpu_type, known_gpu_types, resolve_base_image

    if torch is not None:
        try:
            resolve_base_image(torch, spec.code.python, gpu=False)
        except CompatError as exc:
            key = "torch" if exc.field == "torch" else "python"
            path = ("code", "framework", "torch") if key == "torch" else ("code", "python")
            yield Finding(path, exc.message)
            return
    for path, gpu_type, torch_version in placements:
        if torch_version is None:
            if gpu_type not in known_gpu_types():
                close = difflib.get_close_matches(gpu_type, known_gpu_types(), n=2)
                hint = f"did you mean {' or '.join(close)}?" if close else f"known: {', '.join(known_gpu_types())}"
                yield Finding(path, f"unknown gpu_type '{gpu_type}'", hint)
            continue
        try:
            check_gpu_type(gpu_type, torch_version)
        except CompatError as exc:
            yield Finding(path, exc.message)


def _memory_rule(path: FieldPath, memory: str) -> Iterator[Finding]:
    if quantity_to_number(memory) < 2**20:
        yield Finding(
            path, f"'{memory}' is less than one mebibyte (a bare number means bytes)", f"did you mean '{memory}Gi'?"
        )
