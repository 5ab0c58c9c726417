"""Request bodies in MLflow's scoring formats, as a table of raw columns; predictions as JSON.

JSON (`application/json`), exactly one of:
- `dataframe_split`: `{"columns": [...], "data": [[...], ...]}` (`index` ignored)
- `dataframe_records`: `[{column: value}, ...]`
- `instances` / `inputs`: a list of row objects, or an object of columns (lists)
CSV (`text/csv`): a header row, then data rows; every column is read as text and parsed by the
contract's types, like a CSV dataset. `params` is accepted and ignored (the models take none).
Anything else is an `InvalidRequest` (400), never a server error.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from mlc.runtime.serve.validation import InvalidRequest

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

JSON_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def _column_array(name: str, values: list[Any]) -> pa.Array:
    """One JSON column as an arrow array: its own type when uniform, else text for the contract parser."""
    import pyarrow as pa

    # Objects and lists are never a feature value: as JSON text they fail the type check
    # (or a closed category set) with the value in the message.
    cells = [json.dumps(value) if isinstance(value, dict | list) else value for value in values]
    try:
        return pa.array(cells)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        # Mixed JSON types in one column (1 and "2", true and 1.5): compare them as text.
        return pa.array([None if cell is None else _text(cell) for cell in cells], pa.string())


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _from_columns(columns: dict[str, Any], source: str) -> pa.Table:
    import pyarrow as pa

    lengths = {len(values) if isinstance(values, list) else 1 for values in columns.values()}
    if len(lengths) > 1:
        raise InvalidRequest(f"{source}: the columns have different lengths ({sorted(lengths)})")
    arrays = {
        str(name): _column_array(str(name), values if isinstance(values, list) else [values])
        for name, values in columns.items()
    }
    return pa.table(arrays) if arrays else pa.table({})


def _from_records(records: list[Any], source: str) -> pa.Table:
    names: dict[str, None] = {}  # insertion-ordered union of the rows' keys
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidRequest(
                f"{source}: row {index} is {type(record).__name__}, expected an object of feature names to values"
            )
        names.update(dict.fromkeys(record))
    # A key a row lacks is a null there: the contract check reports it where nulls are not allowed.
    return _from_columns({name: [record.get(name) for record in records] for name in names}, source)


def _from_split(split: Any) -> pa.Table:
    if (
        not isinstance(split, dict)
        or not isinstance(split.get("columns"), list)
        or not isinstance(split.get("data"), list)
    ):
        raise InvalidRequest('dataframe_split: expected {"columns": [...], "data": [[...], ...]}')
    columns, data = split["columns"], split["data"]
    for index, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(columns):
            raise InvalidRequest(f"dataframe_split: row {index} must be a list of {len(columns)} values")
    return _from_columns({str(name): [row[i] for row in data] for i, name in enumerate(columns)}, "dataframe_split")


def _from_tensor_input(key: str, value: Any) -> pa.Table:
    if isinstance(value, dict):
        return _from_columns(value, key)
    if isinstance(value, list):
        return _from_records(value, key)
    raise InvalidRequest(f"{key}: expected a list of row objects or an object of columns")


def parse_json_body(body: bytes) -> pa.Table:
    """The rows of an MLflow JSON scoring request (formats in the module docstring)."""
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidRequest(f"malformed JSON: {error}") from None
    if not isinstance(document, dict):
        raise InvalidRequest(f"expected a JSON object with one of {', '.join(JSON_FORMATS)}")
    given = [key for key in JSON_FORMATS if key in document]
    if len(given) != 1:
        found = f"got {', '.join(given)}" if given else f"got keys {', '.join(map(str, document)) or 'none'}"
        raise InvalidRequest(f"expected exactly one of {', '.join(JSON_FORMATS)}; {found}")
    key = given[0]
    if key == "dataframe_split":
        return _from_split(document[key])
    if key == "dataframe_records":
        if not isinstance(document[key], list):
            raise InvalidRequest("dataframe_records: expected a list of row objects")
        return _from_records(document[key], key)
    return _from_tensor_input(key, document[key])


def parse_csv_body(body: bytes) -> pa.Table:
    """The rows of a CSV request: a header, then rows; every column as text (nulls for empty fields)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if not body.strip():
        raise InvalidRequest("empty CSV body: expected a header row and data rows")
    try:
        header = pacsv.open_csv(pa.BufferReader(body)).schema.names
        return pacsv.read_csv(
            pa.py_buffer(body),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=True
            ),
        )
    except pa.ArrowInvalid as error:
        raise InvalidRequest(f"malformed CSV: {error}") from None


def predictions_json(output: Any) -> bytes:
    """`{"predictions": ...}` like `mlflow models serve`: a DataFrame as records, arrays as lists."""
    return json.dumps({"predictions": jsonable(output)}, allow_nan=False).encode()


def jsonable(output: Any) -> Any:
    """A model output as JSON values (NaN as null)."""
    import numpy as np
    import pandas as pd

    if isinstance(output, pd.DataFrame):
        return [{key: _scalar(value) for key, value in row.items()} for row in output.to_dict(orient="records")]
    if isinstance(output, pd.Series):
        return [_scalar(value) for value in output.tolist()]
    if isinstance(output, np.ndarray):
        return _nested(output.tolist())
    if isinstance(output, list | tuple):
        return _nested(list(output))
    return _scalar(output)


def _nested(values: list[Any]) -> list[Any]:
    return [_nested(value) if isinstance(value, list) else _scalar(value) for value in values]


def _scalar(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def model_frame(table: pa.Table) -> pd.DataFrame:
    """The model's input: the (validated) table as the DataFrame `pyfunc.predict` takes."""
    return table.to_pandas()
