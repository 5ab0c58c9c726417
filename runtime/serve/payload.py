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

from mlc.runtime.contract import SERVE_MAX_COLUMNS, SERVE_MAX_DEPTH, SERVE_MAX_ROWS
from mlc.runtime.serve.validation import InvalidRequest

if TYPE_CHECKING:
    import pyarrow as pa

JSON_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")

# The JSON nesting scan (`refuse_deep`): escaped backslashes, then escaped quotes are dropped
# (each replace pairs left to right, as a run of backslashes is read); then only quotes and
# brackets are kept, a bracket after an odd number of quotes is inside a string, and the others
# count +1 (`[{`) and -1 (`]}`): the highest running sum is the depth. Every step is linear in
# the body and vectorised, also when a string never ends (the decoder then refuses the body).
_NOT_STRUCTURE = bytes(byte for byte in range(256) if byte not in b'"[]{}')
_QUOTE = ord('"')


@dataclass(frozen=True)
class RequestColumns:
    """A request's rows as columns of values as parsed (unchecked): name -> one value per row."""

    columns: dict[str, list[Any]]
    rows: int


def refuse_deep(body: bytes, max_depth: int) -> None:
    """A JSON body nesting deeper than `max_depth` is refused before any decoder recurses into it."""
    if body.count(b"[") + body.count(b"{") <= max_depth:  # the common case: too few to nest deeper
        return
    import numpy as np

    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = np.frombuffer(body.translate(None, _NOT_STRUCTURE), dtype=np.uint8)
    if not structure.size:
        return
    steps = np.zeros(structure.size, dtype=np.int32)
    steps[(structure == ord("[")) | (structure == ord("{"))] = 1
    steps[(structure == ord("]")) | (structure == ord("}"))] = -1
    steps[(np.cumsum(structure == _QUOTE, dtype=np.int64) & 1).astype(bool)] = 0  # inside a string
    depth = int(np.cumsum(steps, dtype=np.int64).max())
    if depth > max_depth:
        raise InvalidRequest(f"the JSON nests {depth} levels deep; at most {max_depth} are read")


def decode_json(body: bytes, exact: bool = False, max_depth: int = SERVE_MAX_DEPTH) -> Any:
    """The JSON document of a body (orjson, falling back to `json` for what only it reads).

    `exact`: with `json` only, so integers past 64 bits stay integers (the arrow check reads
    them as text, as it always has). A body nesting deeper than `max_depth` is refused first.
    """
    refuse_deep(body, max_depth)
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


def _from_records(records: list[Any], source: str, max_columns: int) -> RequestColumns:
    names: dict[str, None] = {}  # insertion-ordered union of the rows' keys
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidRequest(
                f"{source}: row {index} is {type(record).__name__}, expected an object of feature names to values"
            )
        names.update(dict.fromkeys(record))
    refuse_wide(len(names), max_columns)
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


def _from_tensor_input(key: str, value: Any, max_columns: int) -> RequestColumns:
    if isinstance(value, dict):
        return _from_columns(value, key)
    if isinstance(value, list):
        return _from_records(value, key, max_columns)
    raise InvalidRequest(f"{key}: expected a list of row objects or an object of columns")


def request_columns(document: Any, max_columns: int = SERVE_MAX_COLUMNS) -> RequestColumns:
    """The rows of an MLflow JSON scoring document (formats in the module docstring); records
    naming more than `max_columns` keys are refused before they are gathered into columns."""
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
        return _from_records(document[key], key, max_columns)
    return _from_tensor_input(key, document[key], max_columns)


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


def refuse_wide(columns: int, max_columns: int = SERVE_MAX_COLUMNS) -> None:
    """A request of more columns than the server reads is refused before it costs anything."""
    if columns > max_columns:
        raise InvalidRequest(f"the request has {columns} columns; at most {max_columns} are read")


def refuse_long(rows: int, max_rows: int = SERVE_MAX_ROWS) -> None:
    """A request of more rows than the server reads is refused before they are checked or predicted."""
    if rows > max_rows:
        raise InvalidRequest(f"the request has {rows} rows; at most {max_rows} are read in one request")


def _csv_header_width(body: bytes, max_columns: int) -> int:
    """How many names the header has (exactly: quoted commas are not separators)."""
    end = body.find(b"\n")
    first = body if end < 0 else body[:end]
    if first.count(b",") < max_columns:  # at most max_columns either way: no need to decode
        return first.count(b",") + 1
    import csv

    return len(next(csv.reader([first.decode("utf-8", "replace")]), []))


def parse_csv_body(body: bytes, max_columns: int = SERVE_MAX_COLUMNS, max_rows: int = SERVE_MAX_ROWS) -> pa.Table:
    """The rows of a CSV request: a header, then rows; every column as text (nulls for empty fields).

    More than `max_columns` names are refused before arrow reads anything; more than `max_rows`
    lines too (a line count bounds the rows; quoted newlines make it larger, so a body over it
    is counted exactly after reading, still bounded by the body limit).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if not body.strip():
        raise InvalidRequest("empty CSV body: expected a header row and data rows")
    refuse_wide(_csv_header_width(body, max_columns), max_columns)
    lines = body.count(b"\n") + (not body.endswith(b"\n"))
    certain = lines - 1 <= max_rows  # the header is one of the lines
    try:
        header = pacsv.open_csv(pa.BufferReader(body)).schema.names
        _refuse_duplicates(header, "CSV header: column")
        table = pacsv.read_csv(
            pa.py_buffer(body),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=True
            ),
        )
    except pa.ArrowInvalid as error:
        raise InvalidRequest(f"malformed CSV: {error}") from None
    if not certain:
        refuse_long(table.num_rows, max_rows)
    return table


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
