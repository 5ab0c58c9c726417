"""`mlc run`: a compiled job's command, run on this machine against embedded defaults.

The same `mlc-runtime` arguments as the job's pods (`contract.job_arguments`), with the
environment's runtime config written to `.mlc/<environment>/runtime-config.json`. Without a
tracking server (no `registry.tracking_uri` in the spec, no `MLFLOW_TRACKING_URI`), MLflow runs
on a sqlite store under `.mlc/`, so nothing needs a cluster or a server.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mlc.compiler.resolve.resolved import ResolvedSpec
from mlc.compiler.resolve.runtime_config import config_json, runtime_config
from mlc.runtime.contract import LOCAL_TRACKING_URI, job_arguments, local_config_path
from mlc.runtime.contract.config import RuntimeConfig


def local_runtime_config(resolved: ResolvedSpec, environ: Mapping[str, str]) -> RuntimeConfig:
    """The environment's runtime config, with the tracking URI this machine can reach; a local
    server follows the alias (no Deployment here pins a version)."""
    config = runtime_config(resolved)
    if config.serve is not None and config.serve.pinned_deployment is not None:
        config = config.model_copy(update={"serve": config.serve.model_copy(update={"pinned_deployment": None})})
    if environ.get("MLFLOW_TRACKING_URI"):
        return config.model_copy(update={"tracking_uri": environ["MLFLOW_TRACKING_URI"]})
    if resolved.spec.registry.tracking_uri is None:
        return config.model_copy(update={"tracking_uri": LOCAL_TRACKING_URI})
    return config


def local_command(job: str, resolved: ResolvedSpec) -> list[str]:
    """The command `mlc run JOB` executes in the spec's folder."""
    port = resolved.spec.serve.port if resolved.spec.serve is not None else None
    return ["mlc-runtime", *job_arguments(job, local_config_path(resolved.environment), port)]


def write_local_config(root: Path, resolved: ResolvedSpec, environ: Mapping[str, str]) -> Path:
    """Write the environment's local runtime config under `root/.mlc/` (atomically)."""
    from mlc.compiler.cli.scaffold import write_new_file

    path = root / local_config_path(resolved.environment)
    write_new_file(path, config_json(local_runtime_config(resolved, environ)), overwrite=True)
    return path
