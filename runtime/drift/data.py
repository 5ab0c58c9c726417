"""Reading Parquet/CSV in record batches with pyarrow, so memory never depends on row count."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
from mlc.runtime.drift.config import FeatureKind

BATCH_ROWS = 65_536


class DataError(Exception):
    """Data that cannot be read or is unusable (missing, unreadable, empty, wrong columns)."""


def _format_of(path: Path) -> str:
    """Pick the pyarrow dataset format from the suffix (a directory is read as Parquet)."""
    suffixes = {p.suffix.lower() for p in ([path] if path.is_file() else path.rglob("*.*"))}
    if suffixes & {".csv", ".tsv"} and not suffixes & {".parquet", ".pq"}:
        return "csv"
    return "parquet"


def open_dataset(path: str | Path) -> ds.Dataset:
    """Open a Parquet or CSV file (or a directory of them) without reading any rows."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data not found: {path}")
    try:
        return ds.dataset(path, format=_format_of(path))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise DataError(f"cannot read data {path}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def kind_from_arrow(dtype: pa.DataType) -> FeatureKind | None:
    """Drift kind of an Arrow type when no contract is given (None: not checked)."""
    if pa.types.is_floating(dtype) or pa.types.is_integer(dtype) or pa.types.is_decimal(dtype):
        return "numeric"
    if pa.types.is_boolean(dtype) or pa.types.is_dictionary(dtype):
        return "categorical"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "categorical"
    return None


def schema_kinds(dataset: ds.Dataset) -> dict[str, FeatureKind]:
    """Feature kinds inferred from the file schema, for profiling without a spec."""
    kinds: dict[str, FeatureKind] = {}
    for field in dataset.schema:
        kind = kind_from_arrow(field.type)
        if kind is not None:
            kinds[field.name] = kind
    return kinds


def iter_batches(
    dataset: ds.Dataset, columns: Mapping[str, FeatureKind] | list[str]
) -> Iterator[pa.RecordBatch]:
    """Yield record batches of the requested columns; errors become :class:`DataError`."""
    names = list(columns)
    missing = [name for name in names if name not in dataset.schema.names]
    if missing:
        raise DataError(f"columns missing from data: {', '.join(sorted(missing))}")
    try:
        yield from dataset.to_batches(columns=names, batch_size=BATCH_ROWS, batch_readahead=2,
                                      fragment_readahead=1)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError) as exc:
        raise DataError(f"cannot read data: {_first_line(exc)}") from exc
