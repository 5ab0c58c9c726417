"""Prometheus metrics of the model server, through `prometheus_client`.

Names come from the contract (`mlc.runtime.contract.SERVER_METRICS`), overridden by the runtime
config's `metrics.names` (what alerts, KEDA and Argo analyses query). Each server has its own
registry: the server's metrics, plus the process (CPU, memory, open files), garbage collector
and platform collectors `prometheus_client` ships.

The prediction histogram is one metric family with two bucket layouts (probabilities on
[0, 1], other values on a wide log scale) and observes a whole batch's column at once with
numpy, so it is kept here and exported through a custom collector.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlc.runtime.contract import OUTPUT_LABEL, SERVER_METRICS, STATUS_LABEL

if TYPE_CHECKING:
    import numpy as np

# The text format every Prometheus version reads (prometheus_client's newest default says 1.0.0).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Request latency: fine below 100 ms where a model server should live, coarse above.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
QUEUE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
PROBABILITY_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))
VALUE_BUCKETS = (-1000.0, -100.0, -10.0, -1.0, -0.1, 0.0, 0.1, 1.0, 10.0, 100.0, 1000.0)
BATCH_ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass
class _Series:
    counts: list[int]  # per bucket, not cumulative; the last is +Inf
    total: float = 0.0


@dataclass
class BatchHistogram:
    """A histogram whose observations come as arrays (one per batch), one series per label value."""

    buckets: tuple[float, ...]
    series: dict[str, _Series] = field(default_factory=dict)

    def observe_many(self, values: np.ndarray, label: str) -> None:
        """Observe every finite value of an array at once."""
        import numpy as np

        values = np.asarray(values, dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            return
        series = self.series.get(label)
        if series is None:
            series = self.series[label] = _Series([0] * (len(self.buckets) + 1))
        # side="left": a value equal to a bound counts in that bucket (le is "less or equal").
        index = np.searchsorted(np.asarray(self.buckets), values, side="left")
        for bucket, count in enumerate(np.bincount(index, minlength=len(series.counts))):
            series.counts[bucket] += int(count)
        series.total += float(values.sum())

    def count(self, label: str) -> int:
        series = self.series.get(label)
        return sum(series.counts) if series else 0


class _PredictionCollector:
    """Exports the prediction histograms as one family."""

    def __init__(self, name: str, histograms: tuple[BatchHistogram, ...], lock: threading.Lock) -> None:
        self.name = name
        self.histograms = histograms
        self.lock = lock

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import HistogramMetricFamily

        family = HistogramMetricFamily(self.name, "Predicted values, by output column.", labels=(OUTPUT_LABEL,))
        with self.lock:
            for histogram in self.histograms:
                for label, series in sorted(histogram.series.items()):
                    cumulative, buckets = 0, []
                    for bound, count in zip((*histogram.buckets, math.inf), series.counts, strict=True):
                        cumulative += count
                        buckets.append(("+Inf" if math.isinf(bound) else repr(float(bound)), cumulative))
                    family.add_metric([label], buckets, series.total)
        yield family

    def describe(self) -> Iterator[Any]:
        return iter(())  # collected on every scrape, never checked for name clashes up front


PRESET_STATUSES = (200, 400, 500)  # the statuses alerts and canary analyses count


class ServerMetrics:
    """The metrics one model server exports (one registry per server)."""

    def __init__(self, names: dict[str, str] | None = None) -> None:
        import prometheus_client
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        prometheus_client.disable_created_metrics()  # `_created` series double the output, nobody queries them
        name = {**SERVER_METRICS, **(names or {})}
        self.registry = registry = CollectorRegistry(auto_describe=True)
        prometheus_client.ProcessCollector(registry=registry)
        prometheus_client.GCCollector(registry=registry)
        prometheus_client.PlatformCollector(registry=registry)
        self.in_flight = Gauge(
            name["requests_in_flight"], "Prediction requests being answered (KEDA scales on it).", registry=registry
        )
        self.duration = Histogram(
            name["request_duration_seconds"],
            "Prediction request latency, by HTTP status.",
            (STATUS_LABEL,),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.requests = Counter(
            name["requests_total"], "Prediction requests answered, by HTTP status.", (STATUS_LABEL,), registry=registry
        )
        self.queue = Histogram(
            name["queue_seconds"],
            "Time a checked request waited for its model call to start.",
            buckets=QUEUE_BUCKETS,
            registry=registry,
        )
        self.model_calls = Counter(
            name["model_calls_total"], "Calls of the model (one per micro-batch).", registry=registry
        )
        self.batch_rows = Histogram(
            name["batch_rows"], "Rows per model call.", buckets=BATCH_ROW_BUCKETS, registry=registry
        )
        self.model_info = Gauge(
            name["model_info"],
            "The served model (always 1).",
            ("model", "version", "alias", "run_id", "uri"),
            registry=registry,
        )
        self.model_is_champion = Gauge(
            name["model_is_champion"],
            "1 while the served version is the registry's champion, 0 while it is not (by served version).",
            ("version",),
            registry=registry,
        )
        self.log_dropped = Counter(
            name["request_log_dropped_total"],
            "Sampled rows the prediction log dropped: its writer fell behind, or the store refused them.",
            registry=registry,
        )
        self.log_written = Counter(
            name["request_log_written_total"], "Sampled rows written to the prediction log.", registry=registry
        )
        self.champion: tuple[str, bool] | None = None  # (served version, is it the champion) last exported
        self._lock = threading.Lock()
        self.probabilities = BatchHistogram(PROBABILITY_BUCKETS)
        self.values = BatchHistogram(VALUE_BUCKETS)
        registry.register(_PredictionCollector(name["predictions"], (self.probabilities, self.values), self._lock))
        # Children by status, so a request does not look its labels up.
        self._durations: dict[int, Any] = {}
        self._counts: dict[int, Any] = {}
        # Series that exist at 0 from the start: `rate()` over a series born at its first
        # increment misses that increment, so the first burst of errors would not alert.
        for status in PRESET_STATUSES:
            self._child(status)

    def _child(self, status: int) -> None:
        self._durations[status] = self.duration.labels(str(status))
        self._counts[status] = self.requests.labels(str(status))

    def set_champion(self, version: str, is_champion: bool) -> None:
        """Whether `version`, the one served now, is the champion (one series: the served version's)."""
        self.model_is_champion.clear()
        self.model_is_champion.labels(version).set(1 if is_champion else 0)
        self.champion = (version, is_champion)

    def observe_request(self, status: int, seconds: float) -> None:
        """One answered prediction request."""
        if status not in self._durations:
            self._child(status)
        self._durations[status].observe(seconds)
        self._counts[status].inc()

    def observe_batch(self, rows: int, queued_seconds: list[float]) -> None:
        """One model call: its rows, and how long each of its requests waited for it."""
        self.model_calls.inc()
        self.batch_rows.observe(rows)
        for seconds in queued_seconds:
            self.queue.observe(seconds)

    def observe_predictions(self, column: str, values: np.ndarray) -> None:
        """A batch of one output column: probabilities on [0, 1] buckets, other values on wide ones."""
        histogram = self.probabilities if column.startswith("probability") else self.values
        with self._lock:
            histogram.observe_many(values, column)

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
