"""The contract's features as a float matrix, fitted on the training data, reused by serving.

Numeric features (float, int) go in as they are, a missing value replaced by the training mean;
bool as 0/1 (missing: the training share of true); a category becomes one-hot columns over the
contract's `values` when the set is closed, else over the categories seen in training (an unseen
or missing category is all zeros). string and bytes features are not encoded: a model that
needs them reads the raw table. The fitted state is plain JSON, stored beside the model, so the
served model computes exactly what training computed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from mlc.runtime.contract import Task
from mlc.runtime.contract.config import Contract
from mlc.runtime.errors import MlcRuntimeError
from mlc.runtime.feature_values import CoercedColumn, coerce_column

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

ENCODED_TYPES = frozenset({"float", "int", "bool", "category"})


class PreprocessError(MlcRuntimeError, ValueError):
    """Input the preprocessor cannot encode: a missing column or an unreadable value."""


@dataclass(frozen=True)
class EncodedFeature:
    name: str
    type: str
    fill: float = 0.0  # numeric and bool: the training mean, for missing values
    categories: tuple[str, ...] = ()  # category: one column each, in this order


@dataclass(frozen=True)
class TargetEncoding:
    """How the target becomes numbers: 0/1 (binary), a class index (multiclass), a float (regression)."""

    name: str
    task: Task
    classes: tuple[str, ...] = ()  # multiclass: the label of each index

    def encode(self, array: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """The target column as float32 (binary, regression) or int64 class indices (multiclass)."""
        import numpy as np

        if self.task == "multiclass":
            labels = coerce_column(array, "category")
            index = {label: i for i, label in enumerate(self.classes)}
            codes = [index.get(label, -1) for label in labels.values.to_pylist()]
            if -1 in codes:
                row = codes.index(-1)
                raise PreprocessError(f"target {self.name}: row {row}: label not seen in training")
            return np.asarray(codes, dtype=np.int64)
        coerced = _binary_labels(array) if self.task == "binary" else coerce_column(array, "float")
        if coerced.missing.any() or coerced.invalid.any():
            row = int(np.flatnonzero(coerced.missing | coerced.invalid)[0])
            raise PreprocessError(f"target {self.name}: row {row}: missing or not a {self.task} label")
        return coerced.values.to_numpy(zero_copy_only=False).astype(np.float32)


def _binary_labels(array: pa.Array | pa.ChunkedArray) -> CoercedColumn:
    """0/1 labels from bools, 0/1 numbers or text (true/false, yes/no, 1/0); others invalid."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_floating(array.type):
        numbers = coerce_column(array, "float")
        outside = pc.fill_null(pc.invert(pc.is_in(numbers.values, value_set=pa.array([0.0, 1.0]))), False)
        return CoercedColumn(
            numbers.values,
            numbers.missing,
            numbers.invalid | outside.to_numpy(zero_copy_only=False),
            numbers.source_type,
        )
    labels = coerce_column(array, "bool")
    return CoercedColumn(pc.cast(labels.values, pa.float64()), labels.missing, labels.invalid, labels.source_type)


def fit_target(name: str, array: pa.Array | pa.ChunkedArray, task: Task | None = None) -> TargetEncoding:
    """The target's encoding for its task: the declared one (`data.contract.task`), whose labels
    must fit it, or else inferred from the training values (bool or only 0/1 -> binary; numbers
    -> regression; anything else -> multiclass over the sorted labels)."""
    import numpy as np

    if task in (None, "binary"):
        binary = _binary_labels(array)
        if not binary.invalid.any():
            return TargetEncoding(name, "binary")
        if task == "binary":
            _refuse_label(name, array, binary.invalid, "binary (0/1, true/false)")
    if task in (None, "regression"):
        as_number = coerce_column(array, "float")
        if not as_number.invalid.any():
            return TargetEncoding(name, "regression")
        if task == "regression":
            _refuse_label(name, array, as_number.invalid, "regression (a number)")
    labels = coerce_column(array, "category").values.drop_null().to_numpy(zero_copy_only=False)
    return TargetEncoding(name, "multiclass", tuple(str(label) for label in np.unique(labels)))


