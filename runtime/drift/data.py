"""Reading Parquet/CSV in record batches with pyarrow, so memory never depends on row count.

Which files a data URI names (a file, a directory, a glob; local or s3:// gs:// ...) is decided
by `mlc.runtime.datasets.locate_data_files`, the one locator every runtime command shares, and
files are opened through its filesystem object. The reads here stay drift's own: only the
checked columns, split into one group per core, each group decoded and counted by its own
thread and reader (`feed_batches`).

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
from typing import TYPE_CHECKING, Protocol, TypeVar

import pyarrow as pa

if TYPE_CHECKING:
    import pyarrow.parquet as pq

# DataError is the datasets' one: callers catch it from here or from there alike.
from mlc.runtime.datasets import (
    DataError,
    DataFiles,
    csv_delimiter,
    csv_header,
    format_of,
    is_remote,
    locate_data_files,
    store_error,
    unique_columns,
)
from mlc.runtime.drift.config import FeatureKind

BATCH_ROWS = 65_536
T = TypeVar("T")
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, pa.ArrowKeyError, OSError)


@dataclass(frozen=True)
class Source:
    """Parquet or CSV files to read in order, with their (first file's) schema.

    A window of the prediction log (`open_prediction_log`) names the struct its columns are
    fields of (`inputs` or `outputs`) and the window's start: only rows logged since then are read.
    """

    files: DataFiles
    schema: pa.Schema
    struct: str | None = None
    since: float | None = None
    column_sizes: Mapping[str, int] | None = None  # decoded bytes of the first row group, per column

    @property
    def csv(self) -> bool:
        return self.files.format == "csv"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _csv_reader(stream: pa.NativeFile, path: str, columns: list[str] | None = None):
    import pyarrow.csv as pacsv

    return pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(block_size=1 << 24),
        parse_options=pacsv.ParseOptions(delimiter=csv_delimiter(path)),
        convert_options=pacsv.ConvertOptions(include_columns=columns),
    )


def _read_error(files: DataFiles, path: str, exc: BaseException) -> DataError:
    return DataError(store_error(files.location(path), exc, "cannot read data"))


def open_dataset(uri: str | Path, modified_since: float | None = None) -> Source:
    """Find the files of a Parquet/CSV file, directory or glob (local or remote) and read the
    schema (no rows); with `modified_since`, only the files written since then."""
    files = locate_data_files(os.fspath(uri), modified_since=modified_since)
    if any(format_of(path) not in (None, files.format) for path in files.paths):
        raise DataError(f"{files.uri}: mixed CSV and Parquet files; point the URI at one format")
    first = files.paths[0]
    sizes = None
    try:
        if files.format == "csv":
            with files.filesystem.open_input_stream(first) as stream:
                schema = _csv_reader(stream, first).schema
        else:
            import pyarrow.parquet as pq

            with files.filesystem.open_input_file(first) as handle, pq.ParquetFile(handle) as parquet:
                schema, sizes = parquet.schema_arrow, _column_sizes(parquet.metadata)
    except _ARROW_ERRORS as exc:
        raise _read_error(files, first, exc) from None
    unique_columns(schema.names, files.location(first))
    return Source(files=files, schema=schema, column_sizes=sizes)


def _column_sizes(metadata: pq.FileMetaData) -> dict[str, int] | None:
    """Uncompressed bytes per top-level column in the first row group: how much decoding each
    column costs, to balance the readers of `feed_batches`."""
    if metadata.num_row_groups == 0:
        return None
    group = metadata.row_group(0)
    sizes: dict[str, int] = {}
    for index in range(group.num_columns):
        chunk = group.column(index)
        name = chunk.path_in_schema.split(".", 1)[0]
        sizes[name] = sizes.get(name, 0) + chunk.total_uncompressed_size
    return sizes


def _file_schema(source: Source, path: str, names: list[str]) -> pa.Schema | None:
    """The schema of one more file of the dataset, checked against the first file's for the
    columns read: each there once, of the same kind (numbers stay numbers). None for CSV, whose
    columns are typed as they are read."""
    files = source.files
    where = files.location(path)
    if source.csv:
        header, schema = csv_header(files, path), None
    else:
        import pyarrow.parquet as pq

        with files.filesystem.open_input_file(path) as handle:
            schema = pq.read_schema(handle)
        header = schema.names
    unique_columns(header, where)
    first = files.location(files.paths[0])
    missing = [name for name in names if name not in header]
    if missing:
        listed = ", ".join(repr(name) for name in missing)
        raise DataError(
            f"{where}: no column {listed}, which {first} has: the files of one dataset must share their columns"
        )
    for name in names if schema is not None else ():
        here, there = schema.field(name).type, source.schema.field(name).type
        if kind_from_arrow(here) != kind_from_arrow(there):
            raise DataError(
                f"{where}: column {name!r} is {here} here but {there} in {first}: "
                "the files of one dataset must share one schema"
            )
    return schema


def open_prediction_log(uri: str, since: float, struct: str) -> Source:
    """The prediction log's files of the window from `since` (hour partitions pruned), reading the
    fields of `struct` (`inputs`: the features; `outputs`: the predictions)."""
    import pyarrow.parquet as pq

    from mlc.runtime.prediction_log.reader import window_files

    files = window_files(uri, since)
    fields: dict[str, pa.Field] = {}
    # The oldest and the newest file's fields (a newer model may add an output); reading every
    # footer of a long window would cost one request per file on an object store.
    for path in dict.fromkeys([files.paths[0], files.paths[-1]]):
        try:
            with files.filesystem.open_input_file(path) as handle:
                schema = pq.read_schema(handle)
        except _ARROW_ERRORS as exc:
            raise _read_error(files, path, exc) from None
        if struct in schema.names:
            for field in schema.field(struct).type:
                fields.setdefault(field.name, field)
    return Source(files=files, schema=pa.schema(list(fields.values())), struct=struct, since=since)


def kind_from_arrow(dtype: pa.DataType) -> FeatureKind | None:
    """Drift kind of an Arrow type when no contract is given (None: not checked)."""
    if pa.types.is_floating(dtype) or pa.types.is_integer(dtype) or pa.types.is_decimal(dtype):
        return "numeric"
    if pa.types.is_boolean(dtype) or pa.types.is_dictionary(dtype):
        return "categorical"
    if _is_string(dtype):
        return "categorical"
    return None


def _is_string(dtype: pa.DataType) -> bool:
    return pa.types.is_string(dtype) or pa.types.is_large_string(dtype)


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
        raise DataError(f"{source.files.uri}: columns missing from data: {', '.join(sorted(missing))}")
    files = source.files
    if source.struct is not None:
        from mlc.runtime.prediction_log.reader import flatten, iter_window

        paths = [f"{source.struct}.{name}" for name in names]
        for batch in iter_window(files, paths, source.since or 0.0, batch_rows=BATCH_ROWS):
            yield flatten(batch, paths).rename_columns(names)
        return
    # Local files: buffered page reads instead of pre-buffering whole column chunks, so memory
    # stays near one batch (plus one row group's compressed pages at worst), decoded by this
    # thread (`feed_batches` runs one reader per core). Remote files: pre-buffering coalesces
    # a row group's column chunks into a few ranged GETs instead of one request per page
    # buffer (memory: that row group's pages).
    remote = is_remote(files.uri)
    # String columns arrive dictionary-encoded: their indices are codes to count, so no string
    # is built per row (`profile.category_counts`).
    strings = [name for name in names if _is_string(source.schema.field(name).type)]
    for path in files.paths:
        try:
            if path != files.paths[0]:
                _file_schema(source, path, names)
            if source.csv:
                with files.filesystem.open_input_stream(path) as stream:
                    yield from _csv_reader(stream, path, names)
            else:
                import pyarrow.parquet as pq

                with (
                    files.filesystem.open_input_file(path) as handle,
                    pq.ParquetFile(
                        handle, buffer_size=0 if remote else 1 << 20, pre_buffer=remote, read_dictionary=strings
                    ) as parquet,
                ):
                    yield from parquet.iter_batches(batch_size=BATCH_ROWS, columns=names, use_threads=False)
        except _ARROW_ERRORS as exc:
            raise _read_error(files, path, exc) from None


class Accumulator(Protocol):
    """Per-column state that takes one Arrow array per batch."""

    def add(self, array: pa.Array) -> None: ...


def prefetch(iterator: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Run `iterator` in a background thread, `depth` items ahead, so reading the next batch
    (pyarrow releases the GIL) overlaps with processing this one.

    When the consumer stops early (an error in a column, or it is closed), the producer stops
    too and closes `iterator` before this returns, so no thread keeps a file of a remote store
    open while the process exits (pyarrow finalizes S3 at exit).
    """
    items: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in iterator:
                if not put(item):
                    return
            put(done)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(exc)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while (item := items.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def column_groups(source: Source, names: list[str], workers: int) -> list[list[str]]:
    """Columns split into up to `workers` groups, each read by its own reader, largest first
    onto the least loaded group (sizes from the first Parquet file's footer, else even).

    CSV stays one group: each reader would parse every row of the file.
    """
    if source.csv or workers < 2 or len(names) < 2:
        return [names]
    sizes = source.column_sizes or {}
    groups: list[list[str]] = [[] for _ in range(min(workers, len(names)))]
    loads = [0] * len(groups)
    for name in sorted(names, key=lambda name: -sizes.get(name, 1)):
        least = loads.index(min(loads))
        groups[least].append(name)
        loads[least] += sizes.get(name, 1)
    return groups


def _feed(name: str, accumulator: Accumulator, array: pa.Array) -> None:
    try:
        accumulator.add(array)
    except _ARROW_ERRORS as exc:  # e.g. text in a column the contract calls numeric
        raise DataError(f"column {name!r}: {_first_line(exc)}") from exc


def feed_batches(source: Source, accumulators: Mapping[str, Accumulator]) -> int:
    """Stream every batch of `source` into the per-column accumulators; returns the row count.

    Parquet: columns are split into one group per core, and each group is read (decoded) and
    counted by its own thread with its own reader: pyarrow decodes and numpy counts without
    the GIL, so both cores do both, and decoding, the larger half of the work, is no longer
    one thread's. CSV (one parser per file): the next batch is parsed in the background while
    the columns of this one are counted in parallel.
    """
    names = list(accumulators)
    groups = column_groups(source, names, min(os.cpu_count() or 1, 8))
    if len(groups) == 1:
        return _feed_parsed(source, accumulators)
    stop = threading.Event()  # one group failed: the others stop at their next batch

    def feed_group(group: list[str]) -> int:
        rows = 0
        batches = iter_batches(source, group)
        try:
            for batch in batches:
                if stop.is_set():
                    break
                rows += batch.num_rows
                for name in group:
                    _feed(name, accumulators[name], batch.column(name))
        except BaseException:
            stop.set()
            raise
        finally:
            batches.close()  # closes the group's file now, not at garbage collection
        return rows

    with ThreadPoolExecutor(max_workers=len(groups)) as pool:
        futures = [pool.submit(feed_group, group) for group in groups]
        try:
            rows = [future.result() for future in futures]  # re-raises a group's exception
        except BaseException:  # a group's error, or Ctrl-C here: the other groups stop too
            stop.set()
            raise
    if len(set(rows)) > 1:
        raise DataError(f"{source.files.uri}: files changed while they were read ({min(rows)} to {max(rows)} rows)")
    return rows[0]


def _feed_parsed(source: Source, accumulators: Mapping[str, Accumulator]) -> int:
    """`feed_batches` with one reader: the next batch is read in the background while this
    one's columns are counted in parallel threads."""
    workers = max(1, min(os.cpu_count() or 1, len(accumulators), 8))
    rows = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for batch in prefetch(iter_batches(source, list(accumulators))):
            rows += batch.num_rows
            futures = [
                pool.submit(_feed, name, accumulator, batch.column(name)) for name, accumulator in accumulators.items()
            ]
            for future in futures:
                future.result()  # re-raises a worker's exception here
    return rows
