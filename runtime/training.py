"""`mlc-runtime train`: run the user's entrypoint with a `TrainingContext`, log and register the result.

The entrypoint's code: `train.entrypoint` is `module:function`, imported from the source folder:
`$MLC_CODE_SOURCE` when set, else `src/` under the working directory when it exists (the
conventional `code.source`, and where the images copy it), else the working directory.

The MLflow run is named `<project>-train-<environment>-<git short sha>` (`-smoke` after it for a
smoke run; no sha outside a git checkout). Lineage on it: params, the entrypoint's metrics, tags `mlc.spec_digest`,
`mlc.environment`, `mlc.project`, `mlc.data_digest` (sha256 over the training files' bytes),
`mlflow.source.git.commit` (when the folder is a git checkout), the training data's drift
reference profile (`reference_profile/profile.json`, what `drift --model` reads) and the profile
of the model's predictions on the eval set (`reference_profile/predictions.json`, for prediction
drift). A retraining started by a monitor is tagged `mlc.retrain.trigger` (drift | feedback) and
`mlc.retrain.trigger_run_id` (the check's MLflow run), on the run and the model version. The model is
registered as a new version of `registered_model` with the alias `challenger`.

Overrides (`train -p lr=0.01`, `param_overrides.py`) replace params for one run: the run logs
the params it trained with and the tag `mlc.overrides` (`lr=0.01`), and its checkpoints live in
a lineage of their own, so it never resumes from (or clears) the spec's run.

Errors in the project's own code (importing the entrypoint's module, or inside `train(ctx)`) are
`EntrypointError`s carrying that code's traceback from its first frame on: the user reads their
own frames, not mlc-runtime's and click's. An entrypoint must return a `torch.nn.Module`; None
(without a SIGTERM) or anything else is a `TrainingError` that says what came back.

Preemption: SIGTERM sets `ctx.should_stop`; the entrypoint saves a checkpoint and returns None;
the runtime then exits 143 (128 + SIGTERM) without registering, and the Job's retry resumes from
the checkpoint in the same MLflow run.
"""

from __future__ import annotations

import importlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlc.runtime.context import MetricLogger, TrainingContext
from mlc.runtime.contract.config import ConfigError, RuntimeConfig
from mlc.runtime.errors import MlcRuntimeError
from mlc.runtime.retraining import trigger_tags

if TYPE_CHECKING:
    import torch

    from mlc.runtime.checkpoints import CheckpointStore

SMOKE_ROWS = 256
SMOKE_EPOCHS = 1

CODE_SOURCE_ENV = "MLC_CODE_SOURCE"


class TrainingError(MlcRuntimeError):
    """Training could not produce a model (no entrypoint to import, it returned no module)."""


class EntrypointError(MlcRuntimeError):
    """The project's own code raised, importing the entrypoint's module or inside `train(ctx)`.

    `traceback` is that exception's traceback from the first frame outside mlc-runtime and
    importlib (chained exceptions included): what the user needs to find their bug.
    """

    def __init__(self, message: str, traceback: str) -> None:
        super().__init__(message)
        self.traceback = traceback


class Preempted(MlcRuntimeError):
    """SIGTERM arrived and the entrypoint stopped early; its checkpoint is the resume point."""


# Frames in these folders are mlc-runtime's own (or the import machinery's): a user's traceback starts below them.
_RUNTIME_FOLDER = Path(__file__).resolve().parent
_IMPORTLIB_FOLDER = Path(importlib.__file__).resolve().parent


def _is_runtime_frame(filename: str) -> bool:
    if filename.startswith("<frozen "):
        return True
    path = Path(filename).resolve()
    return path.is_relative_to(_RUNTIME_FOLDER) or path.is_relative_to(_IMPORTLIB_FOLDER)


def user_traceback(error: BaseException) -> str:
    """`error`'s traceback without the frames of mlc-runtime and importlib above the user's code."""
    frames = error.__traceback__
    while frames is not None and _is_runtime_frame(frames.tb_frame.f_code.co_filename):
        frames = frames.tb_next
    return "".join(traceback.format_exception(type(error), error, frames))


