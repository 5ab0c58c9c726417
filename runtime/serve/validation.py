"""A request's rows against the data contract: typed model input, or the violations as a 400.

Each feature column goes through `feature_values.coerce_column`, the parser training and
`validate-data` use, so a value means the same thing in a request as in the training data.
Rules: the feature is present; each value reads as its type; null only where `nullable`; within
`min`/`max`; in `values` when the category set is closed. Rows are 0-based indexes into the
request's rows. A nullable feature may be left out (all null); columns outside the contract
are dropped.

Two ways to the same verdict. `fast_checked_rows` takes a request's columns as JSON parsed
them and accepts them only when every value is already in its feature's canonical form (a
finite number for a number, a string for a category, true/false for a bool, null where
nullable) and within the rules; it never reports a violation. Anything else (numbers as text,
ints for a category, NaN, a violation) goes through `validate_rows`, the arrow check above,
which reports every violation. Both give `CheckedRows`: the contract's columns as Python values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlc.runtime.contract.config import Contract, Feature
from mlc.runtime.feature_values import coerce_column

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from mlc.runtime.serve.payload import RequestColumns

MAX_REPORTED = 20  # violations listed in one 400 body; the count says how many there were
_EXAMPLE_CHARS = 60


@dataclass(frozen=True)
class Violation:
    """One cell (or a whole column, row None) that breaks the contract."""

    row: int | None
    column: str
    problem: str
    valid: str
    value: Any = None

    def sentence(self) -> str:
        if self.row is None:
            return f"column {self.column!r}: {self.problem} (valid: {self.valid})"
        return f"row {self.row}, column {self.column!r}: {self.value!r} is {self.problem} (valid: {self.valid})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "column": self.column,
            "problem": self.problem,
            "valid": self.valid,
            "value": self.value,
        }


class InvalidRequest(Exception):
    """A request the server cannot score: malformed or breaking the contract (HTTP 400)."""

    def __init__(self, message: str, violations: tuple[Violation, ...] = (), total: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.violations = violations
        self.total = total or len(violations)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error_code": "BAD_REQUEST", "message": self.message}
        if self.violations:
            body["violations"] = [violation.to_dict() for violation in self.violations]
            body["violation_count"] = self.total
        return body


def valid_values(feature: Feature) -> str:
    """What a feature accepts, in words: its type, range, nullability and closed set."""
    kind = {
        "float": "a number",
        "int": "an integer",
        "bool": "true/false",
        "category": "a category",
        "string": "a string",
        "bytes": "bytes",
    }[feature.type]
    if feature.type == "category" and feature.values is not None:
        kind = "one of " + ", ".join(str(value) for value in feature.values)
    low = "-inf" if feature.min is None else f"{feature.min:g}"
    high = "inf" if feature.max is None else f"{feature.max:g}"
    if feature.min is not None or feature.max is not None:
        kind += f" in [{low}, {high}]"
    return kind + (", or null" if feature.nullable else ", not null")


def _example(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str) and len(value) > _EXAMPLE_CHARS:
        return value[:_EXAMPLE_CHARS] + "..."
    return value


def _mask(array: pa.Array) -> np.ndarray:
    import pyarrow.compute as pc

    return pc.fill_null(array, False).to_numpy(zero_copy_only=False)


def _feature_violations(
    name: str, feature: Feature, raw: pa.ChunkedArray
) -> tuple[pa.Array, list[tuple[int, str]], int]:
    """The column in the contract's type, the first (row, problem) pairs by rule, and how many there are."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    coerced = coerce_column(raw, feature.type)
    values = coerced.values
    rules: list[tuple[np.ndarray, str]] = [(coerced.invalid, f"not {_article(feature.type)}")]
    if not feature.nullable:
        rules.append((coerced.missing, "null, and the feature is not nullable"))
    if feature.min is not None:
        rules.append((_mask(pc.less(values, feature.min)), f"below min {feature.min:g}"))
    if feature.max is not None:
        rules.append((_mask(pc.greater(values, feature.max)), f"above max {feature.max:g}"))
    if feature.type == "category" and feature.values is not None:
        allowed = pa.array([str(value) for value in feature.values])
        outside = pc.and_(pc.invert(pc.is_in(values, value_set=allowed)), pc.is_valid(values))
        rules.append((_mask(outside), "not in the closed set of values"))
    listed = [(int(row), problem) for rows, problem in rules for row in np.flatnonzero(rows)[:MAX_REPORTED]]
    return values, listed, sum(int(rows.sum()) for rows, _ in rules)


def _article(feature_type: str) -> str:
    return {"int": "an integer", "bool": "a bool", "bytes": "bytes"}.get(feature_type, f"a {feature_type}")


