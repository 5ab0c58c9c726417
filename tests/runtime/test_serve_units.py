"""Pure parts of serving: the micro-batcher's timing, request parsing, contract checks, metric text."""

from __future__ import annotations

import asyncio
import time

import pytest

from mlc.runtime.contract.config import Contract, Feature
from mlc.runtime.serve.batching import MicroBatcher
from mlc.runtime.serve.metrics import ServerMetrics
from mlc.runtime.serve.payload import columns_table, parse_json_body
from mlc.runtime.serve.validation import InvalidRequest, validate_rows


def batcher_with_calls(max_rows: int, max_wait_ms: float) -> tuple[MicroBatcher, list[list[int]]]:
    calls: list[list[int]] = []

    def predict(frames: list[list[int]]) -> list[list[int]]:
        calls.append([len(frame) for frame in frames])
        return [[value * 2 for value in frame] for frame in frames]

    async def run_now(function, *args):
        return function(*args)

    return MicroBatcher(predict, run_now, max_rows, max_wait_ms), calls


def test_a_lone_request_is_not_delayed() -> None:
    async def scenario() -> float:
        batcher, _ = batcher_with_calls(64, max_wait_ms=500)
        batcher.start()
        started = time.monotonic()
        assert await batcher.submit([1, 2], 2) == [2, 4]
        await batcher.stop()
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 0.1  # nobody else on the way: no waiting for company


def test_waits_at_most_max_wait_for_announced_requests() -> None:
    async def scenario() -> float:
        batcher, _ = batcher_with_calls(64, max_wait_ms=100)
        batcher.start()
        batcher.announce()  # a request that never arrives
        started = time.monotonic()
        await batcher.submit([1], 1)
        await batcher.stop()
        return time.monotonic() - started

    assert 0.09 <= asyncio.run(scenario()) < 0.5


def test_concurrent_requests_share_calls_up_to_max_rows() -> None:
    async def scenario() -> list[list[int]]:
        batcher, calls = batcher_with_calls(4, max_wait_ms=50)
        batcher.start()
        for _ in range(10):
            batcher.announce()

        async def request(value: int) -> list[int]:
            await asyncio.sleep(0.001 * value)
            batcher.settle()
            return await batcher.submit([value], 1)

        answers = await asyncio.gather(*(request(i) for i in range(10)))
        await batcher.stop()
        assert answers == [[2 * i] for i in range(10)]
        return calls

    calls = asyncio.run(scenario())
    assert sum(map(len, calls)) == 10 and len(calls) < 10 and max(map(len, calls)) <= 4


def test_a_failing_batch_is_retried_per_request() -> None:
    def predict(frames):
        if any("bad" in frame for frame in frames):
            raise ValueError("bad row")
        return frames

    async def run_now(function, *args):
        return function(*args)

    async def scenario():
        batcher = MicroBatcher(predict, run_now, 8, 20)
        batcher.start()
        batcher.announce()
        batcher.announce()
        batcher.settle()
        good = asyncio.ensure_future(batcher.submit(["good"], 1))
        batcher.settle()
        bad = asyncio.ensure_future(batcher.submit(["bad"], 1))
        results = await asyncio.gather(good, bad, return_exceptions=True)
        await batcher.stop()
        return results

    good, bad = asyncio.run(scenario())
    assert good == ["good"] and isinstance(bad, ValueError)


CONTRACT = Contract(features={"x": Feature(type="float", min=0, max=1), "c": Feature(type="category", values=["a"])})


def test_mixed_json_types_are_read_by_the_contract_parser() -> None:
    table = columns_table(parse_json_body(b'{"dataframe_records": [{"x": 1, "c": "a"}, {"x": "0.5", "c": "a"}]}'))
    assert validate_rows(table, CONTRACT).column("x").to_pylist() == [1.0, 0.5]
    with pytest.raises(InvalidRequest, match=r"row 1, column 'x': 'nope' is not a float"):
        validate_rows(columns_table(parse_json_body(b'{"inputs": {"x": [0.5, "nope"], "c": ["a", "a"]}}')), CONTRACT)


def test_metrics_text_is_prometheus_exposition() -> None:
    import numpy as np
    from prometheus_client.parser import text_string_to_metric_families

    metrics = ServerMetrics({"requests_in_flight": "custom_in_flight"})
    metrics.observe_request(200, 0.003)
    metrics.observe_batch(3, [0.0002, 0.0004, 0.002])
    metrics.observe_predictions("probability", np.array([0.05, 0.5, 1.0, np.nan]))
    metrics.observe_predictions("prediction", np.array([-3.0, 2.0]))
    text = metrics.render().decode()
    assert "custom_in_flight 0.0" in text
    assert 'mlc_request_duration_seconds_bucket{code="200",le="0.0025"} 0.0' in text
    assert 'mlc_request_duration_seconds_bucket{code="200",le="0.005"} 1.0' in text
    assert 'mlc_requests_total{code="200"} 1.0' in text
    assert "mlc_request_queue_seconds_count 3.0" in text
    assert 'mlc_batch_rows_bucket{le="4.0"} 1.0' in text
    assert 'mlc_predictions_bucket{le="0.05",output="probability"} 1.0' in text  # le is "less or equal"
    assert 'mlc_predictions_count{output="probability"} 3.0' in text  # NaN is not a prediction
    assert 'mlc_predictions_bucket{le="-1.0",output="prediction"} 1.0' in text  # values on the wide buckets
    assert text.count("# TYPE mlc_predictions histogram") == 1
    assert "process_resident_memory_bytes" in text and "python_gc_collections_total" in text
    # Prometheus' own parser reads every family.
    families = {family.name for family in text_string_to_metric_families(text)}
    assert {"mlc_requests", "mlc_predictions", "mlc_batch_rows", "custom_in_flight"} <= families