def _entrypoint_error(what: str, error: Exception) -> EntrypointError:
    text = str(error).strip()
    first = f": {text.splitlines()[0]}" if text else ""
    return EntrypointError(f"{what} raised {type(error).__name__}{first}", user_traceback(error))


def _describe_returned(value: Any) -> str:
    """What an entrypoint returned, in words: `a tuple (Linear, dict)`, `a dict`."""
    if isinstance(value, tuple | list):
        kinds = ", ".join(type(item).__name__ for item in value[:3]) + (", ..." if len(value) > 3 else "")
        return f"a {type(value).__name__} ({kinds})"
    return f"a {type(value).__name__}"


@dataclass(frozen=True)
class TrainingResult:
    run_id: str | None  # None on ranks other than 0
    model_version: str | None
    run_name: str | None = None
    experiment_id: str | None = None
    tracking_uri: str | None = None


def run_name(config: RuntimeConfig, commit: str | None, smoke: bool) -> str:
    """`churn-train-staging-1a2b3c4`: what ran, where, from which commit (see the module docstring)."""
    parts = [config.project, "train", config.environment, *([commit[:7]] if commit else [])]
    return "-".join(parts) + ("-smoke" if smoke else "")


def where_to_look(result: TrainingResult) -> str | None:
    """How to open the run in MLflow's UI: the command for a local store, the page for a server."""
    uri, experiment, run = result.tracking_uri, result.experiment_id, result.run_id
    if uri is None or run is None:
        return None
    page = f"#/experiments/{experiment}/runs/{run}"
    if uri.startswith(("http://", "https://")):
        return f"see the run: {uri.rstrip('/')}/{page}"
    if uri.startswith("sqlite:") or uri.startswith("file:") or "://" not in uri:
        return f"see the run: mlflow ui --backend-store-uri {uri}   then open http://127.0.0.1:5000/{page}"
    return None


def checkpoint_lineage(config: RuntimeConfig, overrides: dict[str, Any]) -> str:
    """The checkpoint folder's name: one per project, environment and spec (and set of overrides)."""
    import hashlib
    import json

    lineage = f"{config.project}-{config.environment}-{config.spec_digest.removeprefix('sha256:')[:12]}"
    if overrides:
        text = json.dumps(overrides, sort_keys=True)
        lineage += "-p" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return lineage


@dataclass(frozen=True)
class ProcessPlacement:
    """Where this process sits in a torchrun job (all zeros/ones without torchrun)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1


def process_placement(environ: dict[str, str] | os._Environ[str]) -> ProcessPlacement:
    """Rank and world size from torchrun's environment variables."""
    return ProcessPlacement(
        rank=int(environ.get("RANK", "0")),
        local_rank=int(environ.get("LOCAL_RANK", "0")),
        world_size=int(environ.get("WORLD_SIZE", "1")),
    )


def training_params(params: dict[str, Any], smoke: bool) -> dict[str, Any]:
    """The entrypoint's params; a smoke run caps `epochs` so it finishes in CI time."""
    if smoke and isinstance(params.get("epochs"), int):
        return {**params, "epochs": min(params["epochs"], SMOKE_EPOCHS)}
    return dict(params)


def code_source(environ: dict[str, str] | os._Environ[str], workdir: Path) -> Path:
    """The folder the entrypoint's module is imported from (see the module docstring)."""
    if environ.get(CODE_SOURCE_ENV):
        return Path(environ[CODE_SOURCE_ENV]).absolute()
    src = workdir / "src"
    return src if src.is_dir() else workdir


