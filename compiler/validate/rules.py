"""Rules across sections of one merged spec: facts no single field's model can check.

A gate's metric must be computed; a project that trains needs `data.train`; engine-specific
settings must match the engine; torch, Python and GPU must have a build; a production
environment pins base images by digest; CI jobs need what they run. Each rule yields findings
(path, message, hint); `project` positions them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from typing import Any

from mlc.compiler.diagnostics import Finding, Severity
from mlc.compiler.load.document import FieldPath
from mlc.compiler.load.spec import DEFAULT_TRACKING_URI, TRACKING_SECRET_PREFIX, MLProject
from mlc.compiler.load.values import image_reference_with_digest, is_cluster_internal_url, quantity_to_number
from mlc.runtime.contract import LATENCY_METRICS, TASK_METRICS, TASKS, metric_is_higher_better, metric_tasks

PRODUCTION_ENVIRONMENTS = frozenset({"production", "prod"})


def section_rules(spec: MLProject, environment: str | None) -> Iterator[Finding]:
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
        yield from _metrics_fit_the_task(spec)

    contract = spec.data.contract
    for i, name in enumerate(contract.ids if contract is not None else []):
        assert contract is not None
        role = "a feature" if name in contract.features else "the target" if name == contract.target else None
        if role is not None:
            yield Finding(
                ("data", "contract", "ids", i),
                f"'{name}' is {role}; an id column is never fed to the model nor predicted",
                f"keep '{name}' in one place: ids (passed through beside predictions) or "
                + ("features" if role == "a feature" else "target"),
            )
        elif name in contract.ids[:i]:
            yield Finding(("data", "contract", "ids", i), f"'{name}' is listed twice", "list each id column once")
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
            image = serve.llm.image if serve.llm else None
            if image is not None and environment in PRODUCTION_ENVIRONMENTS and not image_reference_with_digest(image):
                yield Finding(
                    ("serve", "llm", "image"),
                    f"environment '{environment}' serves with this image, so it must be pinned by digest "
                    "(a tag can be pushed again)",
                    f"e.g. `image: {image.split('@')[0]}@sha256:<64 hex>`, or leave it out for mlc's pinned vLLM image",
                )
        elif serve.llm is not None:
            yield Finding(
                ("serve", "llm"),
                f"`llm` applies only to engine 'vllm', not '{serve.engine}'",
                "set `engine: vllm` or remove `llm`",
            )
        if serve.access is not None and serve.engine != "runtime":
            yield Finding(
                ("serve", "access"),
                f"`access` applies to engine 'runtime' (the project's model server), not '{serve.engine}'",
                "remove `access`, or serve with `engine: runtime`",
            )
        if serve.limits is not None and serve.engine != "runtime":
            yield Finding(
                ("serve", "limits"),
                f"`limits` applies to engine 'runtime' (the project's model server); '{serve.engine}' "
                "enforces its own request limits, which mlc does not set",
                "remove `limits`, or serve with `engine: runtime`",
            )
        if serve.access is not None and serve.access.metrics_port == serve.port:
            yield Finding(
                ("serve", "access", "metrics_port"),
                f"the metrics port must differ from serve.port ({serve.port}): it is opened to the monitoring "
                "namespace only",
                f"e.g. `metrics_port: {9090 if serve.port != 9090 else 9091}`",
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
    yield from _apt_pin_rules(spec)

    built = [role for role in ("train", "serve") if spec.builds_image(role)]
    if built and spec.images.registry is None:
        why = {"train": "the training image", "serve": "the serve image"}
        if serve is not None and serve.engine == "kserve":
            why["serve"] = "the serve image (KServe's storage initializer fetches the model with it)"
        yield Finding(
            ("images",),
            f"a project that builds images needs `images.registry`: it builds {' and '.join(why[r] for r in built)}",
            "e.g. `images: {registry: ghcr.io/acme}`",
        )

    yield from _monitor_rules(spec)

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
    check = spec.ci.model_check
    if "smoke_train" not in jobs and (check.training != "smoke" or check.runner is not None):
        # Accepted and ignored otherwise: nothing else trains in a pull request.
        yield Finding(
            ("ci", "model_check"),
            "applies to the model check, which `ci.pull_request` does not list",
            "add it, e.g. `pull_request: [validate, plan, smoke_train, gate]`",
        )
    yield from _ci_reaches_the_registry(spec)


def _monitor_rules(spec: MLProject) -> Iterator[Finding]:
    """The monitoring loop's sections must have what they read: data to check, a log, labels, a model."""
    monitor, train, serve, contract = spec.monitor, spec.train, spec.serve, spec.data.contract
    if monitor is None:
        return
    runs_mlc = spec.builds_image("train") or spec.builds_image("serve")
    log = monitor.prediction_log
    if log is not None and not (serve is not None and serve.engine == "runtime"):
        yield Finding(
            ("monitor", "prediction_log"),
            "the prediction log is written by mlc's model server and batch inference (serve.engine: runtime)",
            "serve with `engine: runtime`, or remove `prediction_log`",
        )
    drift = monitor.drift
    if drift is not None:
        if contract is None or not contract.features:
            yield Finding(("monitor", "drift"), "drift checks need `data.contract.features` to know what to watch")
        if drift.on_drift == "retrain" and train is None:
            yield Finding(("monitor", "drift", "on_drift"), "`on_drift: retrain` needs a `train` section")
        if drift.current.uri is None and log is None:
            yield Finding(
                ("monitor", "drift"),
                "the drift check has no current data: it reads the prediction log's window, and there is no "
                "`monitor.prediction_log`",
                "add `prediction_log: {uri: s3://.../predictions/}` under `monitor` (the model server writes it), "
                "or name files of recent inputs: `current: {uri: s3://.../live/}`",
            )
        if not runs_mlc:
            yield Finding(
                ("monitor", "drift"),
                "the drift check runs `mlc-runtime` in the project's image, and this project builds none "
                "(vLLM's server is not mlc's)",
                "remove `monitor.drift`, or add a `train` section (its image runs the check)",
            )
    feedback = monitor.feedback
    if feedback is not None:
        if log is None:
            yield Finding(
                ("monitor", "feedback"),
                "the feedback job joins labels to the logged predictions, and there is no `monitor.prediction_log`",
                "add `prediction_log: {uri: s3://.../predictions/}` under `monitor`",
            )
        if spec.evaluate is None or train is None:
            yield Finding(
                ("monitor", "feedback"),
                "the feedback job computes `evaluate.metrics` on the champion's live predictions: it needs "
                "`train` and `evaluate`",
            )
        if feedback.labels.label_column is None and (contract is None or contract.target is None):
            yield Finding(
                ("monitor", "feedback", "labels"),
                "no label column: set `label_column`, or `data.contract.target` (its default)",
                "e.g. `labels: {uri: s3://.../labels/, label_column: churned}`",
            )
    if serve is None and (monitor.alerts.latency_p95_ms or monitor.alerts.error_rate):
        yield Finding(("monitor", "alerts"), "serving alerts need a `serve` section")
    if monitor.alerts.prediction_psi is not None and (drift is None or log is None):
        # Accepted (the reference spec sets it without a log), but no alert is compiled: nothing would feed it.
        missing = " and ".join(
            name for name, section in (("monitor.prediction_log", log), ("monitor.drift", drift)) if section is None
        )
        yield Finding(
            ("monitor", "alerts", "prediction_psi"),
            f"not compiled: the drift job checks the model's predictions in the prediction log, and there is no "
            f"{missing}; no alert is emitted for it",
            "add `prediction_log: {uri: s3://.../predictions/}` (written by the model server) and `drift:` "
            "under `monitor`",
            Severity.WARNING,
        )


