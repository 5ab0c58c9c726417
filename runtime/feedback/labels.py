"""Reading ground-truth labels: files with an id column (the request id the server answered in
`X-Request-ID`, or a batch input file), a label column, and optionally `row` (the row's position
in a request of several rows). The last label given for an id (and row) wins."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlc.runtime.contract import LOG_ROW
from mlc.runtime.contract.config import Labels
from mlc.runtime.datasets import DataError, locate_data_files, read_table

if TYPE_CHECKING:
    import pyarrow as pa

ID, LABEL = "id", "label"


def read_labels(labels: Labels) -> pa.Table:
    """The labels as a table `id`, `label`[, `row`]: ids as text, nulls dropped, one label per key."""
    import pyarrow as pa
    import pyarrow.compute as pc

    files = locate_data_files(labels.uri)
    table = read_table(files, text_columns=[labels.id_column, labels.label_column])
    missing = [name for name in (labels.id_column, labels.label_column) if name not in table.column_names]
    if missing:
        found = ", ".join(table.column_names)
        raise DataError(
            f"{labels.uri}: no column {', '.join(repr(m) for m in missing)} "
            f"(monitor.feedback.labels.id_column / label_column); its columns: {found}"
        )
    columns = {ID: pc.cast(table.column(labels.id_column), pa.string()), LABEL: table.column(labels.label_column)}
    if LOG_ROW in table.column_names and labels.id_column != LOG_ROW:
        columns[LOG_ROW] = pc.cast(table.column(LOG_ROW), pa.int64())
    result = pa.table(columns)
    result = result.filter(pc.and_(pc.is_valid(result.column(ID)), pc.is_valid(result.column(LABEL))))
    keys = [ID, LOG_ROW] if LOG_ROW in result.column_names else [ID]
    # The last label of a key wins (a corrected label appended later replaces the first one).
    indexed = result.append_column("_position", pa.array(range(result.num_rows), pa.int64()))
    last = indexed.group_by(keys, use_threads=False).aggregate([("_position", "max")])
    return result.take(last.column("_position_max")).combine_chunks()
