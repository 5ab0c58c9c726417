"""The model a server or batch job scores with: which version a URI names, loading, predicting frames.

`models:/<name>@<alias>` is resolved to its version first and that version is loaded, so the
version reported in `mlc_model_info` is the one answering even if the alias moves meanwhile. A
local directory (KServe's `/mnt/models`, filled by `fetch-model`) names its version in
`mlc-model.json` beside `MLmodel`.

The server loads faster than `mlflow.pyfunc.load_model` would: `RegistryFetch` resolves and
downloads a registry model in a forked child process (importing MLflow and opening its store
take seconds) while the server process imports torch, and `load_served_model` loads a model mlc
registered straight from its directory (the preprocessor JSON and the torch module, no MLflow
import at all). Any other MLflow model is loaded by `mlflow.pyfunc`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlc.runtime.errors import MlcRuntimeError

MODEL_INFO_FILE = "mlc-model.json"  # written by fetch-model next to MLmodel
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))/?$")


class ModelError(MlcRuntimeError):
    """The model cannot be found or loaded."""


class NoVersionYet(ModelError):
    """The alias names no version yet (no model registered, or none promoted): a server waits."""


def alias_uri(uri: str) -> bool:
    """Whether `uri` names a registry alias (`models:/<name>@<alias>`), which can move."""
    match = _MODELS_URI.match(uri)
    return match is not None and bool(match["alias"])


@dataclass(frozen=True)
class ModelInfo:
    model: str
    version: str
    alias: str
    run_id: str
    uri: str  # what was loaded: models:/<name>/<version> or a directory

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def registry_reference(uri: str) -> tuple[str, str, str] | None:
    """(name, alias, version) of a `models:/<name>@<alias>` or `models:/<name>/<version>` URI
    (one of alias and version empty); None for anything else."""
    match = _MODELS_URI.match(uri)
    if match is None:
        return None
    return match["name"], match["alias"] or "", match["version"] or ""


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
        return directory_info(uri)
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
        from mlc.runtime.errors import is_not_found, tracking_error_line, unreachable_reason
        from mlc.runtime.registry_choices import missing_model_sentence

        if unreachable_reason(error):
            raise ModelError(f"{uri}: {tracking_error_line(error, client.tracking_uri)}") from None
        choices = missing_model_sentence(client, name, alias, match["version"]) if is_not_found(error) else None
        if alias and _names_nothing(error):
            raise NoVersionYet(f"{uri}: {choices or _first_line(error)}") from None
        raise ModelError(f"{uri}: {choices or _first_line(error)}") from None
    return ModelInfo(name, str(version.version), alias, version.run_id or "", f"models:/{name}/{version.version}")


def _names_nothing(error: Any) -> bool:
    """The registry's answer for a model that is not registered or an alias that is not set (not an
    unreachable or refusing registry, which stays an error)."""
    from mlc.runtime.errors import is_not_found

    text = str(error).lower()
    return is_not_found(error) and ("not found" in text or "does not exist" in text)


def directory_info(uri: str) -> ModelInfo:
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


# What MLflow copies into every model mlc registers ("model from code", `runtime/pyfunc_model.py`).
CONTRACT_MODEL_CODE = "from mlc.runtime.model_package import ContractModel"


def contract_model_artifacts(directory: Path) -> dict[str, str] | None:
    """The artifact paths of a model mlc registered (a `ContractModel`), or None for any other model."""
    import yaml

    from mlc.runtime.contract_model import PREPROCESSOR_ARTIFACT, TORCH_MODEL_ARTIFACT

    try:
        flavor = yaml.safe_load((directory / "MLmodel").read_text())["flavors"]["python_function"]
        code_file = directory / Path(flavor["model_code_path"]).name
        artifacts = {name: str(directory / spec["path"]) for name, spec in flavor["artifacts"].items()}
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return None
    if (
        flavor.get("loader_module") != "mlflow.pyfunc.loaders.code_model"
        or not code_file.is_file()
        or CONTRACT_MODEL_CODE not in code_file.read_text()
        or not {PREPROCESSOR_ARTIFACT, TORCH_MODEL_ARTIFACT} <= artifacts.keys()
    ):
        return None
    if flavor.get("code"):
        # MLflow's `code_paths`: the training entrypoint's package, which unpickling the module imports.
        sys.path.insert(0, str(directory / flavor["code"]))
    return artifacts


def load_served_model(directory: Path) -> Any:
    """A local model directory's model: `ContractModelParts` for a model mlc registered, else the pyfunc."""
    from mlc.runtime.contract_model import ContractModelParts

    artifacts = contract_model_artifacts(directory)
    try:
        if artifacts is not None:
            return ContractModelParts.load(artifacts)
    except Exception as error:  # unpickling runs the project's code: anything can fail
        raise ModelError(f"cannot load {directory}: {type(error).__name__}: {_first_line(error)}") from None
    return load_model(ModelInfo("", "", "", "", str(directory)))


class RegistryFetch:
    """A registry model resolved and downloaded into a temporary folder by a forked child process.

    Forked (not spawned) before the server starts any thread, so the child starts at once with
    the CLI's imports; it imports MLflow, resolves the alias and downloads (`fetch_model`) while
    this process imports torch and starts listening. `result()` waits for it.
    """

    def __init__(self, uri: str, configured_tracking_uri: str) -> None:
        import multiprocessing

        self.uri = uri
        self.directory = Path(tempfile.mkdtemp(prefix="mlc-serve-model-"))
        context = multiprocessing.get_context("fork")
        self._receiver, sender = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_fetch_into,
            args=(uri, self.directory, configured_tracking_uri, sender),
            name="mlc-fetch-model",
            daemon=True,
        )
        self._process.start()
        sender.close()

    def result(self) -> ModelInfo:
        """What was fetched (its `uri` the registry version, e.g. models:/m/3), or ModelError."""
        try:
            message = self._receiver.recv()
        except EOFError:
            self._process.join()
            raise ModelError(f"{self.uri}: the download process ended with {self._process.exitcode}") from None
        finally:
            self._receiver.close()
        self._process.join()
        if "error" in message:
            raise (NoVersionYet if message.get("waiting") else ModelError)(message["error"])
        return ModelInfo(**message["info"])

    def remove(self) -> None:
        """Delete the downloaded files (the server is stopping)."""
        shutil.rmtree(self.directory, ignore_errors=True)


def _fetch_into(uri: str, directory: Path, configured_tracking_uri: str, sender: Any) -> None:
    from mlc.runtime.serve.model_fetch import fetch_model

    try:
        fetched = fetch_model(uri, directory, configured_tracking_uri)
        registry_uri = f"models:/{fetched.model}/{fetched.version}"
        info = ModelInfo(fetched.model, fetched.version, fetched.alias, fetched.run_id, registry_uri)
        sender.send({"info": info.to_dict()})
    except ModelError as error:
        sender.send({"error": str(error), "waiting": isinstance(error, NoVersionYet)})
    except Exception as error:  # whatever MLflow raised: one line for the parent to report
        sender.send({"error": f"{uri}: {type(error).__name__}: {_first_line(error)}"})
    finally:
        sender.close()


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
