"""Every field of the spec does something: what is accepted and ignored is a bug.

Each leaf field of the spec models has an entry: a valid change to it (from a base spec, after an
optional patch that makes the field apply), and that change must change the compiled artifacts;
or a reason it compiles to nothing (a value with one choice, a consistency check). A new field
without an entry fails here. The runtime config's fields are held to the same rule on the
runtime's side: each is read by the runtime, or by the artifact that enforces it.
"""

from __future__ import annotations

import copy
import re
import types
import typing
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from mlc.compiler.load.spec import MLProject
from mlc.compiler.pipeline import compile_spec_file
from mlc.runtime.contract.config import RuntimeConfig
from spec_fixtures import REPO_ROOT, make_project

BASE: dict[str, Any] = {
    "apiVersion": "mlc/v1",
    "kind": "MLProject",
    "metadata": {"name": "demo", "namespace": "ml-demo", "labels": {"team": "ml"}},
    "code": {"python": "3.11", "requirements": "requirements.lock", "source": "src/", "framework": {"torch": "2.13.0"}},
    "images": {"registry": "ghcr.io/acme", "train": {"system_packages": ["libgomp1"]}, "serve": {}},
    "data": {
        "train": {"uri": "s3://b/train/", "format": "parquet"},
        "eval": {"uri": "s3://b/eval.parquet"},
        "contract": {"target": "label", "task": "binary", "features": {"x": {"type": "float", "min": 0}}},
    },
    "train": {
        "entrypoint": "demo.model:train",
        "params": {"lr": 0.1},
        "seed": 1,
        "resources": {"gpus": 0, "cpu": 2, "memory": "8Gi"},
        "distributed": {"nodes": 1, "backend": "job"},
        "queue": "team-q",
        "spot": True,
        "checkpoint": {"uri": "s3://b/ckpt/", "every": "epoch"},
        "timeout": "6h",
        "schedule": "0 3 * * 1",
    },
    "registry": {"tracking_uri": "https://mlflow.example.com", "model": "demo-model"},
    "evaluate": {
        "dataset": "eval",
        "metrics": ["f1", "roc_auc"],
        "gates": [{"metric": "f1", "min": 0.5}],
        "first_model": "allow",
    },
    "serve": {
        "engine": "runtime",
        "port": 8080,
        "replicas": {"min": 1, "max": 4},
        "autoscale": {"on": "queue_depth", "target": 8},
        "resources": {"cpu": 1, "memory": "2Gi", "gpus": 0},
        "rollout": {
            "strategy": "canary",
            "steps": [10, 50, 100],
            "pause": "5m",
            "abort_if": {"error_rate": 0.02, "latency_p95_ms": 100},
        },
        "batch": {"schedule": "0 * * * *", "input": "s3://b/in/", "output": "s3://b/out/", "parallelism": 2},
    },
    "monitor": {
        "prediction_log": {"uri": "s3://b/predictions/", "sample_rate": 0.5},
        "drift": {
            "schedule": "*/30 * * * *",
            "current": {"uri": "s3://b/live/", "window": "24h"},
            "method": "auto",
            "threshold": {"psi": 0.2, "share": 0.3},
            "on_drift": "retrain",
        },
        "feedback": {
            "schedule": "15 * * * *",
            "labels": {"uri": "s3://b/labels/", "id_column": "request_id", "label_column": "label", "max_delay": "7d"},
            "min_rows": 200,
            "on_degrade": "alert",
        },
        "alerts": {"latency_p95_ms": 150, "error_rate": 0.01, "prediction_psi": 0.25},
        "pushgateway": "http://pg.monitoring.svc:9091",
    },
    "secrets": {"AWS_ACCESS_KEY_ID": {"k8s": "aws", "key": "id"}},
    "gitops": {"engine": "argocd", "repo": "https://github.com/acme/demo.git", "path": "deploy", "branch": "main"},
    "ci": {
        "provider": "github",
        "pull_request": ["validate", "plan", "data_tests", "smoke_train", "gate"],
        "bot": {"commit": True, "comment": True},
        "runner": "hosted",
    },
    "environments": {"staging": {}},
}
GPU = {"serve": {"resources": {"gpus": 1}}}
KSERVE_READY = {
    "serve": {"rollout": {"strategy": "rolling"}, "autoscale": {"on": "cpu"}, "batch": None},
    "monitor": {"prediction_log": None, "feedback": None},  # the log is written by mlc's own server
}
VLLM = {
    "serve": {
        "engine": "vllm",
        "llm": {"model": "Qwen/Qwen2.5-7B-Instruct", "revision": "a" * 40, "max_model_len": 4096},
        "resources": {"gpus": 1, "gpu_type": "nvidia-l4"},
        "rollout": {"strategy": "rolling"},
        "batch": None,
    },
    "monitor": {"prediction_log": None, "feedback": None},
}
DIGEST = "@sha256:" + "a" * 64
ACCESS = {
    "serve": {
        "access": {
            "callers": [{"namespace": "web", "pods": {"app": "checkout"}}],
            "api_keys": {"k8s": "demo-keys"},
            "rate_limit": {"requests_per_second": 10},
        }
    }
}

