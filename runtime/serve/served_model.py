"""The model a server or batch job scores with: which version a URI names, loading, predicting frames.

`models:/<name>@<alias>` is resolved to its version first and that version is loaded, so the
version reported in `mlc_model_info` is the one answering even if the alias moves meanwhile. A
local directory (KServe's `/mnt/models`, filled by `fetch-model`) names its version in
`mlc-model.json` beside `MLmodel`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlc.runtime.errors import MlcRuntimeError

MODEL_INFO_FILE = "mlc-model.json"  # written by fetch-model next to MLmodel
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))/?$")


class ModelError(MlcRuntimeError):
    """The model cannot be found or loaded."""


@dataclass(frozen=True)
class ModelInfo:
    model: str
    version: str
    alias: str
    run_id: str
    uri: str  # what was loaded: models:/<name>/<version> or a directory

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def tracking_uri(configured: str) -> str:
    """`MLFLOW_TRACKING_URI` overrides the config's `tracking_uri`."""
    return os.environ.get("MLFLOW_TRACKING_URI") or configured


def resolve_model(uri: str, configured_tracking_uri: str) -> ModelInfo:
    """Which model version `uri` names (a registry URI), or what a local model directory says it is."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    match = _MODELS_URI.match(uri)
    if match is None:
        return _directory_info(uri)
    mlflow.set_tracking_uri(tracking_uri(configured_tracking_uri))
    client = MlflowClient()
    name, alias = match["name"], match["alias"] or ""
    try:
        version = (
            client.get_model_version_by_alias(name, alias)
            if alias
            else client.get_model_version(name, match["version"])
        )
    except MlflowException as error:
        raise ModelError(f"{uri}: {_first_line(error)}") from None
    return ModelInfo(name, str(version.version), alias, version.run_id or "", f"models:/{name}/{version.version}")


def _directory_info(uri: str) -> ModelInfo:
    path = Path(uri.removeprefix("file://"))
    written = path / MODEL_INFO_FILE
    if written.is_file():
        data = json.loads(written.read_text())
        return ModelInfo(data["model"], data["version"], data["alias"], data["run_id"], str(path))
    return ModelInfo("", "", "", "", uri)


def load_model(info: ModelInfo) -> Any:
    """The pyfunc model `info.uri` names."""
    import mlflow.pyfunc

    try:
        return mlflow.pyfunc.load_model(info.uri)
    except Exception as error:  # MLflow raises many kinds (registry, artifacts, unpickling, imports)
        raise ModelError(f"cannot load {info.uri}: {type(error).__name__}: {_first_line(error)}") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def output_rows(output: Any) -> int:
    return len(output)


def predict_frames(model: Any, frames: list[Any]) -> list[Any]:
    """One `predict` over the frames' rows together; each frame's slice of the output, in order."""
    import pandas as pd

    if len(frames) == 1:
        return [model.predict(frames[0])]
    output = model.predict(pd.concat(frames, ignore_index=True))
    sizes = [len(frame) for frame in frames]
    if output_rows(output) != sum(sizes):
        raise ModelError(f"the model returned {output_rows(output)} rows for {sum(sizes)}")
    slices, start = [], 0
    for size in sizes:
        part = output.iloc[start : start + size] if hasattr(output, "iloc") else output[start : start + size]
        slices.append(part)
        start += size
    return slices
