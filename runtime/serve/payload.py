"""Request bodies in MLflow's scoring formats, as raw columns; predictions as JSON.

JSON (`application/json`), exactly one of:
- `dataframe_split`: `{"columns": [...], "data": [[...], ...]}` (`index` ignored)
- `dataframe_records`: `[{column: value}, ...]`
- `instances` / `inputs`: a list of row objects, or an object of columns (lists)
CSV (`text/csv`): a header row, then data rows; every column is read as text and parsed by the
contract's types, like a CSV dataset. `params` is accepted and ignored (the models take none).
Anything else is an `InvalidRequest` (400), never a server error.

JSON is decoded with orjson (several times faster than the standard library on these bodies);
what orjson refuses but Python's `json` reads (`NaN`, `Infinity`, numbers past a double) is
read by `json`, so the accepted bodies are the same as MLflow's server accepts. The contract
check (`validation.py`) reads the columns as parsed; when a value needs the contract's text
parser it re-reads the body with `json`, the parser the arrow check was written against.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlc.runtime.serve.validation import InvalidRequest

if TYPE_CHECKING:
    import pyarrow as pa

JSON_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")

# Most columns a request may have: arrow's CSV reader takes seconds on the event loop for a
# header of 100,000 names, so a wider request is refused before anything parses it.
MAX_COLUMNS = 1024


@dataclass(frozen=True)
class RequestColumns:
    """A request's rows as columns of values as parsed (unchecked): name -> one value per row."""

    columns: dict[str, list[Any]]
    rows: int


def decode_json(body: bytes, exact: bool = False) -> Any:
    """The JSON document of a body (orjson, falling back to `json` for what only it reads).

    `exact`: with `json` only, so integers past 64 bits stay integers (the arrow check reads
    them as text, as it always has).
    """
    if not exact:
        import orjson

        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # NaN, Infinity, a number past a double, or malformed: `json` decides
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidRequest(f"malformed JSON: {error}") from None
    except RecursionError:
        raise InvalidRequest("malformed JSON: nested too deeply for a scoring request") from None
    except ValueError:  # Python refuses integers of more than 4300 digits (a denial-of-service guard)
        raise InvalidRequest("malformed JSON: a number has more digits than any feature value can") from None


def _from_columns(columns: dict[Any, Any], source: str) -> RequestColumns:
    lists = {str(name): values if isinstance(values, list) else [values] for name, values in columns.items()}
    lengths = {len(values) for values in lists.values()}
    if len(lengths) > 1:
        raise InvalidRequest(f"{source}: the columns have different lengths ({sorted(lengths)})")
    return RequestColumns(lists, lengths.pop() if lengths else 0)


def _from_records(records: list[Any], source: str) -> RequestColumns:
    names: dict[str, None] = {}  # insertion-ordered union of the rows' keys
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidRequest(
                f"{source}: row {index} is {type(record).__name__}, expected an object of feature names to values"
            )
        names.update(dict.fromkeys(record))
    refuse_wide(len(names))
    # A key a row lacks is a null there: the contract check reports it where nulls are not allowed.
    return _from_columns({name: [record.get(name) for record in records] for name in names}, source)


def _from_split(split: Any) -> RequestColumns:
    if (
        not isinstance(split, dict)
        or not isinstance(split.get("columns"), list)
        or not isinstance(split.get("data"), list)
    ):
        raise InvalidRequest('dataframe_split: expected {"columns": [...], "data": [[...], ...]}')
    columns, data = split["columns"], split["data"]
    _refuse_duplicates([str(name) for name in columns], "dataframe_split: column")
    width = len(columns)
    for index, row in enumerate(data):
        if not isinstance(row, list) or len(row) != width:
            raise InvalidRequest(f"dataframe_split: row {index} must be a list of {width} values")
    if len(data) == 1:  # the most common request: one row, no per-column comprehension
        return _from_columns({str(name): [value] for name, value in zip(columns, data[0], strict=True)}, "")
    return _from_columns({str(name): [row[i] for row in data] for i, name in enumerate(columns)}, "dataframe_split")


def _refuse_duplicates(names: list[str], what: str) -> None:
    """Two columns of one name: which one the model would see is a guess, so neither."""
    if len(set(names)) != len(names):
        counts = Counter(names)
        twice = next(name for name in names if counts[name] > 1)
        raise InvalidRequest(f"{what} {twice!r} appears {counts[twice]} times; name each column once")


def _from_tensor_input(key: str, value: Any) -> RequestColumns:
    if isinstance(value, dict):
        return _from_columns(value, key)
    if isinstance(value, list):
        return _from_records(value, key)
    raise InvalidRequest(f"{key}: expected a list of row objects or an object of columns")


def request_columns(document: Any) -> RequestColumns:
    """The rows of an MLflow JSON scoring document (formats in the module docstring)."""
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


def parse_json_body(body: bytes) -> RequestColumns:
    """The rows of an MLflow JSON scoring request."""
    return request_columns(decode_json(body))


def _column_array(values: list[Any]) -> pa.Array:
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


def columns_table(request: RequestColumns) -> pa.Table:
    """The request's columns as an arrow table (each column in its JSON type, mixed ones as text)."""
    import pyarrow as pa

    arrays = {}
    for name, values in request.columns.items():
        try:
            arrays[name] = _column_array(values)
        except UnicodeEncodeError:  # `json` reads a lone surrogate (\ud800) into a str no encoder takes
            raise InvalidRequest(f"column {name!r}: a string is not valid Unicode (a lone surrogate)") from None
    return pa.table(arrays) if arrays else pa.table({})


def refuse_wide(columns: int) -> None:
    """A request of more columns than any contract has is refused before it costs anything."""
    if columns > MAX_COLUMNS:
        raise InvalidRequest(f"the request has {columns} columns; at most {MAX_COLUMNS} are read")


def _csv_header_width(body: bytes) -> int:
    """How many names the header has (exactly: quoted commas are not separators)."""
    end = body.find(b"\n")
    first = body if end < 0 else body[:end]
    if first.count(b",") < MAX_COLUMNS:  # at most MAX_COLUMNS either way: no need to decode
        return first.count(b",") + 1
    import csv

    return len(next(csv.reader([first.decode("utf-8", "replace")]), []))


def parse_csv_body(body: bytes) -> pa.Table:
    """The rows of a CSV request: a header, then rows; every column as text (nulls for empty fields)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if not body.strip():
        raise InvalidRequest("empty CSV body: expected a header row and data rows")
    refuse_wide(_csv_header_width(body))
    try:
        header = pacsv.open_csv(pa.BufferReader(body)).schema.names
        _refuse_duplicates(header, "CSV header: column")
        return pacsv.read_csv(
            pa.py_buffer(body),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=True
            ),
        )
    except pa.ArrowInvalid as error:
        raise InvalidRequest(f"malformed CSV: {error}") from None


def jsonable(output: Any) -> Any:
    """A pyfunc model's output as JSON values, as `mlflow models serve` writes them (NaN as null)."""
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