# path -> (patch applied to BASE first, the new value of the path)
CHANGES: dict[str, tuple[dict[str, Any], Any]] = {
    "metadata.name": ({}, "other"),
    "metadata.namespace": ({}, "ml-other"),
    "metadata.labels": ({}, {"team": "other"}),
    "code.python": ({}, "3.12"),
    "code.requirements": ({}, "other.lock"),
    "code.source": ({}, "lib/"),
    "code.framework.torch": ({}, "2.14.1"),
    "images.registry": ({}, "registry.example.com/team"),
    "images.train.gpu": ({}, True),
    "images.train.system_packages": ({}, ["libgomp1", "libgl1"]),
    # A base override's distribution is the user's: its apt packages carry their versions.
    "images.train.base": (
        {"images": {"train": {"system_packages": ["libgomp1=12.2.0-14+deb12u1"]}}},
        "python:3.11-slim" + DIGEST,
    ),
    "images.serve.gpu": ({}, True),
    "images.serve.system_packages": ({}, ["libgl1"]),
    "images.serve.base": ({}, "python:3.11-slim" + DIGEST),
    "images.train.apt_snapshot": ({}, "2026-11-30"),
    "images.serve.apt_snapshot": ({}, "2026-11-30"),
    "images.runtime.wheel": ({}, "vendor/mlc-0.1.0-py3-none-any.whl"),  # `compiled` writes one there
    "images.runtime.index_url": ({}, "https://pypi.example.com/simple"),
    "data.train.uri": ({}, "s3://b/other/"),
    "data.train.format": ({}, "csv"),
    "data.eval.uri": ({}, "s3://b/other.parquet"),
    "data.eval.format": ({}, "csv"),
    "data.contract.target": ({}, "y"),
    "data.contract.task": ({"evaluate": {"metrics": ["f1"]}}, "multiclass"),
    "data.contract.features": ({}, {"x": {"type": "float"}, "plan": {"type": "category"}}),
    "data.contract.ids": ({}, ["customer_id"]),
    "train.entrypoint": ({}, "demo.model:fit"),
    "train.params": ({}, {"lr": 0.2}),
    "train.seed": ({}, 2),
    "train.resources.gpus": ({}, 1),
    "train.resources.gpu_type": ({"train": {"resources": {"gpus": 1, "gpu_type": "nvidia-l4"}}}, "nvidia-a100-80gb"),
    "train.resources.cpu": ({}, 4),
    "train.resources.memory": ({}, "16Gi"),
    "train.distributed.nodes": ({}, 2),
    "train.distributed.backend": ({"train": {"distributed": {"nodes": 2}}}, "jobset"),
    "train.queue": ({}, "other-q"),
    "train.spot": ({}, False),
    "train.checkpoint.uri": ({}, "s3://b/other-ckpt/"),
    "train.checkpoint.every": ({}, "100steps"),
    "train.timeout": ({}, "1h"),
    "train.schedule": ({}, "0 4 * * 2"),
    "registry.tracking_uri": ({}, "https://other.example.com"),
    "registry.model": ({}, "other-model"),
    "registry.timeout": ({}, "30s"),
    "registry.retries": ({}, 5),
    "evaluate.dataset": ({"data": {"holdout": {"uri": "s3://b/holdout.parquet"}}}, "holdout"),
    "evaluate.metrics": ({}, ["f1", "roc_auc", "accuracy"]),
    "evaluate.gates": ({}, [{"metric": "f1", "min": 0.6}]),
    "evaluate.first_model": ({}, "block"),
    "serve.engine": (KSERVE_READY, "kserve"),
    "serve.port": ({}, 9000),
    "serve.replicas.min": ({}, 2),
    "serve.replicas.max": ({}, 8),
    "serve.autoscale.on": ({}, "cpu"),
    "serve.autoscale.target": ({}, 4),
    "serve.resources.cpu": ({}, 2),
    "serve.resources.memory": ({}, "4Gi"),
    "serve.resources.gpus": ({}, 1),
    "serve.resources.gpu_type": (GPU, "nvidia-l4"),
    "serve.rollout.strategy": ({}, "rolling"),
    "serve.rollout.steps": ({}, [20, 100]),
    "serve.rollout.pause": ({}, "10m"),
    "serve.rollout.abort_if.error_rate": ({}, 0.05),
    "serve.rollout.abort_if.latency_p95_ms": ({}, 200),
    "serve.llm.model": (VLLM, "meta-llama/Llama-3.1-8B-Instruct"),
    "serve.llm.revision": (VLLM, "b" * 40),
    "serve.llm.max_model_len": (VLLM, 8192),
    "serve.llm.image": (VLLM, "registry.local/vllm-openai@sha256:" + "c" * 64),
    "serve.batch.schedule": ({}, "30 * * * *"),
    "serve.batch.input": ({}, "s3://b/in2/"),
    "serve.batch.output": ({}, "s3://b/out2/"),
    "serve.batch.parallelism": ({}, 4),
    "serve.batch.invalid_rows": ({}, "skip"),
    "serve.access.callers": (ACCESS, [{"namespace": "web"}]),
    "serve.access.monitoring_namespace": (ACCESS, "observability"),
    "serve.access.metrics_port": (ACCESS, 9100),
    "serve.access.api_keys.k8s": (ACCESS, "other-keys"),
    "serve.access.rate_limit.requests_per_second": (ACCESS, 20),
    "serve.access.rate_limit.burst": (ACCESS, 40),
    "serve.access.audit": (ACCESS, "payloads"),
    "serve.access.trusted_proxies": (ACCESS, ["10.0.0.0/8"]),
    "serve.limits.max_body_bytes": ({}, 1024 * 1024),
    "serve.limits.max_rows": ({}, 1000),
    "serve.limits.max_columns": ({}, 64),
    "serve.limits.max_depth": ({}, 8),
    "serve.limits.header_timeout": ({}, "5s"),
    "serve.limits.body_timeout": ({}, "1m"),
    "monitor.drift.schedule": ({}, "0 * * * *"),
    "monitor.drift.current.uri": ({}, "s3://b/live2/"),
    "monitor.drift.current.window": ({}, "6h"),
    "monitor.drift.method": ({}, "psi"),
    "monitor.drift.threshold.psi": ({}, 0.3),
    "monitor.drift.threshold.share": ({}, 0.5),
    "monitor.drift.on_drift": ({}, "alert"),
    "monitor.alerts.latency_p95_ms": ({}, 300),
    "monitor.alerts.prediction_psi": ({}, 0.3),
    "monitor.prediction_log.uri": ({}, "s3://b/predictions2/"),
    "monitor.prediction_log.sample_rate": ({}, 0.1),
    "monitor.feedback.schedule": ({}, "45 * * * *"),
    "monitor.feedback.labels.uri": ({}, "s3://b/labels2/"),
    "monitor.feedback.labels.id_column": ({}, "order_id"),
    "monitor.feedback.labels.label_column": ({}, "churned"),
    "monitor.feedback.labels.max_delay": ({}, "30d"),
    "monitor.feedback.min_rows": ({}, 50),
    "monitor.feedback.on_degrade": ({}, "retrain"),
    "monitor.alerts.error_rate": ({}, 0.05),
    "monitor.pushgateway": ({}, "http://other.monitoring.svc:9091"),
    "secrets": ({}, {"AWS_ACCESS_KEY_ID": {"k8s": "aws", "key": "id"}, "HF_TOKEN": {"k8s": "hf", "key": "t"}}),
    "volumes": ({}, {"data": {"claim": "demo-data", "path": "data/"}}),
    "gitops.engine": ({}, "flux"),
    "gitops.repo": ({}, "https://github.com/acme/other.git"),
    "gitops.path": ({}, "k8s"),
    "gitops.branch": ({}, "release"),
    "ci.pull_request": ({}, ["validate", "plan"]),
    "ci.bot.commit": ({}, False),
    "ci.bot.comment": ({}, False),
    "ci.runner.self_hosted": ({"ci": {"runner": {"self_hosted": ["ml-a"]}}}, ["ml-b"]),
    "ci.model_check.training": ({}, "full"),
    "ci.model_check.runner.self_hosted": ({"ci": {"model_check": {"runner": {"self_hosted": ["gpu-a"]}}}}, ["gpu-b"]),
}
COMPILE_TIME_ONLY = {
    "apiVersion": "the format's version: one value, mlc/v1",
    "kind": "one value, MLProject",
    "ci.provider": "one value, github",
    "environments": "the overlays themselves: every field they set is a field above",
    "serve.llm.tensor_parallel": "a check: it must equal serve.resources.gpus, which sets vLLM's tensor parallelism",
    "images.runtime.version": "a check: one value, the compiler's own version (the default)",
}


