"""`batch`: score the files of `serve.batch.input` with the champion, one shard of them per pod.

The input files are listed in sorted order; shard `i` of `n` takes files i, i+n, i+2n, ... so the
shards of an Indexed Job cover every file exactly once with no coordination. Each file is read
in record batches (CSV contract columns as text, like training), checked against the data
contract exactly as `serve` checks a request (`validation.check_rows`), scored, and written as
`<output>/<relative path without its format suffix>.predictions.parquet`: `row` (the row's
0-based position among the input file's data rows), the contract's id columns
(`data.contract.ids`, as read: CSV ids stay text, so `00123` keeps its zeros), then the model's
output columns; a file without an id column the contract names fails. A file is
written to a temporary name and moved into place, so a crashed or retried pod never leaves a
partial file.

Rows breaking the contract (those `serve` answers 400): with `serve.batch.invalid_rows: fail`
(the default) the file fails with the first violation named by row and column, how many there
are, and nothing written for it; with `skip` they are left out of the output (their `row`
numbers are missing there), counted, and the first is reported. A required feature missing
from a file fails it either way: no row could be scored.

With a prediction log (`monitor.prediction_log`), a sample of each written file's rows (the
log's sample rate) goes to the same log `serve` writes, with the input file as `request_id` and
the row's number as `row`; a log that cannot be written is a warning, never a failed file.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlc.runtime.contract import BATCH_INVALID_ROWS, LOG_SOURCE_BATCH, BatchInvalidRows
from mlc.runtime.contract.config import Contract
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
from mlc.runtime.serve.validation import Violation, check_rows

if TYPE_CHECKING:
    import pyarrow as pa

OUTPUT_SUFFIX = ".predictions.parquet"
_FORMAT_SUFFIXES = tuple(sorted((suffix for suffix, _ in FORMAT_SUFFIXES), key=len, reverse=True))


@dataclass(frozen=True)
class BatchLog:
    """Where and how much of the scored rows goes to the prediction log, and who scored them."""

    files: Any  # prediction_log.writer.LogFiles
    sample_rate: float
    model: str
    model_version: str
    input_types: dict[str, Any]
    seed: int | None = None  # the sampling's random seed (tests)


@dataclass(frozen=True)
class ScoredFile:
    """A file scored: where from, where to, rows written and invalid rows skipped (the first of them)."""

    input: str
    output: str
    rows: int
    skipped: int = 0
    first_skipped: Violation | None = None
    logged: int = 0  # rows written to the prediction log
    log_error: str | None = None  # why the prediction log could not be written


@dataclass
class _ContractTally:
    """The contract violations of one file, over its record batches."""

    rows: int = 0  # rows breaking a rule
    violations: int = 0
    first: Violation | None = None  # the file's first, by row

    def add(self, invalid_rows: int, violations: int, first: tuple[Violation, ...]) -> None:
        self.rows += invalid_rows
        self.violations += violations
        if self.first is None and first:
            self.first = first[0]

    def sentence(self) -> str:
        assert self.first is not None
        more = f" (and {self.violations - 1} more)" if self.violations > 1 else ""
        return self.first.sentence() + more


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


def _scored_batches(
    model: Any,
    files: DataFiles,
    path: str,
    text_columns: list[str],
    contract: Contract | None,
    invalid_rows: BatchInvalidRows,
    tally: _ContractTally,
    logged: list[Any] | None = None,
    batch_log: BatchLog | None = None,
) -> Iterator[pa.RecordBatch]:
    """The file's predictions, record batch by record batch (contract-checked first, when there is one).

    In `fail` mode the first violation stops scoring, but the rest of the file is still checked
    so the error can say how many violations there are; `tally` holds them.
    """
    import pyarrow as pa

    # A folder may mix CSV and parquet files: each file is read by its own suffix.
    one_file = DataFiles(files.uri, file_format(path, files.format), files.filesystem, (path,))
    start = 0
    ids = list(contract.ids) if contract is not None else []
    for batch in read_record_batches(one_file, text_columns):
        rows = pa.array(range(start, start + batch.num_rows), pa.int64())
        absent = [name for name in ids if name not in batch.schema.names]
        if absent:
            raise DataError(
                f"{files.location(path)}: no id column {absent[0]!r} (data.contract.ids): predictions could not "
                "be joined back to their rows"
            )
        passed = {name: batch.column(name) for name in ids}
        if contract is not None and contract.features:
            check = check_rows(pa.Table.from_batches([batch]), contract, first_row=start)
            if check.missing:
                raise DataError(f"{files.location(path)}: {check.summary()}; no row of the file can be scored")
            start += batch.num_rows
            if check.total:
                tally.add(int(check.invalid_rows.sum()), check.total, check.violations)
            if tally.violations and invalid_rows == "fail":
                continue  # nothing more is scored; the rest is only counted
            keep = pa.array(~check.invalid_rows)
            inputs = check.typed.filter(keep)
            frame, rows = inputs.to_pandas(), rows.filter(keep)
            passed = {name: column.filter(keep) for name, column in passed.items()}
        else:
            start += batch.num_rows
            inputs = pa.Table.from_batches([batch]).drop_columns(ids)  # ids are never model inputs
            frame = inputs.to_pandas()
        if len(frame) == 0:
            continue
        output = model.predict(frame)
        table = (
            pa.Table.from_pandas(output, preserve_index=False)
            if hasattr(output, "columns")
            else pa.table({"prediction": pa.array(list(output))})
        )
        if batch_log is not None and logged is not None:  # the model's outputs only, before the ids join them
            logged.extend(_sampled(batch_log, files.location(path), inputs, table, rows))
        for position, (name, column) in enumerate(passed.items()):
            table = table.add_column(position, name, column)
        yield from table.add_column(0, "row", rows).to_batches()


def _sampled(batch_log: BatchLog, source: str, inputs: pa.Table, outputs: pa.Table, rows: pa.Array) -> list[Any]:
    """The prediction log's sample of one scored chunk (none when no row is drawn)."""
    import numpy as np

    from mlc.runtime.prediction_log.records import LoggedRequest

    draw = np.random.default_rng(batch_log.seed).random(len(rows)) < batch_log.sample_rate
    if not draw.any():
        return []
    chosen = np.flatnonzero(draw)
    return [
        LoggedRequest(
            request_id=source,
            source=LOG_SOURCE_BATCH,
            model=batch_log.model,
            model_version=batch_log.model_version,
            rows=len(chosen),
            inputs=inputs.take(chosen).to_pydict(),
            outputs=outputs.take(chosen).to_pydict(),
            positions=rows.take(chosen).to_pylist(),
        )
    ]


