"""Reading datasets: a URI (file, directory, glob; local or s3:// gs:// ...) to record batches.

Everything streams as pyarrow record batches, so memory stays bounded by the batch size for
checks over large data. CSV columns named by the contract (and the target) are read as text and
converted by `feature_values`, so one parser serves CSV, parquet and serving requests alike and
a bad value is reported with its row instead of failing the whole read.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs

BATCH_ROWS = 65_536
_GLOB_CHARS = set("*?[")


class DataError(Exception):
    """A dataset cannot be found or read."""


@dataclass(frozen=True)
class DataFiles:
    """The files of one dataset, sorted, on one filesystem."""

    uri: str
    format: str
    filesystem: pafs.FileSystem
    paths: tuple[str, ...]


def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    import pyarrow.fs as pafs

    if "://" in uri:
        try:
            return pafs.FileSystem.from_uri(uri)
        except Exception as error:  # pyarrow raises several types for unknown schemes and bad URIs
            raise DataError(f"{uri}: cannot open: {error}") from None
    # Relative local paths are relative to the working directory: the spec's folder.
    from pathlib import Path

    return pafs.LocalFileSystem(), str(Path(uri).absolute())


def _format_of(path: str, declared: str | None) -> str | None:
    if declared:
        return declared
    for suffix, name in ((".parquet", "parquet"), (".pq", "parquet"), (".csv", "csv"), (".csv.gz", "csv")):
        if path.endswith(suffix):
            return name
    return None


def locate_data_files(uri: str, declared_format: str | None) -> DataFiles:
    """The data files a URI names: the file, the directory's files (recursively), or the glob's matches."""
    import pyarrow.fs as pafs

    filesystem, path = _filesystem(uri)
    if _GLOB_CHARS & set(path):
        base = path[: min(path.index(c) for c in _GLOB_CHARS if c in path)].rsplit("/", 1)[0] or "/"
        candidates = _listing(filesystem, base, uri)
        paths = [p for p in candidates if fnmatch.fnmatchcase(p, path)]
    else:
        info = filesystem.get_file_info(path)
        if info.type == pafs.FileType.File:
            paths = [path]
        elif info.type == pafs.FileType.Directory:
            paths = [
                p
                for p in _listing(filesystem, path, uri)
                if _format_of(p, None) and not p.rsplit("/", 1)[-1].startswith((".", "_"))
            ]
        else:
            raise DataError(f"{uri}: no such file or directory")
    if not paths:
        raise DataError(f"{uri}: matches no data files")
    fmt = _format_of(paths[0], declared_format)
    if fmt is None:
        raise DataError(f"{uri}: cannot tell the format from the file name; set data.<name>.format: csv | parquet")
    return DataFiles(uri=uri, format=fmt, filesystem=filesystem, paths=tuple(sorted(paths)))


def _listing(filesystem: pafs.FileSystem, base: str, uri: str) -> list[str]:
    import pyarrow.fs as pafs

    try:
        infos = filesystem.get_file_info(pafs.FileSelector(base, recursive=True))
    except (FileNotFoundError, OSError) as error:
        raise DataError(f"{uri}: cannot list {base}: {error}") from None
    return [info.path for info in infos if info.type == pafs.FileType.File]


def read_record_batches(
    files: DataFiles, text_columns: Iterable[str] = (), limit: int | None = None
) -> Iterator[pa.RecordBatch]:
    """The dataset's rows as record batches, file after file, at most `limit` rows.

    `text_columns`: CSV columns to read as text (the contract's columns); parquet keeps its types.
    """
    import pyarrow as pa

    remaining = limit
    for path in files.paths:
        try:
            for batch in _file_batches(files, path, tuple(text_columns)):
                if remaining is not None:
                    if remaining <= 0:
                        return
                    batch = batch.slice(0, remaining)
                    remaining -= batch.num_rows
                yield batch
        except (pa.ArrowException, OSError) as error:
            raise DataError(f"{path}: cannot read {files.format}: {error}") from None


def _file_batches(files: DataFiles, path: str, text_columns: tuple[str, ...]) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    if files.format == "parquet":
        import pyarrow.parquet as pq

        with files.filesystem.open_input_file(path) as handle:
            yield from pq.ParquetFile(handle).iter_batches(batch_size=BATCH_ROWS)
        return
    import pyarrow.csv as pacsv

    compression = "gzip" if path.endswith(".gz") else None
    read_options = pacsv.ReadOptions(block_size=1 << 22)
    include: list[str] | None = None
    if text_columns:
        # Only the contract's columns: other columns' types are guessed from the first block
        # and a later surprise in a column nobody uses must not fail the read.
        with files.filesystem.open_input_stream(path, compression=compression) as stream:
            header = pacsv.open_csv(stream, read_options=read_options).schema.names
        include = [name for name in header if name in text_columns]
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in text_columns},
        include_columns=include,
        strings_can_be_null=True,  # an empty field is a null, not ""
    )
    with files.filesystem.open_input_stream(path, compression=compression) as stream:
        yield from pacsv.open_csv(stream, read_options=read_options, convert_options=convert)


def read_table(files: DataFiles, text_columns: Iterable[str] = (), limit: int | None = None) -> pa.Table:
    """The whole dataset (or its first `limit` rows) as one table."""
    import pyarrow as pa

    batches = list(read_record_batches(files, text_columns, limit))
    if not batches:
        raise DataError(f"{files.uri}: no rows")
    try:
        return pa.Table.from_batches(batches).combine_chunks()
    except pa.ArrowInvalid as error:  # files of one dataset with different columns or types
        raise DataError(f"{files.uri}: files do not share one schema: {error}") from None


def data_digest(files: DataFiles) -> str:
    """sha256 over every file's full bytes, in path order: the training data's lineage."""
    digest = hashlib.sha256()
    for path in files.paths:
        try:
            with files.filesystem.open_input_stream(path) as stream:
                while chunk := stream.read(1 << 20):
                    digest.update(chunk)
        except OSError as error:
            raise DataError(f"{path}: cannot read: {error}") from None
    return f"sha256:{digest.hexdigest()}"