def load_entrypoint(entrypoint: str, source: Path) -> tuple[Any, Path | None]:
    """The entrypoint function, and its top-level package's folder (bundled into the model)."""
    module_name, _, function_name = entrypoint.partition(":")
    if not module_name or not function_name:
        raise ConfigError(f"train.entrypoint {entrypoint!r} must be module:function, e.g. churn.model:train")
    if str(source) not in sys.path:
        sys.path.insert(0, str(source))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and (module_name == error.name or module_name.startswith(error.name + ".")):
            raise TrainingError(f"cannot import {module_name!r} from {source} (set {CODE_SOURCE_ENV})") from None
        raise _entrypoint_error(f"importing {module_name}", error) from error
    except Exception as error:  # the module's own code failed at import: its traceback, not ours
        raise _entrypoint_error(f"importing {module_name}", error) from error
    function = getattr(module, function_name, None)
    if not callable(function):
        raise TrainingError(f"{module_name} has no function {function_name!r}")
    package = source / module_name.split(".")[0]
    return function, package if package.is_dir() else None


def git_commit(workdir: Path) -> str | None:
    """HEAD's commit when the folder is in a git checkout; None otherwise (never fails)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=workdir, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def configure_tracking(config: RuntimeConfig, environ: dict[str, str] | os._Environ[str]) -> str:
    """Point MLflow at the tracking store; `MLFLOW_TRACKING_URI` overrides the config."""
    import mlflow

    uri = environ.get("MLFLOW_TRACKING_URI") or config.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    return uri


def experiment_id(config: RuntimeConfig, tracking_uri: str) -> str:
    """The project's experiment; with a local sqlite store its artifacts live beside the database."""
    import mlflow

    experiment = mlflow.get_experiment_by_name(config.project)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if tracking_uri.startswith("sqlite:///"):
        location = (Path(tracking_uri.removeprefix("sqlite:///")).parent / "artifacts").absolute().as_uri()
    return mlflow.create_experiment(config.project, artifact_location=location)


def run_training(
    config: RuntimeConfig,
    smoke: bool = False,
    workdir: Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainingResult:
    """Train once: context, entrypoint, MLflow lineage, registration (see the module docstring).

    `overrides` (from `param_overrides.parse_overrides`) replace params for this run."""
    import torch

    workdir = workdir or Path.cwd()
    from mlc.runtime.data_check import require_valid_dataset

    train = config.require_train()
    config.require_contract()
    config.dataset("train")
    # The rows validate-data would refuse are refused here too, before any work (a smoke run
    # checks the rows it trains on).
    require_valid_dataset(config, "train", SMOKE_ROWS if smoke else None)
    placement = process_placement(os.environ)
    distributed = placement.world_size > 1
    if distributed:
        import torch.distributed as dist

        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        return _train_in_process_group(config, train.entrypoint, smoke, workdir, placement, overrides or {})
    finally:
        if distributed:
            import torch.distributed as dist

            dist.destroy_process_group()


def _train_in_process_group(
    config: RuntimeConfig,
    entrypoint: str,
    smoke: bool,
    workdir: Path,
    placement: ProcessPlacement,
    overrides: dict[str, Any],
) -> TrainingResult:
    import torch

    from mlc.runtime.checkpoints import open_checkpoint_store

    train = config.require_train()
    if torch.cuda.is_available():
        torch.cuda.set_device(placement.local_rank)
        device = torch.device("cuda", placement.local_rank)
    else:
        device = torch.device("cpu")
    function, package = load_entrypoint(entrypoint, code_source(os.environ, workdir))
    seed_everything(train.seed)
    with tempfile.TemporaryDirectory(prefix="mlc-train-") as scratch:
        # A smoke run must neither resume nor overwrite the real training's checkpoint.
        checkpoint_uri = scratch if smoke or train.checkpoint.uri is None else train.checkpoint.uri
        checkpoints = open_checkpoint_store(checkpoint_uri, checkpoint_lineage(config, overrides))
        params = training_params({**train.params, **overrides}, smoke)
        if placement.rank != 0:
            ctx = _context(config, params, smoke, device, placement, checkpoints, None)
            _call(function, ctx, entrypoint)
            return TrainingResult(None, None)
        return _train_and_register(
            config,
            function,
            entrypoint,
            params,
            smoke,
            device,
            placement,
            checkpoints,
            package,
            Path(scratch),
            workdir,
            overrides,
        )


def _context(
    config: RuntimeConfig,
    params: dict[str, Any],
    smoke: bool,
    device: torch.device,
    placement: ProcessPlacement,
    checkpoints: CheckpointStore,
    log_metric: MetricLogger | None,
) -> TrainingContext:
    return TrainingContext(
        config,
        params=params,
        smoke=smoke,
        device=device,
        rank=placement.rank,
        local_rank=placement.local_rank,
        world_size=placement.world_size,
        row_limit=SMOKE_ROWS if smoke else None,
        checkpoints=checkpoints,
        log_metric=log_metric,
    )


def _call(function: Any, ctx: TrainingContext, entrypoint: str) -> Any:
    """Run the entrypoint with SIGTERM turned into `ctx.should_stop`; its trained module."""
    import torch

    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: ctx.request_stop())
    try:
        model = function(ctx)
    except MlcRuntimeError:
        raise  # raised by a ctx method the entrypoint called (unreadable data, ...): already one clear line
    except Exception as error:
        raise _entrypoint_error(entrypoint, error) from error
    finally:
        signal.signal(signal.SIGTERM, previous)
    if model is None:
        if ctx.should_stop:
            raise Preempted("SIGTERM: the entrypoint stopped early; its last checkpoint is the resume point")
        raise TrainingError(f"{entrypoint} returned None; it must return the trained torch.nn.Module")
    if not isinstance(model, torch.nn.Module):
        raise TrainingError(
            f"{entrypoint} returned {_describe_returned(model)}; it must return the trained torch.nn.Module "
            "alone (log metrics with ctx.log_metric)"
        )
    return model