def validate_rows(table: pa.Table, contract: Contract) -> pa.Table:
    """The contract's features in their types (float and int as float64), or InvalidRequest."""
    import pyarrow as pa

    order = {name: index for index, name in enumerate(contract.features)}
    violations: list[Violation] = []
    total = 0
    typed: dict[str, pa.Array] = {}
    for name, feature in contract.features.items():
        if name not in table.column_names and feature.nullable:
            # A nullable feature may be left out: all null, as a missing key in a row is.
            typed[name] = coerce_column(pa.nulls(table.num_rows), feature.type).values
            continue
        if name not in table.column_names:
            total += 1
            violations.append(Violation(None, name, "missing feature", valid_values(feature)))
            continue
        raw = table.column(name)
        typed[name], listed, count = _feature_violations(name, feature, raw)
        total += count
        violations += [
            Violation(row, name, problem, valid_values(feature), _example(raw[row].as_py())) for row, problem in listed
        ]
    if total:
        violations.sort(key=lambda v: (-1 if v.row is None else v.row, order[v.column]))
        shown = tuple(violations[:MAX_REPORTED])
        more = f" (and {total - 1} more)" if total > 1 else ""
        raise InvalidRequest(shown[0].sentence() + more, shown, total)
    return pa.table(typed)


# --- checked rows, and the check without arrow -------------------------------------------------

# Integers up to 2**53 are exact as float64, so comparing them in Python equals arrow's
# comparison of their float64 casts; larger ones go to the arrow check.
_EXACT_INTEGER = 2**53


@dataclass(frozen=True)
class CheckedRows:
    """Rows that passed the contract: feature -> one Python value per row.

    Numbers are int or float (float64 for what the arrow check parsed), categories and strings
    str, bools bool, bytes bytes, missing values None. `table`: the arrow table the rows came
    from, when they had one (a model without a contract is handed it as it is).
    """

    columns: dict[str, list[Any]]
    rows: int
    table: Any = None


ColumnCheck = Callable[[list[Any]], bool]


def _numbers(feature: Feature) -> ColumnCheck:
    low, high, nullable, integral = feature.min, feature.max, feature.nullable, feature.type == "int"

    def check(values: list[Any]) -> bool:
        for value in values:
            kind = type(value)  # exact types: a bool is not a number here, as in the arrow check
            if kind is float:
                if not math.isfinite(value) or (integral and not value.is_integer()):
                    return False  # NaN reads as missing, inf as a number: the arrow check decides
            elif kind is int:
                if not -_EXACT_INTEGER <= value <= _EXACT_INTEGER:
                    return False
            elif value is None:
                if nullable:
                    continue
                return False
            else:
                return False
            if (low is not None and value < low) or (high is not None and value > high):
                return False
        return True

    return check


def _of_type(kind: type, nullable: bool, allowed: frozenset[str] | None = None) -> ColumnCheck:
    def check(values: list[Any]) -> bool:
        for value in values:
            if type(value) is kind:
                if allowed is not None and value not in allowed:
                    return False
            elif value is not None or not nullable:
                return False
        return True

    return check


def _column_check(feature: Feature) -> ColumnCheck | None:
    """The canonical-form check of one feature; None where only the arrow check applies (bytes)."""
    if feature.type in ("float", "int"):
        return _numbers(feature)
    if feature.type == "bool":
        return _of_type(bool, feature.nullable)
    if feature.type == "category":
        allowed = None if feature.values is None else frozenset(str(value) for value in feature.values)
        return _of_type(str, feature.nullable, allowed)
    if feature.type == "string":
        return _of_type(str, feature.nullable)
    return None


class ContractCheck:
    """A contract's checks, built once per server: the fast one and the arrow one."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self._checks = [(name, feature, _column_check(feature)) for name, feature in contract.features.items()]

    def fast_checked_rows(self, request: RequestColumns) -> CheckedRows | None:
        """The request's rows when every value is canonical and within the rules; else None."""
        rows = request.rows
        if rows == 0:
            return None
        columns: dict[str, list[Any]] = {}
        given = request.columns
        for name, feature, check in self._checks:
            values = given.get(name)
            if values is None:
                if not feature.nullable:
                    return None
                columns[name] = [None] * rows
            elif check is None or not check(values):
                return None
            else:
                columns[name] = values
        return CheckedRows(columns, rows)

    def checked_table(self, table: pa.Table) -> CheckedRows:
        """The arrow check of a table of raw columns: CheckedRows, or InvalidRequest naming each violation."""
        typed = validate_rows(table, self.contract)
        if typed.num_rows == 0:
            raise InvalidRequest("no rows to score")
        return CheckedRows({name: typed.column(name).to_pylist() for name in typed.column_names}, typed.num_rows)


def rows_table(rows: CheckedRows, contract: Contract | None) -> pa.Table:
    """Checked rows as the arrow table the arrow check would have produced (a pyfunc's input)."""
    import pyarrow as pa

    if rows.table is not None or contract is None:
        return rows.table
    types = {
        "float": pa.float64(),
        "int": pa.float64(),
        "bool": pa.bool_(),
        "category": pa.string(),
        "string": pa.string(),
        "bytes": pa.binary(),
    }
    return pa.table(
        {name: pa.array(rows.columns[name], types[feature.type]) for name, feature in contract.features.items()}
    )
