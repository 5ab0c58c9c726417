"""How the served model scores a batch of checked requests.

- `ContractScorer`, for the models `mlc-runtime train` registers: the checked values go straight
  into the float32 matrix the fitted preprocessor defines, then the torch module, then the named
  output columns (`contract_model`). No pandas frame, no arrow table, no MLflow wrapper: the
  same numbers `pyfunc.predict` computes (the encoding below mirrors `Preprocessor.transform`,
  and a test compares the two on the same rows).
- `PyfuncScorer`, for any other MLflow pyfunc: the rows as the DataFrame the arrow check
  produces, one `predict` over the batch, each request's slice of the output.

Both return one `Predictions` per request and the batch's numeric output columns (for the
prediction histogram).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any, Protocol

from mlc.runtime.contract.config import Contract
from mlc.runtime.contract_model import ContractModelParts, output_columns
from mlc.runtime.serve.payload import jsonable
from mlc.runtime.serve.validation import CheckedRows, rows_table

if TYPE_CHECKING:
    import numpy as np

    from mlc.runtime.preprocessor import Preprocessor


@dataclass(frozen=True)
class Predictions:
    """One request's predictions: output column -> one JSON value per row.

    `records`: the output is a table (written as one object per row by `/invocations`); else
    it is an array, under `prediction`, written as it is.
    """

    columns: dict[str, list[Any]]
    records: bool = True

    def rows(self) -> list[Any]:
        """The predictions as `/invocations` lists them."""
        if not self.records:
            return self.columns["prediction"]
        names = list(self.columns)
        return [dict(zip(names, values, strict=True)) for values in zip(*self.columns.values(), strict=True)]


BatchScores = tuple[list[Predictions], dict[str, "np.ndarray"]]


class Scorer(Protocol):
    """What the server needs of a loaded model."""

    outputs: list[tuple[str, str]]  # (name, int/float/string) when known, for model metadata

    def score_batch(self, batch: list[CheckedRows]) -> BatchScores:
        """Each request's predictions, and the batch's numeric output columns."""
        ...


def contract_scorer_fits(preprocessor: Preprocessor, contract: Contract | None) -> bool:
    """Whether checked rows carry every feature the preprocessor encodes, in the type it was fitted on."""
    if contract is None:
        return False
    return all(
        feature.name in contract.features and contract.features[feature.name].type == feature.type
        for feature in preprocessor.features
    )


class ContractScorer:
    """Checked rows -> the preprocessor's matrix -> the torch module -> named columns."""

    def __init__(self, parts: ContractModelParts) -> None:
        self.parts = parts
        self.outputs = output_columns(parts.preprocessor)
        self.width = len(parts.preprocessor.output_names)
        # Per feature: (name, type, first matrix column, missing value or category index).
        self._plan: list[tuple[str, str, int, Any]] = []
        offset = 0
        for feature in parts.preprocessor.features:
            if feature.type == "category":
                index = {category: i for i, category in enumerate(feature.categories)}
                self._plan.append((feature.name, "category", offset, index))
                offset += len(feature.categories)
            else:
                self._plan.append((feature.name, feature.type, offset, feature.fill))
                offset += 1

    def encode(self, columns: dict[str, list[Any]], rows: int) -> np.ndarray:
        """The float32 matrix `Preprocessor.transform` computes for these (checked) values.

        Numbers and bools are float64 first (a missing one is the training fill), then the
        whole matrix is cast to float32, as the preprocessor casts each float64 column; a
        category is one-hot over the fitted categories (unseen or missing: all zeros).
        """
        import numpy as np

        matrix = np.zeros((rows, self.width), dtype=np.float64)
        for name, kind, offset, detail in self._plan:
            values = columns[name]
            if kind == "category":
                codes = np.fromiter((detail.get(value, -1) for value in values), dtype=np.int64, count=rows)
                seen = np.flatnonzero(codes >= 0)
                matrix[seen, offset + codes[seen]] = 1.0
            elif kind == "bool":
                matrix[:, offset] = [detail if value is None else (1.0 if value else 0.0) for value in values]
            else:
                matrix[:, offset] = [detail if value is None else value for value in values]
        return matrix.astype(np.float32)

    def score_batch(self, batch: list[CheckedRows]) -> BatchScores:
        """One forward pass over every request's rows; each request's slice of the columns."""
        if len(batch) == 1:
            columns, rows = batch[0].columns, batch[0].rows
        else:
            names = [name for name, *_ in self._plan]
            columns = {name: list(chain.from_iterable(item.columns[name] for item in batch)) for name in names}
            rows = sum(item.rows for item in batch)
        scored = self.parts.score(self.encode(columns, rows))
        values = {name: array.tolist() for name, array in scored.items()}
        if len(batch) == 1:
            parts = [Predictions(values)]
        else:
            parts, start = [], 0
            for item in batch:
                end = start + item.rows
                parts.append(Predictions({name: column[start:end] for name, column in values.items()}))
                start = end
        return parts, _numeric_outputs(scored)


def _numeric_outputs(columns: dict[str, Any]) -> dict[str, np.ndarray]:
    """What the prediction histogram observes: probability columns when there are any, else numeric ones."""
    import numpy as np

    arrays = {name: np.asarray(values) for name, values in columns.items()}
    probabilities = {name: array for name, array in arrays.items() if name.startswith("probability")}
    if probabilities:
        return probabilities
    return {name: array for name, array in arrays.items() if array.dtype.kind in "fiub"}


class PyfuncScorer:
    """Any MLflow pyfunc: the checked rows as the DataFrame the arrow check makes, one predict per batch."""

    def __init__(self, model: Any, contract: Contract | None) -> None:
        self.model = model
        self.contract = contract
        self.outputs: list[tuple[str, str]] = []

    def score_batch(self, batch: list[CheckedRows]) -> BatchScores:
        """`predict` over the batch's frames together (see `served_model.predict_frames`)."""
        from mlc.runtime.serve.served_model import predict_frames

        frames = [rows_table(item, self.contract).to_pandas() for item in batch]
        outputs = predict_frames(self.model, frames)
        parts = [_pyfunc_predictions(output) for output in outputs]
        numeric: dict[str, list[Any]] = {}
        for part in parts:
            for name, values in part.columns.items():
                if part.records or name == "prediction":
                    numeric.setdefault(name, []).extend(values)
        flat = {
            name: values
            for name, values in numeric.items()
            if values and all(isinstance(value, int | float) and not isinstance(value, bool) for value in values)
        }
        return parts, _numeric_outputs(flat)


def _pyfunc_predictions(output: Any) -> Predictions:
    import pandas as pd

    if isinstance(output, pd.DataFrame):
        records = jsonable(output)
        return Predictions({str(name): [row[name] for row in records] for name in output.columns})
    return Predictions({"prediction": jsonable(output)}, records=False)


def warm_up_rows(contract: Contract | None, rows: int) -> CheckedRows | None:
    """Rows within the contract (each feature's lowest valid value), to run the model once before serving."""
    if contract is None or not contract.features:
        return None
    columns: dict[str, list[Any]] = {}
    for name, feature in contract.features.items():
        if feature.type in ("float", "int"):
            value: Any = feature.min if feature.min is not None else (feature.max if feature.max is not None else 0.0)
        elif feature.type == "category":
            value = str(feature.values[0]) if feature.values else ""
        elif feature.type == "bool":
            value = False
        elif feature.type == "bytes":
            value = b""
        else:
            value = ""
        columns[name] = [value] * rows
    return CheckedRows(columns, rows)
