"""Prometheus metrics of the model server, in the text exposition format (version 0.0.4).

Written here rather than with prometheus-client: the server is one process per pod (no
multiprocess mode to manage), needs three metric kinds and one renderer, and the runtime image
stays one dependency smaller. Every update happens on the server's event loop, so no locks.

Names come from the contract (`mlc.runtime.contract.SERVER_METRICS`), overridden by the runtime
config's `metrics.names` (what alerts, KEDA and Argo analyses query).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlc.runtime.contract import OUTPUT_LABEL, SERVER_METRICS, STATUS_LABEL

if TYPE_CHECKING:
    import numpy as np

LabelValues = tuple[str, ...]

# Request latency: fine below 100 ms where a model server should live, coarse above.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PROBABILITY_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))
VALUE_BUCKETS = (-1000.0, -100.0, -10.0, -1.0, -0.1, 0.0, 0.1, 1.0, 10.0, 100.0, 1000.0)
BATCH_ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: LabelValues, extra: str = "") -> str:
    pairs = [f'{name}="{_escape(value)}"' for name, value in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


@dataclass
class Counter:
    name: str
    help: str
    label_names: tuple[str, ...] = ()
    values: dict[LabelValues, float] = field(default_factory=dict)

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def value(self, *labels: str) -> float:
        return self.values.get(labels, 0.0)

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        for labels, value in sorted(self.values.items()):
            yield f"{self.name}{_labels(self.label_names, labels)} {_number(value)}"


@dataclass
class Gauge:
    name: str
    help: str
    label_names: tuple[str, ...] = ()
    values: dict[LabelValues, float] = field(default_factory=dict)

    def set(self, value: float, *labels: str) -> None:
        self.values[labels] = value

    def add(self, amount: float, *labels: str) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def value(self, *labels: str) -> float:
        return self.values.get(labels, 0.0)

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} gauge"
        for labels, value in sorted(self.values.items()):
            yield f"{self.name}{_labels(self.label_names, labels)} {_number(value)}"


@dataclass
class _Series:
    counts: list[int]  # per bucket, not cumulative; the last is +Inf
    total: float = 0.0


@dataclass
class Histogram:
    name: str
    help: str
    buckets: tuple[float, ...]
    label_names: tuple[str, ...] = ()
    series: dict[LabelValues, _Series] = field(default_factory=dict)

    def _series(self, labels: LabelValues) -> _Series:
        if labels not in self.series:
            self.series[labels] = _Series([0] * (len(self.buckets) + 1))
        return self.series[labels]

    def observe(self, value: float, *labels: str) -> None:
        import bisect

        series = self._series(labels)
        series.counts[bisect.bisect_left(self.buckets, value)] += 1
        series.total += value

    def observe_many(self, values: np.ndarray, *labels: str) -> None:
        """Observe every finite value of an array at once (a batch of predictions)."""
        import numpy as np

        values = np.asarray(values, dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            return
        series = self._series(labels)
        # side="left": a value equal to a bound counts in that bucket (le is "less or equal").
        index = np.searchsorted(np.asarray(self.buckets), values, side="left")
        for bucket, count in enumerate(np.bincount(index, minlength=len(series.counts))):
            series.counts[bucket] += int(count)
        series.total += float(values.sum())

    def count(self, *labels: str) -> int:
        series = self.series.get(labels)
        return sum(series.counts) if series else 0

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        for labels, series in sorted(self.series.items()):
            cumulative = 0
            for bound, count in zip((*self.buckets, math.inf), series.counts, strict=True):
                cumulative += count
                le = f'le="{_number(bound)}"'
                yield f"{self.name}_bucket{_labels(self.label_names, labels, le)} {cumulative}"
            yield f"{self.name}_sum{_labels(self.label_names, labels)} {_number(series.total)}"
            yield f"{self.name}_count{_labels(self.label_names, labels)} {cumulative}"


class ServerMetrics:
    """The metrics one model server exports."""

    def __init__(self, names: dict[str, str] | None = None) -> None:
        name = {**SERVER_METRICS, **(names or {})}
        self.in_flight = Gauge(name["requests_in_flight"], "Prediction requests being answered (KEDA scales on it).")
        self.duration = Histogram(
            name["request_duration_seconds"],
            "Prediction request latency, by HTTP status.",
            LATENCY_BUCKETS,
            (STATUS_LABEL,),
        )
        self.requests = Counter(
            name["requests_total"], "Prediction requests answered, by HTTP status.", (STATUS_LABEL,)
        )
        self.probabilities = Histogram(
            name["predictions"], "Predicted values, by output column.", PROBABILITY_BUCKETS, (OUTPUT_LABEL,)
        )
        self.values = Histogram(name["predictions"], "", VALUE_BUCKETS, (OUTPUT_LABEL,))
        self.model_info = Gauge(
            name["model_info"], "The served model (always 1).", ("model", "version", "alias", "run_id", "uri")
        )
        self.model_calls = Counter(name["model_calls_total"], "Calls of the model's predict (one per micro-batch).")
        self.batch_rows = Histogram(name["batch_rows"], "Rows per model call.", BATCH_ROW_BUCKETS)
        self.in_flight.set(0)

    def observe_predictions(self, column: str, values: np.ndarray) -> None:
        """A batch of one output column: probabilities on [0, 1] buckets, other values on wide ones."""
        histogram = self.probabilities if column.startswith("probability") else self.values
        histogram.observe_many(values, column)

    def render(self) -> str:
        predictions = Histogram(self.probabilities.name, self.probabilities.help, ())
        lines: list[str] = []
        for metric in (
            self.in_flight,
            self.duration,
            self.requests,
            self.model_info,
            self.model_calls,
            self.batch_rows,
        ):
            lines += metric.render()
        # One metric family, two bucket layouts: render both series sets under one header.
        lines += list(predictions.render())[:2]
        for histogram in (self.probabilities, self.values):
            lines += [line for line in histogram.render() if not line.startswith("#")]
        return "\n".join(lines) + "\n"