def _log_reference_profile(config: RuntimeConfig, uri: str) -> str:
    """Log the training data's drift reference profile to the active run; "logged" or why not.

    `drift --model models:/<name>@champion` reads it back. A training data layout the profiler
    cannot read is reported, not fatal: the model is still good, only drift checks lack a reference.
    """
    from mlc.runtime.drift.config import contract_features
    from mlc.runtime.drift.mlflow_profile import log_reference_profile
    from mlc.runtime.drift.profile import build_profile

    config.require_contract()
    kinds, _ = contract_features(config)
    try:
        log_reference_profile(build_profile(uri, kinds))
    except Exception as error:  # the profiler raises its own error types and pyarrow's
        print(f"warning: no drift reference profile logged: {error}", file=sys.stderr)
        return f"missing: {str(error).splitlines()[0] if str(error) else type(error).__name__}"[:250]
    return "logged"


def _log_prediction_profile(config: RuntimeConfig, model: Any, preprocessor: Any, scratch: Path) -> str:
    """Log the profile of the model's predictions on the eval set (`reference_profile/predictions.json`):
    the reference the drift job compares logged predictions with. "logged", or why not (never fatal)."""
    from mlc.runtime.contract_model import ContractModelParts, output_columns
    from mlc.runtime.datasets import locate_data_files, read_table
    from mlc.runtime.drift.mlflow_profile import PREDICTIONS_ARTIFACT_PATH, log_reference_profile
    from mlc.runtime.drift.profile import build_profile

    if config.evaluate is None or config.evaluate.dataset not in config.data:
        return "missing: no evaluate.dataset to predict on"
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        dataset = config.dataset(config.evaluate.dataset)
        contract = config.require_contract()
        table = read_table(locate_data_files(dataset.uri, dataset.format), text_columns=list(contract.features))
        parts = ContractModelParts(preprocessor, getattr(model, "module", model).cpu().eval())
        scored = parts.score(preprocessor.transform(table))
        path = scratch / "eval-predictions.parquet"
        pq.write_table(pa.table(scored), path)
        kinds = {name: "numeric" if kind == "float" else "categorical" for name, kind in output_columns(preprocessor)}
        log_reference_profile(build_profile(path, kinds), PREDICTIONS_ARTIFACT_PATH)
    except Exception as error:  # the model is still good; only prediction drift lacks a reference
        print(f"warning: no prediction reference profile logged: {error}", file=sys.stderr)
        return f"missing: {str(error).splitlines()[0] if str(error) else type(error).__name__}"[:250]
    return "logged"


