"""Logged requests -> Arrow tables of the prediction log's schema (pure; no I/O).

One row per predicted row: `request_id`, `row`, `timestamp` (ms, UTC), `model`,
`model_version`, `source`, and two structs, `inputs` (the checked feature values, typed by the
data contract) and `outputs` (the model's output columns). Structs keep feature and output names
from ever colliding with the fixed columns or with each other.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlc.runtime.contract import (
    LOG_INPUTS,
    LOG_MODEL,
    LOG_MODEL_VERSION,
    LOG_OUTPUTS,
    LOG_PARTITION,
    LOG_REQUEST_ID,
    LOG_ROW,
    LOG_SOURCE,
    LOG_TIMESTAMP,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from mlc.runtime.contract.config import Contract


@dataclass(frozen=True)
class LoggedRequest:
    """One answered request (or a batch file's chunk): its rows' inputs and outputs, by column."""

    request_id: str
    source: str
    model: str
    model_version: str
    rows: int
    inputs: Mapping[str, Sequence[Any]]
    outputs: Mapping[str, Sequence[Any]]
    timestamp: float = field(default_factory=time.time)
    positions: Sequence[int] | None = None  # each row's position in its request or file (None: 0, 1, ...)


def input_types(contract: Contract | None) -> dict[str, pa.DataType]:
    """The Arrow type of each feature in the log: numbers as float64 (drift reads both kinds alike),
    bools, categories and strings as text, bytes as binary."""
    import pyarrow as pa

    if contract is None:
        return {}
    arrow = {
        "float": pa.float64(),
        "int": pa.float64(),
        "bool": pa.bool_(),
        "category": pa.string(),
        "string": pa.string(),
        "bytes": pa.binary(),
    }
    return {name: arrow[feature.type] for name, feature in contract.features.items()}


def _array(values: list[Any], wanted: pa.DataType | None) -> pa.Array:
    """Values as an Arrow array of the wanted type; anything that does not convert is kept as text."""
    import pyarrow as pa

    try:
        return pa.array(values, wanted)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        if wanted is not None and pa.types.is_floating(wanted):
            return pa.array([_number(value) for value in values], wanted)
        return pa.array([None if value is None else str(value) for value in values], pa.string())


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _struct(requests: Sequence[LoggedRequest], part: str, types: Mapping[str, pa.DataType]) -> pa.Array:
    import pyarrow as pa

    names: dict[str, None] = dict.fromkeys(types)
    for request in requests:
        names.update(dict.fromkeys(getattr(request, part)))
    arrays = []
    for name in names:
        values: list[Any] = []
        for request in requests:
            column = getattr(request, part).get(name)
            values.extend(column if column is not None else [None] * request.rows)
        arrays.append(_array(values, types.get(name)))
    if not arrays:  # a struct needs a field: an empty one stands for "nothing known"
        return pa.array([{}] * sum(r.rows for r in requests), pa.struct([]))
    return pa.StructArray.from_arrays(arrays, list(names))


def log_table(requests: Sequence[LoggedRequest], types: Mapping[str, pa.DataType]) -> pa.Table:
    """The rows of these requests as one table of the log's schema."""
    import numpy as np
    import pyarrow as pa

    counts = [request.rows for request in requests]
    repeat = np.repeat
    positions = [np.arange(r.rows) if r.positions is None else np.asarray(r.positions) for r in requests]
    rows = np.concatenate(positions) if requests else np.zeros(0, np.int64)
    millis = repeat(np.array([int(r.timestamp * 1000) for r in requests], dtype=np.int64), counts)
    return pa.table(
        {
            LOG_REQUEST_ID: pa.array(
                repeat(np.array([r.request_id for r in requests], dtype=object), counts), pa.string()
            ),
            LOG_ROW: pa.array(rows, pa.int64()),
            LOG_TIMESTAMP: pa.array(millis, pa.timestamp("ms", tz="UTC")),
            LOG_MODEL: pa.array(repeat(np.array([r.model for r in requests], dtype=object), counts), pa.string()),
            LOG_MODEL_VERSION: pa.array(
                repeat(np.array([r.model_version for r in requests], dtype=object), counts), pa.string()
            ),
            LOG_SOURCE: pa.array(repeat(np.array([r.source for r in requests], dtype=object), counts), pa.string()),
            LOG_INPUTS: _struct(requests, "inputs", types),
            LOG_OUTPUTS: _struct(requests, "outputs", {}),
        }
    )


def hour_of(timestamp: float) -> int:
    """The UTC hour (hours since the epoch) a timestamp falls in: its partition."""
    return int(timestamp // 3600)


def partition_folder(hour: int) -> str:
    """`date=YYYY-MM-DD/hour=HH` of an hour since the epoch (UTC)."""
    moment = time.gmtime(hour * 3600)
    return LOG_PARTITION.format(date=time.strftime("%Y-%m-%d", moment), hour=moment.tm_hour)


def group_by_hour(requests: Sequence[LoggedRequest]) -> dict[int, list[LoggedRequest]]:
    """Requests by the UTC hour of their timestamps, each hour's in arrival order."""
    hours: dict[int, list[LoggedRequest]] = {}
    for request in requests:
        hours.setdefault(hour_of(request.timestamp), []).append(request)
    return hours