def score_file(
    model: Any,
    files: DataFiles,
    path: str,
    text_columns: list[str],
    output_uri: str,
    name: str,
    contract: Contract | None = None,
    invalid_rows: BatchInvalidRows = BATCH_INVALID_ROWS,
    batch_log: BatchLog | None = None,
) -> ScoredFile:
    """Score one input file and move its predictions into place (see the module docstring for
    invalid rows and the prediction log)."""
    import pyarrow.parquet as pq

    filesystem, root = open_filesystem(output_uri)
    final = posixpath.join(root, name)
    temporary = posixpath.join(posixpath.dirname(final), f".{posixpath.basename(final)}.tmp-{os.getpid()}")
    shown = location(output_uri, final)
    rows, writer = 0, None
    tally = _ContractTally()
    logged: list[Any] = []
    try:
        filesystem.create_dir(posixpath.dirname(final), recursive=True)
        for batch in _scored_batches(
            model, files, path, text_columns, contract, invalid_rows, tally, logged, batch_log
        ):
            if writer is None:
                writer = pq.ParquetWriter(temporary, batch.schema, filesystem=filesystem)
            writer.write_batch(batch)
            rows += batch.num_rows
        if tally.violations and invalid_rows == "fail":
            raise DataError(
                f"{files.location(path)}: {tally.sentence()}: {tally.rows} row(s) break the data contract, "
                "nothing written for this file (serve.batch.invalid_rows is fail; skip scores the valid rows)"
            )
        if writer is None and tally.rows:
            raise DataError(f"{files.location(path)}: every row breaks the data contract: {tally.sentence()}")
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
    written, log_error = _write_log(batch_log, logged)
    return ScoredFile(files.location(path), shown, rows, tally.rows, tally.first, written, log_error)


def _write_log(batch_log: BatchLog | None, logged: list[Any]) -> tuple[int, str | None]:
    """Write a scored file's sample to the prediction log: (rows written, None) or (0, why not)."""
    if batch_log is None or not logged:
        return 0, None
    from mlc.runtime.prediction_log.writer import write_now

    try:
        write_now(batch_log.files, logged, batch_log.input_types)
    except Exception as error:  # the log's store failing never fails the scored file
        line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return 0, f"cannot write to the prediction log {batch_log.files.uri}: {line}"
    return sum(request.rows for request in logged), None


def run_batch(
    model: Any,
    input_uri: str,
    output_uri: str,
    shard: int,
    shards: int,
    text_columns: list[str],
    contract: Contract | None = None,
    invalid_rows: BatchInvalidRows = BATCH_INVALID_ROWS,
    batch_log: BatchLog | None = None,
) -> Iterator[ScoredFile]:
    """Score this shard's files one by one (yielding each as it is written)."""
    files = locate_data_files(input_uri, None)
    base = common_base(files.paths)
    for path in shard_paths(files.paths, shard, shards):
        name = output_name(path, base)
        yield score_file(model, files, path, text_columns, output_uri, name, contract, invalid_rows, batch_log)
