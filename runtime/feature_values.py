"""One feature column as the contract types it: the single parser for data files and requests.

`coerce_column` turns whatever arrived (CSV text, parquet types, a request's JSON values) into
the contract's type and says which rows were missing and which could not be read as that type.
The contract check, the training preprocessor and serving all go through it, so a value means
the same thing everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_TRUE = ("true", "1", "yes", "t", "y")
_FALSE = ("false", "0", "no", "f", "n")


@dataclass(frozen=True)
class CoercedColumn:
    """A column in the contract's type.

    `values`: float64 for float/int, bool for bool, string for category/string, binary for
    bytes; null where the value is missing or unreadable. `missing` and `invalid` are numpy
    bool masks (a missing value is never invalid).
    """

    values: pa.Array
    missing: np.ndarray
    invalid: np.ndarray
    source_type: str


def _mask(array: pa.Array) -> np.ndarray:
    import pyarrow.compute as pc

    return pc.fill_null(array, False).to_numpy(zero_copy_only=False)


def _as_plain(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    import pyarrow as pa

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_large_string(array.type):
        array = array.cast(pa.string())
    return array


def coerce_column(array: pa.Array | pa.ChunkedArray, feature_type: str) -> CoercedColumn:
    """The column as `feature_type` (float int bool category string bytes), with what failed."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    array = _as_plain(array)
    kind = array.type
    missing = _mask(array.is_null())
    if pa.types.is_floating(kind):
        missing |= _mask(pc.is_nan(array))  # pandas writes a missing number as NaN
    text = pa.types.is_string(kind)
    none = np.zeros(len(array), dtype=bool)

    if feature_type in ("float", "int"):
        if text:
            trimmed = pc.utf8_trim_whitespace(array)
            readable = pc.match_substring_regex(trimmed, _NUMBER)
            values = pc.cast(pc.if_else(readable, trimmed, None), pa.float64())
        elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
            # Unsafe: an integer beyond 2**53 becomes the nearest float (then range-checked) instead
            # of an ArrowInvalid, which would answer a request with 500 and fail a batch file.
            values = pc.cast(array, pa.float64(), safe=False)
            values = pc.if_else(pc.is_nan(values), None, values)
        else:
            return _wrong_type(array, pa.float64(), missing)
        if feature_type == "int":
            values = pc.if_else(pc.equal(pc.floor(values), values), values, None)
        invalid = ~missing & _mask(values.is_null())
        return CoercedColumn(values, missing, invalid, str(kind))

    if feature_type == "bool":
        if pa.types.is_boolean(kind):
            return CoercedColumn(array, missing, none, str(kind))
        if text or pa.types.is_integer(kind):
            lowered = pc.utf8_lower(pc.utf8_trim_whitespace(pc.cast(array, pa.string())))
            truthy = pc.is_in(lowered, value_set=pa.array(_TRUE))
            falsy = pc.is_in(lowered, value_set=pa.array(_FALSE))
            values = pc.if_else(truthy, True, pc.if_else(falsy, False, None))
            invalid = ~missing & _mask(values.is_null())
            return CoercedColumn(values, missing, invalid, str(kind))
        return _wrong_type(array, pa.bool_(), missing)

    if feature_type == "category":
        if text or pa.types.is_integer(kind) or pa.types.is_boolean(kind):
            return CoercedColumn(pc.cast(array, pa.string()), missing, none, str(kind))
        return _wrong_type(array, pa.string(), missing)

    if feature_type == "string":
        if text:
            return CoercedColumn(array, missing, none, str(kind))
        return _wrong_type(array, pa.string(), missing)

    if feature_type == "bytes":
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or text:
            return CoercedColumn(pc.cast(array, pa.binary()), missing, none, str(kind))
        return _wrong_type(array, pa.binary(), missing)

    raise ValueError(f"unknown feature type {feature_type!r}")


def _wrong_type(array: pa.Array, target: pa.DataType, missing: np.ndarray) -> CoercedColumn:
    """A column whose storage type cannot hold the feature: every present value is invalid."""
    import pyarrow as pa

    return CoercedColumn(pa.nulls(len(array), target), missing, ~missing, str(array.type))
