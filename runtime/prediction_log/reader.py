"""Reading a window of the prediction log: hour partitions pruned by name, rows by timestamp.

`window_files` lists the `date=` folders of the days the window touches, by name (one listing
each), and keeps the files of the window's hours: a 24-hour window over a year of history reads
two days' listings and about 25 hours of files, not the year. The days are named rather than
found by listing the log's folder: on Google Cloud Storage, pyarrow lists no folders that only
exist as the prefix of their files (as the log's do), so a listing would find no day at all. A
window of more than `NAMED_DAYS` days lists the whole log recursively instead (files, which every
store lists), and keeps those whose `date=`/`hour=` folders fall in the window.
`read_window` reads the columns asked for from those files and keeps the rows whose timestamp is
in the window (a file of the first hour also holds rows from before it).
"""

from __future__ import annotations

import calendar
import posixpath
import re
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from mlc.runtime.contract import LOG_TIMESTAMP
from mlc.runtime.datasets import DataError, DataFiles, list_entries, open_filesystem, store_error
from mlc.runtime.prediction_log.records import hour_of

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs

_DATE = re.compile(r"date=(\d{4})-(\d{2})-(\d{2})")
_HOUR = re.compile(r"hour=(\d{2})")
NAMED_DAYS = 62  # longest window whose days are listed by name


def _day(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(timestamp))


def window_files(uri: str, since: float, until: float | None = None) -> DataFiles:
    """The log's Parquet files holding rows of [since, until] (until: now); DataError when none."""
    until = time.time() if until is None else until
    filesystem, root = open_filesystem(uri)
    first_hour, last_hour = hour_of(since), hour_of(until)
    midnights = range(first_hour - first_hour % 24, last_hour + 1, 24)  # hours since the epoch
    if len(midnights) > NAMED_DAYS:
        # A window this long reads most of the log: one recursive listing of it. Its files name
        # their day and hour in their path on every store (GCS lists no prefix-only folders).
        candidates = list_entries(filesystem, root, uri, recursive=True)
    else:
        # A missing log or a refusing store: one clear error here, before the days' listings.
        list_entries(filesystem, root, uri, recursive=False)
        candidates = [
            info
            for midnight in midnights
            for info in list_entries(
                filesystem, posixpath.join(root, f"date={_day(midnight * 3600)}"), uri, recursive=True, missing_ok=True
            )
        ]
    hours = ((info.path, _file_hour(info)) for info in candidates)
    paths = [path for path, hour in hours if hour is not None and first_hour <= hour <= last_hour]
    if not paths:
        raise DataError(
            f"{uri}: no predictions logged between {_moment(since)} and {_moment(until)} "
            "(is the model server logging? monitor.prediction_log.sample_rate)"
        )
    return DataFiles(uri=uri, format="parquet", filesystem=filesystem, paths=tuple(sorted(paths)))


def _file_hour(info: pafs.FileInfo) -> int | None:
    """Hours since the epoch of a log file (`.../date=YYYY-MM-DD/hour=HH/*.parquet`); None for
    anything else."""
    import pyarrow.fs as pafs

    if info.type != pafs.FileType.File or not info.path.endswith(".parquet"):
        return None
    hour_folder = posixpath.dirname(info.path)
    hour = _HOUR.fullmatch(posixpath.basename(hour_folder))
    day = _DATE.fullmatch(posixpath.basename(posixpath.dirname(hour_folder)))
    if hour is None or day is None:
        return None
    return hour_of(calendar.timegm((*map(int, day.groups()), 0, 0, 0))) + int(hour.group(1))


def _moment(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def in_window(batch: pa.RecordBatch, since: float, until: float | None = None) -> pa.RecordBatch:
    """The rows of a log batch whose timestamp lies in [since, until]."""
    import pyarrow as pa
    import pyarrow.compute as pc

    stamps = batch.column(LOG_TIMESTAMP)
    low = pa.scalar(int(since * 1000), pa.timestamp("ms", tz="UTC"))
    mask = pc.greater_equal(stamps, low)
    if until is not None:
        mask = pc.and_(mask, pc.less_equal(stamps, pa.scalar(int(until * 1000), pa.timestamp("ms", tz="UTC"))))
    return batch.filter(mask)


def iter_window(
    files: DataFiles, columns: Sequence[str], since: float, until: float | None = None, batch_rows: int = 65_536
) -> Iterator[pa.RecordBatch]:
    """Batches of the named columns (`inputs.<feature>`, `outputs.<name>` for struct fields), only
    the window's rows; the timestamp column is read too."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    wanted = list(dict.fromkeys([*columns, LOG_TIMESTAMP]))
    remote = "://" in files.uri and not files.uri.startswith("file://")
    for path in files.paths:
        try:
            with (
                files.filesystem.open_input_file(path) as handle,
                pq.ParquetFile(handle, buffer_size=0 if remote else 1 << 20, pre_buffer=remote) as parquet,
            ):
                present = _present(parquet.schema_arrow, wanted)
                for batch in parquet.iter_batches(batch_size=batch_rows, columns=present, use_threads=False):
                    kept = in_window(batch, since, until)
                    if kept.num_rows:
                        yield kept
        except (pa.ArrowException, OSError) as error:
            raise DataError(store_error(files.location(path), error, "cannot read the prediction log")) from None


def _present(schema: pa.Schema, wanted: list[str]) -> list[str]:
    """The wanted columns this file has (a struct field a file lacks is read as missing)."""
    present = []
    for name in wanted:
        top, _, field = name.partition(".")
        if top in schema.names and (not field or schema.field(top).type.get_field_index(field) >= 0):
            present.append(name)
    return present


def read_window(files: DataFiles, columns: Sequence[str], since: float, until: float | None = None) -> pa.Table:
    """The window's rows of the named columns, as one table (struct fields flattened to `a.b` names)."""
    import pyarrow as pa

    batches = [flatten(batch, columns) for batch in iter_window(files, columns, since, until)]
    if not batches:
        return pa.table({name: pa.array([], pa.null()) for name in columns})
    return pa.Table.from_batches(batches).combine_chunks() if len(batches) == 1 else _concat(batches)


def _concat(batches: list[pa.RecordBatch]) -> pa.Table:
    import pyarrow as pa

    return pa.concat_tables([pa.Table.from_batches([b]) for b in batches], promote_options="permissive")


def flatten(batch: pa.RecordBatch, columns: Sequence[str]) -> pa.RecordBatch:
    """A batch with one top-level column per name asked for: `inputs.x` is the struct's field `x`
    (nulls where the file lacks it)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arrays = []
    for name in columns:
        top, _, field = name.partition(".")
        if top not in batch.schema.names:
            arrays.append(pa.nulls(batch.num_rows))
            continue
        column = batch.column(top)
        if field:
            index = column.type.get_field_index(field)
            column = pc.struct_field(column, [index]) if index >= 0 else pa.nulls(batch.num_rows)
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, names=list(columns))
