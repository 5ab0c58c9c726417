"""`mlc run`: a compiled job's command, run on this machine against embedded defaults.

The same `mlc-runtime` arguments as the job's pods (`runtime_config.runtime_arguments`), with the
environment's runtime config written to `.mlc/<environment>/runtime-config.json`. Without a
tracking server (no `registry.tracking_uri` in the spec, no `MLFLOW_TRACKING_URI`), MLflow runs
on a sqlite store under `.mlc/`, so nothing needs a cluster or a server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlc.compiler.resolve.environment import ResolvedSpec
from mlc.compiler.resolve.runtime_config import runtime_arguments, runtime_config

LOCAL_STATE_DIR = ".mlc"
LOCAL_TRACKING_URI = f"sqlite:///{LOCAL_STATE_DIR}/mlflow.db"  # relative: jobs run in the spec's folder


def local_runtime_config(resolved: ResolvedSpec, environ: Mapping[str, str]) -> dict[str, Any]:
    """The environment's runtime config, with the tracking URI this machine can reach."""
    config = runtime_config(resolved)
    if environ.get("MLFLOW_TRACKING_URI"):
        config["tracking_uri"] = environ["MLFLOW_TRACKING_URI"]
    elif resolved.spec.registry.tracking_uri is None:
        config["tracking_uri"] = LOCAL_TRACKING_URI
    return config


def local_config_path(environment: str) -> str:
    """Where `mlc run` keeps an environment's runtime config, relative to the spec's folder."""
    return f"{LOCAL_STATE_DIR}/{environment}/runtime-config.json"


def local_command(job: str, resolved: ResolvedSpec) -> list[str]:
    """The command `mlc run JOB` executes in the spec's folder."""
    return ["mlc-runtime", *runtime_arguments(job, resolved, local_config_path(resolved.environment))]


def config_text(config: Mapping[str, Any]) -> str:
    """The runtime config file's exact text (sorted keys, as the ConfigMap carries it)."""
    return json.dumps(config, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def write_local_config(root: Path, resolved: ResolvedSpec, environ: Mapping[str, str]) -> Path:
    """Write the environment's local runtime config under `root/.mlc/` (atomically)."""
    from mlc.compiler.cli.scaffold import write_new_file

    path = root / local_config_path(resolved.environment)
    write_new_file(path, config_text(local_runtime_config(resolved, environ)), overwrite=True)
    return path
