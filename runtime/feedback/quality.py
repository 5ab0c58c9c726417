"""Live quality: the window's logged predictions joined with their labels, `evaluate.metrics`
computed by the gate's own metric code, and each min/max gate judged (pure: tables in, data out).

A gate is judged live only over at least `min_rows` labelled rows: fewer cannot tell a worse
model from an unlucky sample, and the verdict says so. `max_drop`/`max_rise` gates compare two
models and have no live meaning; latency is the serving alerts' job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlc.runtime.contract import LATENCY_METRICS, LOG_OUTPUTS, LOG_REQUEST_ID, LOG_ROW
from mlc.runtime.contract.config import Gate
from mlc.runtime.feedback.labels import ID, LABEL
from mlc.runtime.metrics import output_scores, task_metric

if TYPE_CHECKING:
    import pyarrow as pa

    from mlc.runtime.preprocessor import TargetEncoding


@dataclass(frozen=True)
class LiveGate:
    """One gate judged on live data."""

    metric: str
    rule: str  # min | max
    bound: float
    value: float
    judged: bool  # enough labelled rows to judge
    degraded: bool
    reason: str


@dataclass(frozen=True)
class LiveQuality:
    """What the feedback job found in its window."""

    model_version: str
    predictions: int  # logged rows of that version in the window
    labelled: int  # of those, rows with a label
    unjoinable: int  # rows of requests of several rows, when the labels have no `row` column
    metrics: dict[str, float]
    gates: list[LiveGate]
    min_rows: int

    @property
    def label_share(self) -> float:
        """The share of the window's predictions that got a label so far."""
        return self.labelled / self.predictions if self.predictions else 0.0

    @property
    def degraded(self) -> bool:
        return any(gate.degraded for gate in self.gates)


def live_metric_names(metrics: list[str], gates: list[Gate]) -> list[str]:
    """The metrics computed live: evaluate.metrics and the gates', less latency (measured by serving)."""
    names = dict.fromkeys([*metrics, *(gate.metric for gate in gates)])
    return [name for name in names if name not in LATENCY_METRICS]


def live_gates(gates: list[Gate]) -> list[Gate]:
    """The gates with an absolute bound on a quality metric: what live data can break."""
    return [g for g in gates if (g.min is not None or g.max is not None) and g.metric not in LATENCY_METRICS]


def joined(logged: pa.Table, labels: pa.Table) -> tuple[pa.Table, int]:
    """Logged rows with their labels (inner join on the request id, and the row when labels give it),
    and how many logged rows could not be joined for want of a `row` in the labels."""
    import pyarrow.compute as pc

    if LOG_ROW in labels.column_names:
        return logged.join(labels, keys=[LOG_REQUEST_ID, LOG_ROW], right_keys=[ID, LOG_ROW], join_type="inner"), 0
    # Without a row, a label names a whole request: only requests of one row can take it.
    sizes = logged.group_by(LOG_REQUEST_ID, use_threads=False).aggregate([(LOG_ROW, "count")])
    single = sizes.filter(pc.equal(sizes.column(f"{LOG_ROW}_count"), 1)).column(LOG_REQUEST_ID)
    keep = pc.is_in(logged.column(LOG_REQUEST_ID), value_set=single)
    one_row = logged.filter(keep)
    return one_row.join(
        labels, keys=LOG_REQUEST_ID, right_keys=ID, join_type="inner"
    ), logged.num_rows - one_row.num_rows


def judge(gate: Gate, value: float, labelled: int, min_rows: int) -> LiveGate:
    """A gate's live verdict, with its reason in words."""
    rule, bound = ("min", gate.min) if gate.min is not None else ("max", gate.max)
    assert bound is not None
    broken = value < bound if rule == "min" else value > bound
    relation = ("<" if broken else ">=") if rule == "min" else (">" if broken else "<=")
    if math.isnan(value):
        return LiveGate(gate.metric, rule, bound, value, False, False, f"{gate.metric}: no value (no labelled rows)")
    said = f"{gate.metric} {value:.4g} {relation} {bound:g} (gate {rule})"
    if labelled < min_rows:
        return LiveGate(
            gate.metric, rule, bound, value, False, False,
            f"{said}, over {labelled} labelled rows: fewer than {min_rows} (monitor.feedback.min_rows), not judged yet",
        )  # fmt: skip
    verdict = "DEGRADED" if broken else "ok"
    return LiveGate(gate.metric, rule, bound, value, True, broken, f"{said} over {labelled} labelled rows: {verdict}")


def live_quality(
    logged: pa.Table,
    labels: pa.Table,
    encoding: TargetEncoding,
    metrics: list[str],
    gates: list[Gate],
    min_rows: int,
    model_version: str,
) -> LiveQuality:
    """Join, score and judge. `logged`: the window's rows of one model version, with `request_id`,
    `row` and the output columns as `outputs.<name>`."""
    both, unjoinable = joined(logged, labels)
    labelled = both.num_rows
    values: dict[str, float] = {}
    if labelled:
        truth = encoding.encode(both.column(LABEL))
        outputs: dict[str, Any] = {
            name.removeprefix(f"{LOG_OUTPUTS}."): both.column(name).to_numpy(zero_copy_only=False)
            for name in both.column_names
            if name.startswith(f"{LOG_OUTPUTS}.")
        }
        scores = output_scores(encoding.task, encoding.classes, outputs)
        values = {name: task_metric(name, encoding.task, truth, scores) for name in live_metric_names(metrics, gates)}
    else:
        values = {name: math.nan for name in live_metric_names(metrics, gates)}
    return LiveQuality(
        model_version=model_version,
        predictions=logged.num_rows,
        labelled=labelled,
        unjoinable=unjoinable,
        metrics=values,
        gates=[judge(gate, values[gate.metric], labelled, min_rows) for gate in live_gates(gates)],
        min_rows=min_rows,
    )


def render_text(quality: LiveQuality) -> str:
    """The verdict for people: the counts, every live metric, every gate with its reason."""
    lines = [
        f"model version {quality.model_version}: {quality.predictions} logged predictions in the window, "
        f"{quality.labelled} labelled (label share {quality.label_share:.3f})",
    ]
    if quality.unjoinable:
        lines.append(
            f"  {quality.unjoinable} logged rows belong to requests of several rows and the labels have no `row` "
            "column: they cannot be joined"
        )
    lines += [f"  {name:<20} {value:.4g}" for name, value in quality.metrics.items()]
    lines += [f"gate: {gate.reason}" for gate in quality.gates]
    lines.append(f"live quality: {'DEGRADED' if quality.degraded else 'ok'}")
    return "\n".join(lines)
