"""`validate-data`: a dataset against the data contract, batch by batch.

Rules per feature column: present; then `contract_rules.check_feature` (the rules `serve` and
`batch` apply too): readable as its type; nulls only where `nullable`; within `min`/`max`; in
`values` when the category set is closed. The target must be present (and not null) in the
datasets a model trains or is evaluated on. Memory stays O(columns): each rule keeps a count and
its first offending row. Rows are numbered from 0 over the data rows, across all the dataset's
files in order (as `serve` and `batch` number them; see `contract_rules`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlc.runtime.contract.config import Contract, Feature, RuntimeConfig
from mlc.runtime.contract_rules import RuleKind, check_feature

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

_EXAMPLE_CHARS = 40


@dataclass
class RuleViolation:
    """Rows of one column breaking one rule: how many, and the first (0-based data row) with its value."""

    rule: str
    count: int
    first_row: int
    example: str


@dataclass
class ColumnReport:
    name: str
    role: str  # feature | target
    present: bool = True
    violations: dict[str, RuleViolation] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.present and not self.violations


@dataclass
class DataReport:
    dataset: str
    uri: str
    rows: int
    columns: list[ColumnReport]

    @property
    def valid(self) -> bool:
        # No rows proves nothing: a model cannot train on it, a drift check has nothing to compare.
        return self.rows > 0 and all(column.ok for column in self.columns)

    def summary(self) -> str:
        """What breaks the contract, in one line (empty when valid)."""
        if self.valid:
            return ""
        if self.rows == 0:
            return "no data rows (a header alone, or empty files)"
        problems = []
        for column in self.columns:
            if not column.present:
                problems.append(f"{column.name}: missing column")
            for violation in column.violations.values():
                problems.append(
                    f"{column.name}: {violation.rule}: {violation.count} row(s), e.g. row {violation.first_row}: "
                    f"{violation.example}"
                )
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        return "; ".join(problems[:3]) + more


class ContractCheck:
    """Accumulates the contract's rules over record batches; `report()` when done."""

    def __init__(self, dataset: str, uri: str, contract: Contract, require_target: bool) -> None:
        self._dataset, self._uri, self._rows = dataset, uri, 0
        self._features = contract.features
        self._columns = {name: ColumnReport(name, "feature") for name in contract.features}
        self._target = contract.target if require_target else None
        if self._target is not None and self._target not in self._columns:
            self._columns[self._target] = ColumnReport(self._target, "target")

    def add_batch(self, batch: pa.RecordBatch) -> None:
        names = set(batch.schema.names)
        for name, column in self._columns.items():
            if name not in names:
                column.present = False
                continue
            array = batch.column(name)
            if column.role == "target":
                self._record(column, "null", array.is_null().to_numpy(zero_copy_only=False), array)
            else:
                self._check_feature(column, self._features[name], array)
        self._rows += batch.num_rows

    def _check_feature(self, column: ColumnReport, feature: Feature, array: pa.Array) -> None:
        for rule in check_feature(feature, array).broken:
            self._record(column, _rule_name(feature, rule.kind), rule.rows, array)

    def _record(self, column: ColumnReport, rule: str, rows: np.ndarray, array: pa.Array) -> None:
        import numpy as np

        hits = np.flatnonzero(rows)
        if hits.size == 0:
            return
        seen = column.violations.get(rule)
        if seen is None:
            example = repr(array[int(hits[0])].as_py())[:_EXAMPLE_CHARS]
            column.violations[rule] = RuleViolation(rule, int(hits.size), self._rows + int(hits[0]), example)
        else:
            seen.count += int(hits.size)

    def report(self) -> DataReport:
        return DataReport(self._dataset, self._uri, self._rows, list(self._columns.values()))


def _rule_name(feature: Feature, kind: RuleKind) -> str:
    """How the report names a broken rule, e.g. `below min 0`, `not in values [basic, plus]`."""
    if kind == "type":
        return f"not {feature.type}"
    if kind == "null":
        return "null (not nullable)"
    if kind == "min":
        return f"below min {feature.min:g}"
    if kind == "max":
        return f"above max {feature.max:g}"
    return f"not in values [{', '.join(str(value) for value in feature.values or [])}]"


def render_data_report(report: DataReport) -> str:
    """The report as text: one line a column, a problem line per rule, a verdict line."""
    width = max((len(column.name) for column in report.columns), default=0)
    lines = [f"dataset {report.dataset} ({report.uri}): {report.rows} rows checked"]
    for column in report.columns:
        label = f"  {column.name:<{width}}  {column.role:<7}  "
        if not column.present:
            lines.append(f"{label}missing column")
        elif column.ok:
            lines.append(f"{label}ok")
        else:
            lines.append(f"{label}{len(column.violations)} problem(s)")
            for violation in column.violations.values():
                where = f"e.g. row {violation.first_row}: {violation.example}"
                lines.append(f"      {violation.rule}: {violation.count} row(s), {where}")
    bad = sum(not column.ok for column in report.columns)
    if report.valid:
        lines.append("valid")
    elif report.rows == 0:
        lines.append("invalid: no data rows (a header alone, or empty files)")
    else:
        lines.append(f"invalid: {bad} of {len(report.columns)} column(s) break the contract")
    return "\n".join(lines) + "\n"


def data_choices(config: RuntimeConfig) -> str:
    """What `validate-data` can check: the datasets by name, and the other data the spec names."""
    names = ", ".join(config.data) or "none"
    others = []
    if config.drift is not None:
        others.append(f"the live data --data {config.drift.current.uri}")
    if config.serve is not None and config.serve.batch is not None:
        others.append(f"the batch input --data {config.serve.batch.input}")
    also = f"; or any data, e.g. {' or '.join(others)}" if others else "; or --data URI for any other data"
    return f"datasets: {names}{also}"


def check_data(config: RuntimeConfig, uri: str, sample: int | None = None) -> DataReport:
    """Check any data (live data, a batch input) against the contract's features; no target needed."""
    from mlc.runtime.datasets import locate_data_files, read_record_batches

    contract = config.require_contract()
    files = locate_data_files(uri, None)
    check = ContractCheck("--data", uri, contract, require_target=False)
    for batch in read_record_batches(files, text_columns=list(contract.features), limit=sample):
        check.add_batch(batch)
    return check.report()


def check_dataset(config: RuntimeConfig, name: str, sample: int | None = None) -> DataReport:
    """Read the named dataset (its first `sample` rows, if given) and check it against the contract."""
    from mlc.runtime.datasets import locate_data_files, read_record_batches

    contract = config.require_contract()
    dataset = config.dataset(name)
    evaluated = config.evaluate.dataset if config.evaluate else None
    require_target = contract.target is not None and name in ("train", "eval", evaluated)
    files = locate_data_files(dataset.uri, dataset.format)
    columns = [*contract.features, *([contract.target] if contract.target else [])]
    check = ContractCheck(name, dataset.uri, contract, require_target)
    for batch in read_record_batches(files, text_columns=columns, limit=sample):
        check.add_batch(batch)
    return check.report()


def require_valid_dataset(config: RuntimeConfig, name: str, sample: int | None = None) -> DataReport:
    """`check_dataset`, and a DataError when the data breaks the contract: what `train` and `gate`
    run before they use a dataset, so they never accept data `validate-data` refuses."""
    from mlc.runtime.datasets import DataError

    report = check_dataset(config, name, sample)
    if not report.valid:
        raise DataError(
            f"dataset {name} ({report.uri}) breaks the data contract: {report.summary()} "
            f"(`mlc-runtime validate-data --dataset {name}` reports every rule)"
        )
    return report
