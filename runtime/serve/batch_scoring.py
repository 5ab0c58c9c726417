"""`batch`: score the files of `serve.batch.input` with the champion, one shard of them per pod.

The input files are listed in sorted order; shard `i` of `n` takes files i, i+n, i+2n, ... so the
shards of an Indexed Job cover every file exactly once with no coordination. Each file is read
in record batches (CSV contract columns as text, like training), scored, and written as
`<output>/<relative path without its format suffix>.predictions.parquet`: the model's output
columns plus `row` (the row's 0-based position in the input file). A file is written to a
temporary name and moved into place, so a crashed or retried pod never leaves a partial file.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlc.runtime.datasets import (
    FORMAT_SUFFIXES,
    DataError,
    DataFiles,
    format_of,
    locate_data_files,
    location,
    open_filesystem,
    read_record_batches,
    store_error,
)

if TYPE_CHECKING:
    import pyarrow as pa

OUTPUT_SUFFIX = ".predictions.parquet"
_FORMAT_SUFFIXES = tuple(sorted((suffix for suffix, _ in FORMAT_SUFFIXES), key=len, reverse=True))


@dataclass(frozen=True)
class ScoredFile:
    input: str
    output: str
    rows: int


def shard_paths(paths: Sequence[str], shard: int, shards: int) -> list[str]:
    """Files shard, shard + shards, ... of the sorted paths."""
    if shards < 1 or not 0 <= shard < shards:
        raise ValueError(f"--shard must be in [0, {shards}) and --shards at least 1, got {shard} of {shards}")
    return sorted(paths)[shard::shards]


def output_name(path: str, base: str) -> str:
    """`<relative path without its format suffix>.predictions.parquet`: unique per input file."""
    relative = posixpath.relpath(path, base) if base else posixpath.basename(path)
    for suffix in _FORMAT_SUFFIXES:
        if relative.lower().endswith(suffix):
            relative = relative[: -len(suffix)]
            break
    return relative + OUTPUT_SUFFIX


def common_base(paths: Sequence[str]) -> str:
    """The folder every input file is under (all of them, so names do not depend on the shard)."""
    return posixpath.commonpath([posixpath.dirname(path) for path in paths])


def file_format(path: str, default: str) -> str:
    """parquet or csv by the file's suffix (the dataset's format when the suffix says neither)."""
    return format_of(path) or default


def _scored_batches(model: Any, files: DataFiles, path: str, text_columns: list[str]) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    # A folder may mix CSV and parquet files: each file is read by its own suffix.
    one_file = DataFiles(files.uri, file_format(path, files.format), files.filesystem, (path,))
    start = 0
    for batch in read_record_batches(one_file, text_columns):
        output = model.predict(batch.to_pandas())
        table = (
            pa.Table.from_pandas(output, preserve_index=False)
            if hasattr(output, "columns")
            else pa.table({"prediction": pa.array(list(output))})
        )
        rows = pa.array(range(start, start + batch.num_rows), pa.int64())
        start += batch.num_rows
        yield from table.add_column(0, "row", rows).to_batches()


def score_file(
    model: Any, files: DataFiles, path: str, text_columns: list[str], output_uri: str, name: str
) -> ScoredFile:
    """Score one input file and move its predictions into place."""
    import pyarrow.parquet as pq

    filesystem, root = open_filesystem(output_uri)
    final = posixpath.join(root, name)
    temporary = posixpath.join(posixpath.dirname(final), f".{posixpath.basename(final)}.tmp-{os.getpid()}")
    shown = location(output_uri, final)
    rows, writer = 0, None
    try:
        filesystem.create_dir(posixpath.dirname(final), recursive=True)
        for batch in _scored_batches(model, files, path, text_columns):
            if writer is None:
                writer = pq.ParquetWriter(temporary, batch.schema, filesystem=filesystem)
            writer.write_batch(batch)
            rows += batch.num_rows
        if writer is None:
            raise DataError(f"{files.location(path)}: no rows")
        writer.close()
        writer = None
        filesystem.move(temporary, final)
    except OSError as error:  # the output store: missing bucket, refused credentials, ...
        raise DataError(store_error(shown, error, "cannot write")) from None
    finally:
        try:
            if writer is not None:
                writer.close()
            if filesystem.get_file_info(temporary).type.name != "NotFound":
                filesystem.delete_file(temporary)
        except OSError:
            pass  # cleaning up after a failure: the failure is the error to report
    return ScoredFile(files.location(path), shown, rows)


def run_batch(
    model: Any, input_uri: str, output_uri: str, shard: int, shards: int, text_columns: list[str]
) -> Iterator[ScoredFile]:
    """Score this shard's files one by one (yielding each as it is written)."""
    files = locate_data_files(input_uri, None)
    base = common_base(files.paths)
    for path in shard_paths(files.paths, shard, shards):
        yield score_file(model, files, path, text_columns, output_uri, output_name(path, base))
