"""The data contract's rules on one feature column, decided in one place.

`validate-data` (a dataset), `serve` (a request's rows) and `batch` (a file's rows) ask a column
the same question: which rows break which rule? `check_feature` answers it for all three, over
`feature_values.coerce_column` (the one parser), so a row valid for one is valid for the others;
each caller only words the answer. The rules, in this order: the value reads as the feature's
type; null only where `nullable`; within `min`/`max`; in `values` when the category set is
closed. A column that is absent has no rows to point at: that is the caller's to report.

Rows are numbered from 0 everywhere, counted over the data rows (a CSV header is not a row):
row 0 is the first data row of a file, the first row of a request, and the `row` value batch
writes beside its predictions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from mlc.runtime.contract.config import Feature
from mlc.runtime.feature_values import coerce_column

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

RuleKind = Literal["type", "null", "min", "max", "values"]


@dataclass(frozen=True)
class BrokenRule:
    """One rule some rows of a column break: which rule, and a bool mask of those rows."""

    kind: RuleKind
    rows: np.ndarray


@dataclass(frozen=True)
class CheckedFeature:
    """A column in the contract's type (unreadable cells null), and the rules its rows break."""

    values: pa.Array
    broken: list[BrokenRule]


def _mask(array: pa.Array) -> np.ndarray:
    import pyarrow.compute as pc

    return pc.fill_null(array, False).to_numpy(zero_copy_only=False)


def check_feature(feature: Feature, raw: pa.Array | pa.ChunkedArray) -> CheckedFeature:
    """Every rule of `feature` on the column `raw`; only the rules some row breaks are listed."""
    import pyarrow as pa
    import pyarrow.compute as pc

    coerced = coerce_column(raw, feature.type)
    values = coerced.values
    rules: list[tuple[RuleKind, np.ndarray]] = [("type", coerced.invalid)]
    if not feature.nullable:
        rules.append(("null", coerced.missing))
    if feature.min is not None:
        rules.append(("min", _mask(pc.less(values, feature.min))))
    if feature.max is not None:
        rules.append(("max", _mask(pc.greater(values, feature.max))))
    if feature.type == "category" and feature.values is not None:
        allowed = pa.array([str(value) for value in feature.values])
        rules.append(("values", _mask(pc.and_(pc.invert(pc.is_in(values, value_set=allowed)), pc.is_valid(values)))))
    return CheckedFeature(values, [BrokenRule(kind, rows) for kind, rows in rules if rows.any()])
