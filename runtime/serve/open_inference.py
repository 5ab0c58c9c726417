"""The Open Inference Protocol (KServe V2 / Triton), REST: metadata, and infer requests as columns.

A tabular model's inputs are its contract's features, one tensor each, of shape `[rows]` (or
`[rows, 1]`): `FP64` for float, `INT64` for int, `BOOL` for bool, `BYTES` for category, string
and bytes (any numeric datatype is accepted for a number; the contract check reads the values
as it reads JSON). Outputs are the model's output columns, one tensor each. Tensor data comes
as JSON (`data`, row-major, nested or flat; `null` for a missing value) or, with the binary
tensor extension (`Inference-Header-Content-Length`), as raw little-endian bytes after the JSON
header (`BYTES` elements each prefixed with their 4-byte length). Outputs are binary when the
request asks (`parameters.binary_data` on an output, or `binary_data_output` on the request).
Errors are `{"error": message}` with a 4xx status, as the protocol defines.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlc.runtime.contract import SERVE_MAX_DEPTH
from mlc.runtime.serve.payload import RequestColumns, decode_json
from mlc.runtime.serve.validation import InvalidRequest

if TYPE_CHECKING:
    from mlc.runtime.contract.config import Contract
    from mlc.runtime.serve.scoring import Predictions

FEATURE_DATATYPES = {
    "float": "FP64",
    "int": "INT64",
    "bool": "BOOL",
    "category": "BYTES",
    "string": "BYTES",
    "bytes": "BYTES",
}
OUTPUT_DATATYPES = {"int": "INT64", "float": "FP64", "string": "BYTES"}
# numpy dtypes of the fixed-size datatypes (little-endian, as the binary extension defines).
_BINARY_DTYPES = {
    "BOOL": "|b1",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
DATATYPES = frozenset(_BINARY_DTYPES) | {"BYTES"}


@dataclass(frozen=True)
class InferRequest:
    """A parsed infer request: its rows as columns and what it asks of the outputs."""

    columns: RequestColumns
    id: str | None = None
    outputs: tuple[str, ...] = ()  # requested output names; empty: all
    binary_outputs: frozenset[str] = field(default_factory=frozenset)
    all_binary: bool = False


def server_metadata(version: str) -> dict[str, Any]:
    """`GET /v2`."""
    return {"name": "mlc-runtime", "version": version, "extensions": ["binary_tensor_data"]}


def model_metadata(
    name: str, version: str, contract: Contract | None, outputs: list[tuple[str, str]]
) -> dict[str, Any]:
    """`GET /v2/models/{name}`: inputs from the contract, outputs from the loaded model."""
    features = contract.features if contract is not None else {}
    return {
        "name": name,
        "versions": [version] if version else [],
        "platform": "mlc-runtime",
        "inputs": [
            {"name": feature, "datatype": FEATURE_DATATYPES[spec.type], "shape": [-1]}
            for feature, spec in features.items()
        ],
        "outputs": [{"name": output, "datatype": OUTPUT_DATATYPES[kind], "shape": [-1]} for output, kind in outputs],
    }


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if not any(isinstance(item, list) for item in data):
        return data
    flat: list[Any] = []
    for item in data:
        flat.extend(_flatten(item))
    return flat


def _bytes_elements(raw: bytes, name: str) -> list[bytes]:
    elements, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InvalidRequest(f"input {name!r}: truncated BYTES element length")
        (size,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + size > len(raw):
            raise InvalidRequest(f"input {name!r}: BYTES element longer than the data")
        elements.append(raw[offset : offset + size])
        offset += size
    return elements


def _binary_values(raw: bytes, datatype: str, name: str) -> list[Any]:
    if datatype == "BYTES":
        return list(_bytes_elements(raw, name))
    import numpy as np

    dtype = np.dtype(_BINARY_DTYPES[datatype])
    if len(raw) % dtype.itemsize:
        raise InvalidRequest(f"input {name!r}: {len(raw)} bytes is not a whole number of {datatype} elements")
    return np.frombuffer(raw, dtype=dtype).tolist()


def _text_values(values: list[Any], name: str, keep_bytes: bool) -> list[Any]:
    """BYTES elements as text (UTF-8), or as bytes for a bytes feature."""
    if keep_bytes:
        return [value.encode() if isinstance(value, str) else value for value in values]
    try:
        return [value.decode() if isinstance(value, bytes) else value for value in values]
    except UnicodeDecodeError:
        raise InvalidRequest(f"input {name!r}: a BYTES element is not UTF-8 text") from None


def parse_infer_request(
    body: bytes, header_length: int | None, contract: Contract | None, max_depth: int = SERVE_MAX_DEPTH
) -> InferRequest:
    """An infer request body (JSON, or JSON then binary tensors) as columns; InvalidRequest when
    malformed or nested deeper than `max_depth`."""
    if header_length is not None:
        if not 0 < header_length <= len(body):
            raise InvalidRequest(f"Inference-Header-Content-Length {header_length} is outside the body")
        document, binary = decode_json(body[:header_length], max_depth=max_depth), memoryview(body)[header_length:]
    else:
        document, binary = decode_json(body, max_depth=max_depth), memoryview(b"")
    if not isinstance(document, dict) or not isinstance(document.get("inputs"), list) or not document["inputs"]:
        raise InvalidRequest('expected {"inputs": [{"name", "shape", "datatype", "data"}, ...]}')
    features = contract.features if contract is not None else {}
    columns: dict[str, list[Any]] = {}
    rows: int | None = None
    offset = 0
    for index, tensor in enumerate(document["inputs"]):
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise InvalidRequest(f"inputs[{index}]: expected an object with a name")
        name = tensor["name"]
        shape, datatype = tensor.get("shape"), tensor.get("datatype")
        if datatype not in DATATYPES:
            raise InvalidRequest(f"input {name!r}: datatype {datatype!r} is not one of {', '.join(sorted(DATATYPES))}")
        if (
            not isinstance(shape, list)
            or not shape
            or not all(isinstance(size, int) and size >= 0 for size in shape)
            or math.prod(shape[1:]) != 1
        ):
            raise InvalidRequest(f"input {name!r}: shape {shape!r} must be [rows] or [rows, 1] (one feature each)")
        parameters = tensor.get("parameters") if isinstance(tensor.get("parameters"), dict) else {}
        binary_size = parameters.get("binary_data_size")
        if binary_size is not None:
            if not isinstance(binary_size, int) or binary_size < 0 or offset + binary_size > len(binary):
                raise InvalidRequest(f"input {name!r}: binary_data_size {binary_size!r} is outside the body")
            values = _binary_values(bytes(binary[offset : offset + binary_size]), datatype, name)
            offset += binary_size
        elif "data" in tensor:
            values = _flatten(tensor["data"])
        else:
            raise InvalidRequest(f"input {name!r}: no data (neither data nor parameters.binary_data_size)")
        if len(values) != shape[0]:
            raise InvalidRequest(f"input {name!r}: shape {shape} holds {shape[0]} values, data has {len(values)}")
        if rows is not None and shape[0] != rows:
            raise InvalidRequest(f"input {name!r}: {shape[0]} rows, the other inputs have {rows}")
        rows = shape[0]
        if datatype == "BYTES":
            feature = features.get(name)
            values = _text_values(values, name, keep_bytes=feature is not None and feature.type == "bytes")
        columns[name] = values
    if offset != len(binary):
        raise InvalidRequest(f"{len(binary) - offset} bytes of binary data after the last input")
    return InferRequest(
        RequestColumns(columns, rows or 0),
        id=str(document["id"]) if "id" in document else None,
        **_requested_outputs(document),
    )


def _requested_outputs(document: dict[str, Any]) -> dict[str, Any]:
    parameters = document.get("parameters") if isinstance(document.get("parameters"), dict) else {}
    outputs = document.get("outputs") or []
    if not isinstance(outputs, list) or not all(
        isinstance(output, dict) and isinstance(output.get("name"), str) for output in outputs
    ):
        raise InvalidRequest('outputs: expected [{"name": ...}, ...]')
    binary = {
        output["name"]
        for output in outputs
        if isinstance(output.get("parameters"), dict) and output["parameters"].get("binary_data")
    }
    return {
        "outputs": tuple(output["name"] for output in outputs),
        "binary_outputs": frozenset(binary),
        "all_binary": bool(parameters.get("binary_data_output")),
    }


def _datatype(values: list[Any]) -> str:
    present = [value for value in values if value is not None]
    if present and all(isinstance(value, bool) for value in present):
        return "BOOL"
    if present and all(isinstance(value, int) and not isinstance(value, bool) for value in present):
        return "INT64"
    if all(isinstance(value, int | float) and not isinstance(value, bool) for value in present):
        return "FP64"
    return "BYTES"


def _shape(values: Any) -> list[int]:
    shape = []
    while isinstance(values, list):
        shape.append(len(values))
        values = values[0] if values else None
    return shape


def _binary_data(values: list[Any], datatype: str) -> bytes:
    if datatype == "BYTES":
        encoded = [str(value).encode() if not isinstance(value, bytes) else value for value in values]
        return b"".join(struct.pack("<I", len(item)) + item for item in encoded)
    import numpy as np

    if datatype == "FP64":
        values = [math.nan if value is None else value for value in values]
    return np.asarray(values, dtype=_BINARY_DTYPES[datatype]).tobytes()


def infer_response(
    request: InferRequest, model_name: str, model_version: str, predictions: Predictions
) -> tuple[bytes, int | None]:
    """The response body and, when it carries binary tensors, the length of its JSON header."""
    import orjson

    columns = predictions.columns
    names = list(request.outputs) or list(columns)
    unknown = [name for name in names if name not in columns]
    if unknown:
        raise InvalidRequest(f"unknown output {unknown[0]!r}; the model's outputs: {', '.join(columns)}")
    outputs, blobs = [], []
    for name in names:
        values = columns[name]
        shape = _shape(values)
        flat = _flatten(values)
        datatype = _datatype(flat)
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": shape}
        if request.all_binary or name in request.binary_outputs:
            blob = _binary_data(flat, datatype)
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            tensor["data"] = flat
        outputs.append(tensor)
    response: dict[str, Any] = {"model_name": model_name, "model_version": model_version, "outputs": outputs}
    if request.id is not None:
        response["id"] = request.id
    header = orjson.dumps(response)
    if not blobs:
        return header, None
    return header + b"".join(blobs), len(header)