def _refuse_label(name: str, array: pa.Array | pa.ChunkedArray, invalid: np.ndarray, what: str) -> None:
    import numpy as np

    row = int(np.flatnonzero(invalid)[0])
    raise PreprocessError(
        f"target {name}: row {row + 1}: {array[row].as_py()!r} is not a {what} label (data.contract.task)"
    )


@dataclass(frozen=True)
class Preprocessor:
    features: tuple[EncodedFeature, ...]
    target: TargetEncoding | None = None

    @property
    def output_names(self) -> list[str]:
        """The matrix's column names: `name` for a number, `name=category` for a one-hot column."""
        names: list[str] = []
        for feature in self.features:
            if feature.type == "category":
                names += [f"{feature.name}={category}" for category in feature.categories]
            else:
                names.append(feature.name)
        return names

    def transform(self, table: pa.Table) -> np.ndarray:
        """The raw feature columns as a float32 matrix (rows x output_names)."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        columns: list[np.ndarray] = []
        for feature in self.features:
            if feature.name not in table.column_names:
                raise PreprocessError(f"missing feature column {feature.name!r}")
            coerced = coerce_column(table.column(feature.name), feature.type)
            if coerced.invalid.any():
                row = int(np.flatnonzero(coerced.invalid)[0])
                value = table.column(feature.name)[row].as_py()
                raise PreprocessError(f"{feature.name}: row {row}: {value!r} is not {feature.type}")
            if feature.type == "category":
                codes = pc.index_in(coerced.values, value_set=pa.array(feature.categories, pa.string()))
                codes = pc.fill_null(codes, -1).to_numpy(zero_copy_only=False)
                one_hot = np.zeros((len(codes), len(feature.categories)), dtype=np.float32)
                seen = codes >= 0
                one_hot[np.flatnonzero(seen), codes[seen]] = 1.0
                columns.append(one_hot)
            else:
                values = pc.fill_null(pc.cast(coerced.values, pa.float64()), feature.fill)
                columns.append(values.to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, 1))
        if not columns:
            return np.zeros((table.num_rows, 0), dtype=np.float32)
        return np.hstack(columns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": 1,
            "features": [asdict(f) for f in self.features],
            "target": _dict_or_none(self.target),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessor:
        features = tuple(
            EncodedFeature(f["name"], f["type"], f["fill"], tuple(f["categories"])) for f in data["features"]
        )
        target = data.get("target")
        encoding = None if target is None else TargetEncoding(target["name"], target["task"], tuple(target["classes"]))
        return cls(features, encoding)


def _dict_or_none(target: TargetEncoding | None) -> dict[str, Any] | None:
    return None if target is None else asdict(target)


def fit_preprocessor(table: pa.Table, contract: Contract) -> Preprocessor:
    """Fit the encoding of every encodable contract feature (and the target) on the training table."""
    import pyarrow as pa
    import pyarrow.compute as pc

    features: list[EncodedFeature] = []
    for name, feature in contract.features.items():
        if feature.type not in ENCODED_TYPES:
            continue
        if name not in table.column_names:
            raise PreprocessError(f"missing feature column {name!r} in the training data")
        coerced = coerce_column(table.column(name), feature.type)
        if feature.type == "category":
            if feature.values is not None:
                categories = tuple(str(value) for value in feature.values)
            else:
                categories = tuple(sorted(pc.unique(coerced.values.drop_null()).to_pylist()))
            features.append(EncodedFeature(name, "category", categories=categories))
        else:
            mean = pc.mean(pc.cast(coerced.values, pa.float64())).as_py()
            features.append(EncodedFeature(name, feature.type, fill=0.0 if mean is None else float(mean)))
    target = None
    if contract.target is not None:
        if contract.target not in table.column_names:
            raise PreprocessError(f"missing target column {contract.target!r} in the training data")
        target = fit_target(contract.target, table.column(contract.target), contract.task)
    return Preprocessor(tuple(features), target)