def _metrics_fit_the_task(spec: MLProject) -> Iterator[Finding]:
    """Every metric must apply to the target's task: the declared one (`data.contract.task`), or,
    undeclared, one task they all share (the gate would otherwise stop with no verdict)."""
    assert spec.evaluate is not None
    metrics = spec.evaluate.metrics
    contract = spec.data.contract
    declared = contract.task if contract is not None else None
    if declared is not None:
        for i, name in enumerate(metrics):
            if declared not in metric_tasks(name):
                applies = ", ".join(metric_tasks(name))
                yield Finding(
                    ("evaluate", "metrics", i),
                    f"'{name}' does not apply to a {declared} target (data.contract.task); it applies to: {applies}",
                    f"{declared} metrics: {', '.join(_task_metric_names(declared))}",
                )
        return
    shared = set(TASKS)
    for name in metrics:
        shared &= set(metric_tasks(name))
    if not shared:
        fitting = "; ".join(
            f"{task}: {', '.join(m for m in metrics if task in metric_tasks(m)) or 'none'}" for task in TASKS
        )
        yield Finding(
            ("evaluate", "metrics"),
            f"no target has all these metrics (they fit {fitting})",
            "keep the metrics of one task, and declare it: `data.contract.task: binary` (or multiclass, regression)",
        )


def _task_metric_names(task: str) -> list[str]:
    extra = ["top<k>_accuracy"] if task == "multiclass" else []
    return sorted(TASK_METRICS[task]) + extra + sorted(LATENCY_METRICS)


