"""The runtime config: load the JSON the compiler emits and check it is usable.

The shape is documented in `mlc.compiler.resolve.runtime_config` (the writer); this module is the
reader and never imports the compiler. Unknown keys are ignored, so a newer compiler that adds
defaulted fields does not break an older runtime; a different `format_version` is refused.

Paths in `data.*.uri` and `train.checkpoint.uri` are relative to the working directory (the
spec's folder, where `mlc run` starts the runtime) unless they carry a scheme (`s3://`, ...).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

FORMAT_VERSION = 1
CONFIG_ERROR_EXIT_CODE = 78  # sysexits EX_CONFIG; the config's `exit_codes.config_error`


class ConfigError(Exception):
    """The runtime config cannot be used: missing, not JSON, another format, a missing section."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


FeatureType = Literal["float", "int", "bool", "category", "string", "bytes"]


class Feature(_Section):
    type: FeatureType
    min: float | None = None
    max: float | None = None
    nullable: bool = False
    values: list[str | int] | None = None


class Contract(_Section):
    target: str | None = None
    features: dict[str, Feature] = {}


class Dataset(_Section):
    uri: str
    format: Literal["csv", "parquet"] | None = None


class Checkpoint(_Section):
    uri: str | None = None
    every: str = "epoch"


class Train(_Section):
    entrypoint: str
    params: dict[str, Any] = {}
    seed: int = 0
    checkpoint: Checkpoint = Checkpoint()
    timeout_seconds: int | None = None
    nodes: int = 1
    gpus_per_node: int = 0
    spot: bool = False


class Gate(_Section):
    metric: str
    min: float | None = None
    max: float | None = None
    max_drop: float | None = None
    max_rise: float | None = None


class Evaluate(_Section):
    dataset: str
    metrics: list[str] = []
    first_model: Literal["allow", "block"] = "allow"
    gates: list[Gate] = []


class CurrentData(_Section):
    uri: str
    window_seconds: int | None = None


class DriftThreshold(_Section):
    psi: float = 0.2
    share: float = 0.3


class Drift(_Section):
    current: CurrentData
    method: Literal["auto", "psi", "ks", "chi2"] = "auto"
    threshold: DriftThreshold = DriftThreshold()
    on_drift: Literal["alert", "retrain"] = "alert"
    retrain_cronjob: str | None = None


class ServeBatch(_Section):
    input: str
    output: str
    parallelism: int = 1


class Serve(_Section):
    engine: str = "runtime"
    port: int = 8080
    batch: ServeBatch | None = None


class Metrics(_Section):
    pushgateway: str | None = None
    push_job: str = "mlc-drift"
    grouping: dict[str, str] = {}
    names: dict[str, str] = {}  # role -> metric name; alerts, KEDA and analyses query these


class Aliases(_Section):
    challenger: str = "challenger"
    champion: str = "champion"
    previous: str = "previous"


class ExitCodes(_Section):
    config_error: int = CONFIG_ERROR_EXIT_CODE


class RuntimeConfig(_Section):
    format_version: int
    project: str
    environment: str
    spec_digest: str
    tracking_uri: str
    registered_model: str
    aliases: Aliases = Aliases()
    data: dict[str, Dataset] = {}
    contract: Contract | None = None
    train: Train | None = None
    evaluate: Evaluate | None = None
    drift: Drift | None = None
    serve: Serve | None = None
    metrics: Metrics = Metrics()
    namespace: str | None = None
    exit_codes: ExitCodes = ExitCodes()

    def dataset(self, name: str) -> Dataset:
        """A named dataset, or a ConfigError naming the ones there are."""
        if name not in self.data:
            known = ", ".join(self.data) or "none"
            raise ConfigError(f"no dataset {name!r} in the runtime config (datasets: {known})")
        return self.data[name]

    def require_contract(self) -> Contract:
        if self.contract is None or not self.contract.features:
            raise ConfigError("the runtime config has no data contract (data.contract.features in mlproject.yaml)")
        return self.contract

    def require_train(self) -> Train:
        if self.train is None:
            raise ConfigError("the runtime config has no train section (train: in mlproject.yaml)")
        return self.train

    def require_batch(self) -> ServeBatch:
        if self.serve is None or self.serve.batch is None:
            raise ConfigError("the runtime config has no serve.batch section (serve.batch: in mlproject.yaml)")
        return self.serve.batch

    def require_evaluate(self) -> Evaluate:
        if self.evaluate is None:
            raise ConfigError("the runtime config has no evaluate section (evaluate: in mlproject.yaml)")
        return self.evaluate


def parse_runtime_config(text: str, source: str) -> RuntimeConfig:
    """The config from its JSON text; `source` names it in error messages."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{source}:{error.lineno}:{error.colno}: not valid JSON: {error.msg}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: must be a JSON object, got {type(data).__name__}")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise ConfigError(
            f"{source}: format_version {version!r} is not supported (this runtime reads {FORMAT_VERSION}); "
            "recompile with a matching mlc (`mlc apply`, or `mlc run`)"
        )
    try:
        return RuntimeConfig.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        raise ConfigError(f"{source}: {where}: {first['msg']}{more}") from None


def load_runtime_config(path: Path) -> RuntimeConfig:
    """Read and check the runtime config file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: runtime config not found (`mlc run JOB` writes it under .mlc/)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the runtime config: {error}") from None
    return parse_runtime_config(text, str(path))