def _train_and_register(
    config: RuntimeConfig,
    function: Any,
    entrypoint: str,
    params: dict[str, Any],
    smoke: bool,
    device: torch.device,
    placement: ProcessPlacement,
    checkpoints: CheckpointStore,
    package: Path | None,
    scratch: Path,
    workdir: Path,
    overrides: dict[str, Any],
) -> TrainingResult:
    import mlflow
    from mlflow import MlflowClient

    from mlc.runtime.datasets import data_digest, locate_data_files
    from mlc.runtime.model_package import log_contract_model
    from mlc.runtime.param_overrides import overrides_tag

    tracking_uri = configure_tracking(config, os.environ)
    train_data = config.dataset("train")
    files = locate_data_files(train_data.uri, train_data.format)
    tags = {
        "mlc.project": config.project,
        "mlc.environment": config.environment,
        "mlc.spec_digest": config.spec_digest,
        "mlc.data_digest": data_digest(files),
        "mlc.entrypoint": entrypoint,
        "mlc.smoke": str(smoke).lower(),
        "mlc.world_size": str(placement.world_size),
    }
    commit = git_commit(workdir)
    if commit:
        tags["mlflow.source.git.commit"] = commit
    if overrides:
        tags["mlc.overrides"] = overrides_tag(overrides)
    # A retraining a monitor started: which check, and its MLflow run (on the run and the new version).
    triggered = trigger_tags(os.environ)
    tags.update(triggered)
    resumed_run = checkpoints.load_run_id()
    with mlflow.start_run(
        run_id=resumed_run,
        experiment_id=None if resumed_run else experiment_id(config, tracking_uri),
        run_name=None if resumed_run else run_name(config, commit, smoke),
    ) as run:
        checkpoints.save_run_id(run.info.run_id)
        mlflow.set_tags(tags)
        if resumed_run is None:
            mlflow.log_params(params)
        ctx = _context(
            config,
            params,
            smoke,
            device,
            placement,
            checkpoints,
            lambda name, value, step: mlflow.log_metric(name, value, step=step),
        )
        try:
            model = _call(function, ctx, entrypoint)
        except Preempted:
            mlflow.end_run("KILLED")  # not FAILED: the retry resumes this run
            raise
        model = getattr(model, "module", model)  # a DistributedDataParallel wrapper: the module inside
        if ctx.preprocessor is None:
            ctx.load_training_data()  # the entrypoint read no data through the context: fit anyway
        assert ctx.preprocessor is not None
        mlflow.log_dict(ctx.preprocessor.to_dict(), "preprocessor.json")
        _, version = log_contract_model(
            model, ctx.preprocessor, [str(package)] if package else [], config.registered_model, scratch
        )
        tags["mlc.reference_profile"] = _log_reference_profile(config, train_data.uri)
        mlflow.set_tag("mlc.reference_profile", tags["mlc.reference_profile"])
        tags["mlc.prediction_profile"] = _log_prediction_profile(config, model, ctx.preprocessor, scratch)
        mlflow.set_tag("mlc.prediction_profile", tags["mlc.prediction_profile"])
        client = MlflowClient()
        client.set_registered_model_alias(config.registered_model, config.aliases.challenger, version)
        for key in ("mlc.spec_digest", "mlc.data_digest", "mlc.environment", "mlc.smoke", *triggered):
            client.set_model_version_tag(config.registered_model, version, key, tags[key])
    checkpoints.clear()
    return TrainingResult(run.info.run_id, version, run.info.run_name, run.info.experiment_id, tracking_uri)
