"""Reading Parquet/CSV in record batches with pyarrow, so memory never depends on row count.

`pyarrow.parquet` and `pyarrow.csv` stream batches directly; `pyarrow.dataset` would do the
same but costs ~0.4 s more to import, which matters for a short-lived CronJob process.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import pyarrow as pa

from mlc.runtime.drift.config import FeatureKind

BATCH_ROWS = 65_536
T = TypeVar("T")
CSV_SUFFIXES = (".csv", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError)


class DataError(Exception):
    """Data that cannot be read or is unusable (missing, unreadable, empty, wrong columns)."""


@dataclass(frozen=True)
class Source:
    """Parquet or CSV files to read in order, with their (first file's) schema."""

    files: tuple[Path, ...]
    csv: bool
    schema: pa.Schema


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _csv_reader(path: Path, columns: list[str] | None = None):
    import pyarrow.csv as pacsv

    return pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=1 << 24),
        parse_options=pacsv.ParseOptions(delimiter="\t" if path.suffix == ".tsv" else ","),
        convert_options=pacsv.ConvertOptions(include_columns=columns),
    )


def open_dataset(path: str | Path) -> Source:
    """Find the files of a Parquet/CSV file or directory and read the schema (no rows)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data not found: {path}")
    if path.is_dir():
        files = tuple(sorted(p for p in path.rglob("*") if p.suffix.lower() in PARQUET_SUFFIXES + CSV_SUFFIXES))
        if not files:
            raise DataError(f"no .parquet or .csv files in {path}")
    else:
        files = (path,)
    csv = files[0].suffix.lower() in CSV_SUFFIXES
    if any((f.suffix.lower() in CSV_SUFFIXES) != csv for f in files):
        raise DataError(f"mixed CSV and Parquet files in {path}")
    try:
        if csv:
            schema = _csv_reader(files[0]).schema
        else:
            import pyarrow.parquet as pq

            schema = pq.read_schema(files[0])
    except _ARROW_ERRORS as exc:
        raise DataError(f"cannot read data {files[0]}: {_first_line(exc)}") from exc
    return Source(files=files, csv=csv, schema=schema)


def kind_from_arrow(dtype: pa.DataType) -> FeatureKind | None:
    """Drift kind of an Arrow type when no contract is given (None: not checked)."""
    if pa.types.is_floating(dtype) or pa.types.is_integer(dtype) or pa.types.is_decimal(dtype):
        return "numeric"
    if pa.types.is_boolean(dtype) or pa.types.is_dictionary(dtype):
        return "categorical"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "categorical"
    return None


def schema_kinds(source: Source) -> dict[str, FeatureKind]:
    """Feature kinds inferred from the file schema, for profiling without a spec."""
    kinds: dict[str, FeatureKind] = {}
    for field in source.schema:
        kind = kind_from_arrow(field.type)
        if kind is not None:
            kinds[field.name] = kind
    return kinds


def iter_batches(source: Source, columns: Mapping[str, FeatureKind] | list[str]) -> Iterator[pa.RecordBatch]:
    """Yield record batches of the requested columns; errors become :class:`DataError`."""
    names = list(columns)
    missing = [name for name in names if name not in source.schema.names]
    if missing:
        raise DataError(f"columns missing from data: {', '.join(sorted(missing))}")
    for path in source.files:
        try:
            if source.csv:
                yield from _csv_reader(path, names)
            else:
                import pyarrow.parquet as pq

                # Buffered page reads instead of pre-buffering whole column chunks: memory
                # stays near one batch (plus one row group's compressed pages at worst), and
                # single-threaded decoding is faster here since columns are already processed
                # in parallel.
                with pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False) as parquet:
                    yield from parquet.iter_batches(batch_size=BATCH_ROWS, columns=names, use_threads=False)
        except _ARROW_ERRORS as exc:
            raise DataError(f"cannot read data {path}: {_first_line(exc)}") from exc


class Accumulator(Protocol):
    """Per-column state that takes one Arrow array per batch."""

    def add(self, array: pa.Array) -> None: ...


def prefetch(iterator: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Run `iterator` in a background thread, `depth` items ahead, so reading the next batch
    (pyarrow releases the GIL) overlaps with processing this one."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    done = object()

    def produce() -> None:
        try:
            for item in iterator:
                items.put(item)
            items.put(done)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            items.put(exc)

    threading.Thread(target=produce, daemon=True).start()
    while (item := items.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item


def feed_batches(source: Source, accumulators: Mapping[str, Accumulator]) -> int:
    """Stream every batch of `source` into the per-column accumulators; returns the row count.

    Columns are independent and numpy's sorting/searching releases the GIL, so columns of a
    batch are processed in parallel threads (one per core) while the next batch is read.
    """
    workers = max(1, min(os.cpu_count() or 1, len(accumulators), 8))
    rows = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for batch in prefetch(iter_batches(source, list(accumulators))):
            rows += batch.num_rows
            futures = {
                name: pool.submit(accumulator.add, batch.column(name)) for name, accumulator in accumulators.items()
            }
            for name, future in futures.items():
                try:
                    future.result()  # re-raises a worker's exception here
                except _ARROW_ERRORS as exc:  # e.g. text in a column the contract calls numeric
                    raise DataError(f"column {name!r}: {_first_line(exc)}") from exc
    return rows