def _unwrap(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [a for arg in typing.get_args(annotation) for a in _unwrap(arg)]
    return [annotation]


def leaf_fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted paths of every field that holds a value (a section's fields, not the section)."""
    found = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{info.alias or name}"
        sections = [c for c in _unwrap(info.annotation) if isinstance(c, type) and issubclass(c, BaseModel)]
        found += [p for section in sections for p in leaf_fields(section, path + ".")] or [path]
    return found


def merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def with_value(spec: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(spec)
    *parents, last = path.split(".")
    node = changed
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return changed


@cache
def compiled(spec_yaml: str, root: Path) -> dict[str, bytes]:
    spec = make_project(root, spec_yaml)
    (root / "other.lock").write_text("numpy==2.0.0\n")
    (root / "lib" / "demo").mkdir(parents=True, exist_ok=True)
    (root / "lib" / "demo" / "model.py").write_text("def train(ctx):\n    return None\n")
    (root / "vendor").mkdir(exist_ok=True)
    (root / "vendor" / "mlc-0.1.0-py3-none-any.whl").write_bytes(b"a wheel's bytes: only its sha256 is compiled")
    result = compile_spec_file(spec, "mlproject.yaml")
    assert result.ok, [d.render() for d in result.result.diagnostics]
    return {artifact.path: _without_provenance(artifact.content) for artifact in result.artifacts}


def _without_provenance(content: bytes) -> bytes:
    """The artifact less what changes with any edit of the spec, or with the rest of the file:
    its header and version label (digests of its own content), and the whole spec's digest the
    runtime config records. A field must change something else."""
    text = content.decode().split("\n", 1)[1]
    text = re.sub(r'\\"spec_digest\\": \\"sha256:[0-9a-f]+\\"|"spec_digest": "sha256:[0-9a-f]+"', "SPEC", text)
    return re.sub(r"app\.kubernetes\.io/version: \S+", "VERSION", text).encode()


def test_every_field_has_an_entry() -> None:
    fields = set(leaf_fields(MLProject))
    assert not fields & set(COMPILE_TIME_ONLY) & set(CHANGES)
    assert fields - set(CHANGES) - set(COMPILE_TIME_ONLY) == set(), "give each new field an entry here"
    assert set(CHANGES) | set(COMPILE_TIME_ONLY) <= fields, "entries for fields that no longer exist"


@pytest.mark.parametrize("path", sorted(CHANGES))
def test_changing_the_field_changes_what_is_compiled(path: str, tmp_path: Path) -> None:
    patch, value = CHANGES[path]
    before = merged(BASE, patch)
    after = with_value(before, path, value)
    assert after != before, f"{path}: the new value is the old one"
    old = compiled(yaml.safe_dump(before, sort_keys=False), tmp_path / "before")
    new = compiled(yaml.safe_dump(after, sort_keys=False), tmp_path / "after")
    assert old != new, f"{path}: accepted, and changes nothing compiled"


# Fields of the runtime config the runtime does not read, and what enforces them instead.
ENFORCED_BY_ARTIFACTS = {
    "timeout_seconds": "the training Job's activeDeadlineSeconds",
    "nodes": "the Indexed Job's completions and torchrun's --nnodes",
    "gpus_per_node": "the pod's nvidia.com/gpu limit and torchrun's --nproc-per-node",
    "spot": "the pod's tolerations and podFailurePolicy",
    "engine": "which server the compiler deploys",
    "pushgateway": "the drift CronJob's --push argument",
    "push_job": "the contract's DRIFT_PUSH_JOB, which the runtime pushes under",
    "compiler_version": "provenance, for people reading the ConfigMap",
}


def test_every_runtime_config_field_is_read_by_the_runtime_or_enforced_by_an_artifact() -> None:
    sources = [
        path.read_text(encoding="utf-8")
        for path in (REPO_ROOT / "runtime").rglob("*.py")
        if "contract" not in path.parts and "__pycache__" not in path.parts
    ]
    code = "\n".join(sources)
    names = {path.rsplit(".", 1)[-1] for path in leaf_fields(RuntimeConfig)}
    unread = {name for name in names if not re.search(rf"\.{name}\b|\"{name}\"|'{name}'", code)}
    assert unread == set(ENFORCED_BY_ARTIFACTS), unread ^ set(ENFORCED_BY_ARTIFACTS)
