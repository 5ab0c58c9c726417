"""The registered model: one MLflow pyfunc bundling the fitted preprocessor with the torch model.

Input: raw features as the contract names them (a pandas DataFrame, a dict of columns, or a list
of row dicts); the preprocessor serving runs is the one training fitted, so there is no
training/serving skew. Output: a DataFrame of the columns `contract_model.predictions` names
(binary: `prediction`, `probability`; multiclass: `prediction`, `probability_<label>`;
regression: `prediction`). Loading and scoring are `contract_model.ContractModelParts`, which
the model server also uses without MLflow.

The torch module is saved whole (`torch.save`); the entrypoint's top-level package goes into
the model as MLflow `code_paths`, so custom module classes load anywhere mlc-runtime is installed.
The pyfunc itself is an MLflow "model from code" (`pyfunc_model.py`), not a pickled object.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow.pyfunc

from mlc.runtime.contract_model import (
    PREPROCESSOR_ARTIFACT,
    TORCH_MODEL_ARTIFACT,
    ContractModelParts,
    predictions,
)
from mlc.runtime.preprocessor import Preprocessor

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import torch

__all__ = ["PREPROCESSOR_ARTIFACT", "TORCH_MODEL_ARTIFACT", "ContractModel", "log_contract_model", "predictions"]


def input_table(model_input: Any) -> pa.Table:
    """Raw features as an arrow table, from a DataFrame, a dict of columns or a list of row dicts."""
    import pyarrow as pa

    if isinstance(model_input, pa.Table):
        return model_input
    if isinstance(model_input, list):
        return pa.Table.from_pylist(model_input)
    if isinstance(model_input, dict):
        columns = {k: v if isinstance(v, list | tuple) else [v] for k, v in model_input.items()}
        return pa.table(columns)
    if hasattr(model_input, "to_dict") and hasattr(model_input, "columns"):  # a pandas DataFrame
        return pa.Table.from_pandas(model_input, preserve_index=False)
    raise TypeError(f"expected a DataFrame, a dict of columns or a list of rows, got {type(model_input).__name__}")


class ContractModel(mlflow.pyfunc.PythonModel):
    """The pyfunc wrapper: raw contract features in, predictions out."""

    # It takes several input shapes on purpose and checks them against the contract itself:
    # MLflow's type-hint validation (and its warning about missing hints) does not apply.
    _skip_type_hint_validation = True

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        # The same loading the model server does without MLflow (`contract_model`).
        self.parts = ContractModelParts.load(context.artifacts)
        self.preprocessor: Preprocessor = self.parts.preprocessor
        self.module = self.parts.module

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.parts.score(self.preprocessor.transform(input_table(model_input))))


def log_contract_model(
    module: torch.nn.Module, preprocessor: Preprocessor, code_paths: list[str], registered_model: str, workdir: Path
) -> tuple[str, str]:
    """Log the bundled model to the active run and register it; (model uri, registered version)."""
    import numpy as np
    import pyarrow as pa
    import torch

    module = module.to("cpu").eval()
    torch_path, preprocessor_path = workdir / "model.pt", workdir / "preprocessor.json"
    torch.save(module, torch_path)
    preprocessor_path.write_text(json.dumps(preprocessor.to_dict(), indent=2, sort_keys=True))
    requirements = [
        f"torch=={torch.__version__.split('+')[0]}",
        f"mlflow=={mlflow.__version__}",
        f"numpy=={np.__version__}",
        f"pyarrow=={pa.__version__}",
    ]
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=str(Path(__file__).with_name("pyfunc_model.py")),  # a model from code: nothing pickled
        artifacts={TORCH_MODEL_ARTIFACT: str(torch_path), PREPROCESSOR_ARTIFACT: str(preprocessor_path)},
        code_paths=code_paths or None,
        pip_requirements=requirements,  # given, so MLflow does not import the model to infer them
    )
    return info.model_uri, register_version(registered_model, info.model_uri, info.run_id, info.model_id)


def register_version(name: str, model_uri: str, run_id: str | None, model_id: str | None) -> str:
    """Register a logged model as a new version of `name` (created on first use); its version.

    Through the client rather than `registered_model_name=`: MLflow's fluent registration prints
    "Successfully registered model" and "Created version" to stderr, which our own line already
    says, once, with the alias it was given."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        client.create_registered_model(name)
    except MlflowException as error:
        if error.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
    version = client.create_model_version(name, source=model_uri, run_id=run_id, model_id=model_id)
    return str(version.version)
