"""Rows against the data contract: typed model input, or the violations (a 400 for `serve`).

Each feature column goes through `contract_rules.check_feature`, the rules `validate-data`
applies over `feature_values.coerce_column` (the parser training uses), so a value means the same
thing in a request, a batch file and the training data. Rules: the feature is present; each
value reads as its type; null only where `nullable`; within `min`/`max`; in `values` when the
category set is closed. Rows are numbered from 0 (a request's first row; with `first_row`, a
batch file's rows). A nullable feature may be left out (all null); columns outside the contract
are dropped, except its id columns (`ids`), which `CheckedRows.ids` carries as sent, for the
response to echo (never to the model). `serve` refuses a request with any violation (`validate_rows`); `batch` uses
`check_rows` to fail a file or skip its invalid rows.

Two ways to the same verdict for `serve`. `ContractCheck.fast_checked_rows` takes a request's
columns as JSON parsed them and accepts them only when every value is already in its feature's
canonical form (a finite number for a number, a string for a category, true/false for a bool,
null where nullable) and within the rules; it never reports a violation. Anything else (numbers
as text, ints for a category, NaN, a violation) goes through `validate_rows`, the arrow check
above, which reports every violation. Both give `CheckedRows`: the contract's columns as Python
values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlc.runtime.contract.config import Contract, Feature
from mlc.runtime.contract_rules import RuleKind, check_feature
from mlc.runtime.errors import MlcRuntimeError
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


class InvalidRequest(MlcRuntimeError):
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


def _problem(feature: Feature, kind: RuleKind) -> str:
    """A broken rule as the end of a sentence: `<value> is <problem>`."""
    if kind == "type":
        return f"not {_article(feature.type)}"
    if kind == "null":
        return "null, and the feature is not nullable"
    if kind == "min":
        return f"below min {feature.min:g}"
    if kind == "max":
        return f"above max {feature.max:g}"
    return "not in the closed set of values"


def _article(feature_type: str) -> str:
    return {"int": "an integer", "bool": "a bool", "bytes": "bytes"}.get(feature_type, f"a {feature_type}")


@dataclass(frozen=True)
class RowCheck:
    """Rows checked against the contract.

    `typed`: the features present, in their contract types (unreadable cells null). `violations`:
    the first `MAX_REPORTED`, by row (whole-column problems first), then contract column order.
    `total`: how many there are in all. `invalid_rows`: bool mask of the rows breaking any rule.
    `missing`: required features absent from the rows (no row can be scored without them).
    """

    typed: pa.Table
    violations: tuple[Violation, ...]
    total: int
    invalid_rows: np.ndarray
    missing: tuple[str, ...]

    def summary(self) -> str:
        """The first violation as a sentence, and how many more there are."""
        more = f" (and {self.total - 1} more)" if self.total > 1 else ""
        return self.violations[0].sentence() + more


def check_rows(table: pa.Table, contract: Contract, first_row: int = 0) -> RowCheck:
    """Every contract rule on every row of `table`; rows are numbered from `first_row`."""
    import numpy as np
    import pyarrow as pa

    order = {name: index for index, name in enumerate(contract.features)}
    violations: list[Violation] = []
    missing: list[str] = []
    total = 0
    invalid = np.zeros(table.num_rows, dtype=bool)
    typed: dict[str, pa.Array] = {}
    for name, feature in contract.features.items():
        if name not in table.column_names and feature.nullable:
            # A nullable feature may be left out: all null, as a missing key in a row is.
            typed[name] = coerce_column(pa.nulls(table.num_rows), feature.type).values
            continue
        if name not in table.column_names:
            total += 1
            missing.append(name)
            violations.append(Violation(None, name, "missing feature", valid_values(feature)))
            continue
        raw = table.column(name)
        checked = check_feature(feature, raw)
        typed[name] = checked.values
        for rule in checked.broken:
            rows = np.flatnonzero(rule.rows)
            total += int(rows.size)
            invalid |= rule.rows
            problem, valid = _problem(feature, rule.kind), valid_values(feature)
            violations += [
                Violation(first_row + int(row), name, problem, valid, _example(raw[int(row)].as_py()))
                for row in rows[:MAX_REPORTED]
            ]
    violations.sort(key=lambda v: (-1 if v.row is None else v.row, order[v.column]))
    return RowCheck(pa.table(typed), tuple(violations[:MAX_REPORTED]), total, invalid, tuple(missing))


def validate_rows(table: pa.Table, contract: Contract) -> pa.Table:
    """The contract's features in their types (float and int as float64), or InvalidRequest."""
    check = check_rows(table, contract)
    if check.total:
        raise InvalidRequest(check.summary(), check.violations, check.total)
    return check.typed


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
    ids: dict[str, list[Any]] | None = None  # the contract's id columns the request had, as sent


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
        self._ids = tuple(contract.ids)

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
        ids = {name: given[name] for name in self._ids if name in given} if self._ids else None
        return CheckedRows(columns, rows, ids=ids or None)

    def checked_table(self, table: pa.Table) -> CheckedRows:
        """The arrow check of a table of raw columns: CheckedRows, or InvalidRequest naming each violation."""
        typed = validate_rows(table, self.contract)
        if typed.num_rows == 0:
            raise InvalidRequest("no rows to score")
        ids = {name: table.column(name).to_pylist() for name in self._ids if name in table.column_names}
        columns = {name: typed.column(name).to_pylist() for name in typed.column_names}
        return CheckedRows(columns, typed.num_rows, ids=ids or None)


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