def _ci_reaches_the_registry(spec: MLProject) -> Iterator[Finding]:
    """A pull request job that talks to the tracking server must be able to resolve its name."""
    registry_jobs = [job for job in spec.ci.pull_request if job in ("smoke_train", "gate")]
    if not registry_jobs or not spec.ci_uses_tracking_server or spec.ci.runner != "hosted":
        return
    uri = spec.registry.tracking_uri or DEFAULT_TRACKING_URI
    if not is_cluster_internal_url(uri):
        return
    named = spec.registry.tracking_uri is not None
    where = ("registry", "tracking_uri") if named else ("ci", "pull_request")
    what = "registry.tracking_uri" if named else f"the default tracking URI {uri}"
    yield Finding(
        where,
        f"the pull request's {' and '.join(registry_jobs)} job(s) talk to the tracking server (a "
        f"{TRACKING_SECRET_PREFIX}* secret is given to CI), but {what} is cluster-internal: GitHub's "
        "hosted runners cannot resolve it",
        "name a tracking URL the runners can reach (e.g. `tracking_uri: https://mlflow.example.com`), run "
        "the jobs on runners inside the cluster (`ci: {runner: {self_hosted: [ml-cluster]}}`), or drop the "
        "secret's `github:` to train and gate on a store on the runner",
    )


def _apt_pin_rules(spec: MLProject) -> Iterator[Finding]:
    """Every apt package an image installs gets a version (hadolint DL3008; the same spec builds
    the same image): written `name=version`, one the project's table pins, or the version in the
    dated archive `apt_snapshot` names. Which distribution an image uses is resolve's choice (it
    depends on every environment's GPUs), so a package without a version must be pinned for each
    distribution mlc builds on; with a base override the distribution is the user's: only a
    written version can hold, and mlc does not know where that image's apt sources are."""
    roles = [role for role in ("train", "serve") if spec.builds_image(role)]
    images = {role: getattr(spec.images, role) for role in roles}
    if not any(image.system_packages or image.apt_snapshot for image in images.values()):
        return  # nothing to check: the table is not even loaded
    from mlc.compiler.compat import docker_build_table

    apt = docker_build_table().apt
    for role, image in images.items():
        if image.apt_snapshot is not None:
            yield from _apt_snapshot_rules(role, image.apt_snapshot, image.base, apt.snapshots.distros)
            continue
        for index, package in enumerate(image.system_packages):
            if "=" in package:
                continue
            path = ("images", role, "system_packages", index)
            if image.base is not None:
                yield Finding(
                    path,
                    f"apt package '{package}' has no version, and the base image {image.base} is not one whose "
                    "distribution mlc's pin table knows: it would install whatever the archive has that day",
                    f"write it with its version, e.g. '{package}=<version>' "
                    f"(`apt-cache policy {package}` in that image)",
                )
                continue
            missing = [distro for distro, pins in apt.distros.items() if package not in pins]
            if missing:
                known = sorted(set.intersection(*(set(pins) for pins in apt.distros.values())))
                yield Finding(
                    path,
                    f"apt package '{package}' has no pinned version for {', '.join(missing)} in mlc's table "
                    "(compiler/compat/data/docker_build.json): it would install whatever the archive has that day "
                    "(hadolint DL3008), or is not a package of that distribution",
                    f"write it with its version, e.g. '{package}=<version>' (`apt-cache policy {package}` in the base "
                    "image), or name a day of the distribution's archive to install from, e.g. "
                    f"`images: {{{role}: {{apt_snapshot: '2026-11-30'}}}}`; "
                    f"packages the table pins: {', '.join(known)}",
                )


def _apt_snapshot_rules(role: str, day: str, base: str | None, distros: Mapping[str, Any]) -> Iterator[Finding]:
    """A snapshot needs a base whose apt sources mlc knows, and a day its archive holds."""
    path = ("images", role, "apt_snapshot")
    if base is not None:
        yield Finding(
            path,
            f"an apt snapshot needs one of mlc's base images (it rewrites their apt sources), not {base}",
            "write each package with its version instead (`name=version`), or drop the base override",
        )
        return
    since = max(sources.since for sources in distros.values())
    if day < since:
        yield Finding(
            path,
            f"{day} is before the snapshot archives of every distribution mlc builds on ({since})",
            f"name a day on or after {since}",
        )


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
    from mlc.compiler.compat import CompatError, check_gpu_type, check_torch_python, known_gpu_types

    if torch is not None:
        try:
            check_torch_python(torch, spec.code.python)
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
