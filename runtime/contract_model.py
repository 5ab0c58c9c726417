"""The parts of every model mlc registers, and what they compute, without importing MLflow.

A registered model is the fitted preprocessor (JSON) and the torch module (`torch.save`), bundled
as an MLflow pyfunc by `model_package.ContractModel`. That wrapper and the model server both
load the parts here and turn the module's raw scores into the same named output columns, so
the server can skip MLflow's pyfunc (and pandas) on its hot path and still answer exactly what
`pyfunc.predict` answers.

Output columns, by the task the training target implied:

- binary: `prediction` (0/1) and `probability` (of 1); the module returns one logit per row
- multiclass: `prediction` (the label) and `probability_<label>` per class; the module returns
  one logit per class
- regression: `prediction`; the module returns one value per row
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlc.runtime.preprocessor import Preprocessor

if TYPE_CHECKING:
    import numpy as np

TORCH_MODEL_ARTIFACT = "torch_model"
PREPROCESSOR_ARTIFACT = "preprocessor"


def predictions(scores: np.ndarray, preprocessor: Preprocessor) -> dict[str, np.ndarray]:
    """The module's raw outputs as named prediction columns (see the module docstring)."""
    import numpy as np

    task = preprocessor.target.task if preprocessor.target is not None else "regression"
    if task == "binary":
        probability = 1.0 / (1.0 + np.exp(-scores.reshape(-1).astype(np.float64)))
        return {"prediction": (probability >= 0.5).astype(np.int64), "probability": probability}
    if task == "multiclass":
        assert preprocessor.target is not None
        shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
        probabilities = shifted / shifted.sum(axis=1, keepdims=True)
        classes = np.asarray(preprocessor.target.classes, dtype=object)
        named = {f"probability_{label}": probabilities[:, i] for i, label in enumerate(preprocessor.target.classes)}
        return {"prediction": classes[probabilities.argmax(axis=1)], **named}
    return {"prediction": scores.reshape(len(scores), -1)[:, 0].astype(np.float64)}


def output_columns(preprocessor: Preprocessor) -> list[tuple[str, str]]:
    """(name, kind) of each output column, kind one of int, float, string (for schemas and metadata)."""
    task = preprocessor.target.task if preprocessor.target is not None else "regression"
    if task == "binary":
        return [("prediction", "int"), ("probability", "float")]
    if task == "multiclass":
        assert preprocessor.target is not None
        return [("prediction", "string")] + [(f"probability_{label}", "float") for label in preprocessor.target.classes]
    return [("prediction", "float")]


@dataclass(frozen=True)
class ContractModelParts:
    """The fitted preprocessor and the torch module (in eval mode, on the CPU)."""

    preprocessor: Preprocessor
    module: Any  # torch.nn.Module

    @classmethod
    def load(cls, artifacts: Mapping[str, str]) -> ContractModelParts:
        """The parts from the artifact paths MLflow records (`PREPROCESSOR_ARTIFACT`, `TORCH_MODEL_ARTIFACT`)."""
        import torch

        preprocessor = Preprocessor.from_dict(json.loads(Path(artifacts[PREPROCESSOR_ARTIFACT]).read_text()))
        module = torch.load(artifacts[TORCH_MODEL_ARTIFACT], map_location="cpu", weights_only=False)
        module.eval()
        return cls(preprocessor, module)

    def score(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """Named output columns for a float32 feature matrix (rows x `preprocessor.output_names`)."""
        import torch

        with torch.no_grad():
            scores = self.module(torch.from_numpy(features)).detach().cpu().numpy()
        return predictions(scores, self.preprocessor)
