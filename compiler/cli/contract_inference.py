"""`mlc init`'s first data contract, read off the training data a newcomer already has.

From a CSV's header and a sample of its rows: the target (named, else a column called
target/label/class/y, else the last one) and its task; per other column its type (int, float,
bool, else an open category), whether it has nulls, `min: 0` when no value is negative, and
what was seen (a comment for the person who tightens the contract); columns that look like
row ids (`id`, `*_id`, unique, no nulls) become `ids:`, passed through and never fed to the
model. Pure: the caller reads the file (`read_csv_sample`).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

SAMPLE_ROWS = 10_000
TARGET_NAMES = ("target", "label", "class", "y")
MAX_CLASSES = 20  # integer labels with at most this many values are classes, not a quantity
MAX_VALUES_SHOWN = 6
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_BOOL = {"true", "false"}


@dataclass(frozen=True)
class InferredFeature:
    name: str
    type: str  # int | float | bool | category
    nullable: bool
    min: float | None  # 0 when no value is negative (numbers only)
    seen: str  # `0.5 to 72`, `basic, plus, pro`: a comment, not a rule


@dataclass(frozen=True)
class InferredContract:
    target: str
    task: str  # binary | multiclass | regression
    features: tuple[InferredFeature, ...]
    ids: tuple[str, ...]
    rows: int  # rows of the sample


class InferenceError(ValueError):
    """The data cannot give a contract (no rows, an unknown target column)."""


def read_csv_sample(path: Path, limit: int = SAMPLE_ROWS) -> tuple[list[str], list[list[str]]]:
    """The header and up to `limit` rows of a CSV file."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        rows = [row for _, row in zip(range(limit), reader, strict=False)]
    return header, rows


def _number(text: str) -> str:
    value = float(text)
    return f"{value:g}"


def _column_type(values: list[str]) -> str:
    if values and all(_INT.fullmatch(v) for v in values):
        return "int"
    if values and all(_FLOAT.fullmatch(v) for v in values):
        return "float"
    if values and all(v.lower() in _BOOL for v in values):
        return "bool"
    return "category"


def _seen(kind: str, values: list[str]) -> str:
    if kind in ("int", "float") and values:
        numbers = [float(v) for v in values]
        return f"seen {_number(str(min(numbers)))} to {_number(str(max(numbers)))}"
    levels = sorted(set(values))
    shown = ", ".join(levels[:MAX_VALUES_SHOWN]) + (
        f", ... ({len(levels)} values)" if len(levels) > MAX_VALUES_SHOWN else ""
    )
    return f"seen {shown}" if levels else "always empty"


def _task(values: list[str]) -> str:
    distinct = {v.lower() for v in values}
    if distinct <= {"0", "1"} or distinct <= _BOOL:
        return "binary"
    kind = _column_type(values)
    if kind == "int" and len(distinct) <= MAX_CLASSES:
        return "multiclass"
    return "regression" if kind in ("int", "float") else "multiclass"


def _pick_target(header: list[str], target: str | None) -> str:
    if target is not None:
        if target not in header:
            raise InferenceError(f"no column {target!r} to predict; columns: {', '.join(header)}")
        return target
    lowered = {name.lower(): name for name in header}
    return next((lowered[name] for name in TARGET_NAMES if name in lowered), header[-1])


def _is_id(name: str, values: list[str], rows: int) -> bool:
    lowered = name.lower()
    named = lowered == "id" or lowered.endswith("_id") or lowered.endswith(" id")
    return named and len(values) == rows and len(set(values)) == rows


def infer_contract(header: list[str], rows: list[list[str]], target: str | None = None) -> InferredContract:
    """The contract the sample suggests (see the module docstring)."""
    if not header or not rows:
        raise InferenceError("the file has no data rows to read a contract from")
    target = _pick_target(header, target)
    columns = {name: [row[i].strip() for row in rows if i < len(row)] for i, name in enumerate(header)}
    features, ids = [], []
    for name, cells in columns.items():
        values = [v for v in cells if v != ""]
        if name == target:
            continue
        if _is_id(name, values, len(rows)):
            ids.append(name)
            continue
        kind = _column_type(values)
        numeric = kind in ("int", "float")
        minimum = 0.0 if numeric and values and all(float(v) >= 0 for v in values) else None
        features.append(InferredFeature(name, kind, len(values) < len(rows), minimum, _seen(kind, values)))
    labels = [v for v in columns[target] if v != ""]
    return InferredContract(target, _task(labels), tuple(features), tuple(ids), len(rows))


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*( [A-Za-z0-9_.-]+)*")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


def yaml_key(name: str) -> str:
    """`name` as a YAML mapping key: plain when it reads back as the same string, else quoted."""
    if _PLAIN_KEY.fullmatch(name) and name.lower() not in _YAML_WORDS:
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
