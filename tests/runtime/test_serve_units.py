"""Pure parts of serving: the micro-batcher's timing, request parsing, contract checks, metric text."""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mlc.runtime.contract.config import Contract, Feature
from mlc.runtime.serve.batching import MicroBatcher
from mlc.runtime.serve.metrics import ServerMetrics
from mlc.runtime.serve.payload import columns_table, parse_json_body, refuse_deep
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
    # Error series exist at 0 before the first error, so rate() sees the first burst.
    assert 'mlc_requests_total{code="500"} 0.0' in text
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


# --- the contract fast path: same verdicts and the same matrix as the arrow path -------------

WIDE = Contract(
    features={
        "x": Feature(type="float", min=-5, max=5),
        "n": Feature(type="int", min=0, nullable=True),
        "flag": Feature(type="bool", nullable=True),
        "plan": Feature(type="category", values=["a", "b"]),
        "region": Feature(type="category", nullable=True),  # an open set: unseen values encode as zeros
        "note": Feature(type="string", nullable=True),
    }
)

# Values a JSON body may carry for any feature: canonical ones, and what only the arrow path reads.
JSON_VALUES = [
    None,
    0,
    3,
    -7,
    2**60,
    1.5,
    -4.25,
    3.0,
    1e308,
    True,
    False,
    "a",
    "b",
    "c",
    "east",
    " 2 ",
    "1e1",
    "yes",
    [1],
]


@pytest.mark.parametrize("seed", range(40))
def test_the_fast_check_accepts_only_what_the_arrow_check_accepts_with_the_same_values(seed: int) -> None:
    import random

    from mlc.runtime.serve.payload import RequestColumns
    from mlc.runtime.serve.validation import ContractCheck

    rng = random.Random(seed)
    rows = rng.randint(1, 4)
    # Mostly valid rows (so the fast path is taken), with a random value here and there.
    valid = {
        "x": [1.0, -2, 4.5],
        "n": [0, 2, None],
        "flag": [True, False, None],
        "plan": ["a", "b"],
        "region": ["east", "west", None],
        "note": ["hi", None],
    }
    columns = {name: [rng.choice(choices) for _ in range(rows)] for name, choices in valid.items()}
    for _ in range(rng.randint(0, 2)):
        columns[rng.choice(list(columns))][rng.randrange(rows)] = rng.choice(JSON_VALUES)
    request = RequestColumns(columns, rows)
    check = ContractCheck(WIDE)
    fast = check.fast_checked_rows(request)
    try:
        slow = check.checked_table(columns_table(request))
    except InvalidRequest:
        slow = None
    if fast is not None:
        assert slow is not None, columns  # the fast path never lets through what the arrow check refuses
        for name in WIDE.features:
            assert [None if v is None else (float(v) if name in ("x", "n") else v) for v in fast.columns[name]] == (
                slow.columns[name]
            ), name


def test_the_encoder_computes_the_preprocessors_matrix_bit_for_bit() -> None:
    import random

    import numpy as np
    import pyarrow as pa
    import torch

    from mlc.runtime.contract_model import ContractModelParts
    from mlc.runtime.preprocessor import fit_preprocessor
    from mlc.runtime.serve.scoring import ContractScorer

    rng = random.Random(5)
    training = pa.table(
        {
            "x": [rng.uniform(-5, 5) for _ in range(50)],
            "n": [rng.randint(0, 9) for _ in range(50)],
            "flag": [rng.random() < 0.3 for _ in range(50)],
            "plan": [rng.choice("ab") for _ in range(50)],
            "region": [rng.choice(["east", "west", "north"]) for _ in range(50)],
            "note": ["x"] * 50,
        }
    )
    preprocessor = fit_preprocessor(training, WIDE)
    scorer = ContractScorer(ContractModelParts(preprocessor, torch.nn.Linear(len(preprocessor.output_names), 1)))
    columns = {
        "x": [0.1, -4.999999, 3, 2.5e-7, 1 / 3],
        "n": [None, 4, 0, 7.0, None],
        "flag": [None, True, False, True, None],
        "plan": ["a", "b", "b", "a", "a"],
        "region": ["east", "south", None, "north", "west"],  # south: never seen in training
        "note": [None, "a", "b", None, "c"],
    }
    types = {
        "x": pa.float64(),
        "n": pa.float64(),
        "flag": pa.bool_(),
        "plan": pa.string(),
        "region": pa.string(),
        "note": pa.string(),
    }
    table = pa.table({name: pa.array(values, types[name]) for name, values in columns.items()})
    encoded = scorer.encode(columns, 5)
    assert encoded.dtype == np.float32
    assert encoded.tobytes() == preprocessor.transform(table).tobytes()


def test_serve_binds_every_interface_only_with_the_pods_config() -> None:
    from pathlib import Path

    from mlc.runtime.cli import default_serve_host

    assert default_serve_host(Path("/etc/mlc/runtime-config.json")) == "0.0.0.0"  # the compiled pods' mount
    assert default_serve_host(Path(".mlc/staging/runtime-config.json")) == "127.0.0.1"  # mlc run serve


def test_a_stuck_prediction_log_drops_rows_and_never_blocks(tmp_path) -> None:
    import threading

    from mlc.runtime.prediction_log.records import LoggedRequest
    from mlc.runtime.prediction_log.writer import LogFiles, PredictionLogWriter

    release = threading.Event()

    class StuckStore(LogFiles):
        """A store whose first write hangs until released: a writer that cannot keep up."""

        def write(self, requests, types):
            release.wait(10)
            return super().write(requests, types)

    dropped, written = [], []
    log = PredictionLogWriter(
        StuckStore(str(tmp_path / "log")),
        1.0,
        {},
        on_drop=dropped.append,
        on_written=written.append,
        max_pending_rows=6,
        flush_rows=1,
        flush_seconds=0.05,
    )
    log.start()
    started = time.monotonic()
    for index in range(10):
        log.submit(LoggedRequest(str(index), "/invocations", "m", "1", 2, {"x": [1.0, 2.0]}, {"prediction": [0, 1]}))
    assert time.monotonic() - started < 0.5  # submitting never waited for the store
    # 6 rows wait at most (the writer may have taken one request into its stuck write): the rest is dropped, counted
    assert 12 <= sum(dropped) <= 14
    release.set()
    log.stop()
    assert sum(written) + sum(dropped) == 20
    assert sorted(path.name.split("-")[0] for path in (tmp_path / "log").rglob("*.parquet"))


# --- malformed input: a 4xx, never a 5xx (the app in-process, a stub model) ---------------------

ANY_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.sampled_from(["a", "red", "blue", "1.5", "nan", "", "true"]),
    st.text(max_size=5),
)
ANY_JSON = st.recursive(
    ANY_SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)
COLUMNS = st.sampled_from(["x", "n", "color", "other"])


def _documents() -> st.SearchStrategy:
    row = st.dictionaries(COLUMNS, ANY_JSON, max_size=4)
    split = st.fixed_dictionaries(
        {"columns": st.lists(COLUMNS, max_size=4), "data": st.lists(st.lists(ANY_JSON, max_size=4), max_size=3)}
    )
    tensor = st.fixed_dictionaries(
        {
            "name": COLUMNS,
            "shape": st.lists(st.integers(min_value=-1, max_value=3), min_size=0, max_size=2),
            "datatype": st.sampled_from(["FP64", "INT64", "BOOL", "BYTES", "FP16", "nope"]),
            "data": st.lists(ANY_JSON, max_size=3),
        }
    )
    return st.one_of(
        st.fixed_dictionaries({"dataframe_split": split | ANY_JSON}),
        st.fixed_dictionaries({"dataframe_records": st.lists(row | ANY_JSON, max_size=3)}),
        st.fixed_dictionaries(
            {"inputs": st.dictionaries(COLUMNS, ANY_JSON, max_size=3) | st.lists(tensor, max_size=3)}
        ),
        st.fixed_dictionaries({"instances": st.lists(row, max_size=3)}),
        ANY_JSON,
    )


class _StubScorer:
    """Predicts 0.5 for every row, like a model that never fails."""

    outputs = (("prediction", "int"), ("probability", "float"))

    def score_batch(self, batch):
        from mlc.runtime.serve.scoring import Predictions

        parts = [Predictions({"prediction": [0] * item.rows, "probability": [0.5] * item.rows}) for item in batch]
        return parts, {}


def _call(app, method: str, path: str, body: bytes, content_type: bytes = b"application/json") -> int:
    async def scenario() -> int:
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        sent: list[dict] = []

        async def receive():
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": method, "path": path, "headers": [(b"content-type", content_type)]}
        app.batcher = MicroBatcher(app._score_batch, _run_now, 256, 1.0)
        app.batcher.start()
        try:
            await app(scope, receive, send)
        finally:
            await app.batcher.stop()
        return sent[0]["status"]

    return asyncio.run(scenario())


async def _run_now(function, *args):
    return function(*args)


@settings(max_examples=300, deadline=None)
@given(document=_documents(), endpoint=st.sampled_from(["/invocations", "/v2/models/toy/infer"]))
# Integers past float64's exact range (2**53): found by this test in CI, answered 500.
@example(document={"inputs": {"x": 9007199254740993}}, endpoint="/invocations")
@example(document={"dataframe_records": [{"x": 2**63 - 1, "n": 2**63 - 1}]}, endpoint="/invocations")
def test_malformed_documents_are_4xx_never_5xx(document, endpoint) -> None:
    import json

    from mlc.runtime.contract.config import Contract as RuntimeContract
    from mlc.runtime.serve.app import ModelServer, ServeSettings
    from mlc.runtime.serve.served_model import ModelInfo

    contract = RuntimeContract.model_validate(
        {
            "features": {
                "x": {"type": "float", "min": 0, "max": 10},
                "n": {"type": "int", "min": 0, "nullable": True},
                "color": {"type": "category", "values": ["red", "blue"]},
            }
        }
    )
    app = ModelServer(ServeSettings(model_uri="unused", tracking_uri="", contract=contract, model_name="toy"))
    app.scorer = _StubScorer()
    app.info = ModelInfo("toy", "1", "champion", "", "models:/toy/1")
    status = _call(app, "POST", endpoint, json.dumps(document).encode())
    assert status in (200, 400), (status, document)


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        (b"[[[[]]]]", 4),
        (b'{"a": [{"b": [1]}]}', 4),
        (b'["[[[[[[[", {"a": "\\\\"}, "\\\\\\"[[[[["]', 2),  # brackets in strings, escaped backslashes and quotes
        (b'[{"a": [{"b": [1]}]}, "]]]]]]]]]"]', 5),
        (b'[[[[[[ "unterminated [[[[[[[[[[', 6),  # the rest of an unended string is not structure
    ],
)
def test_json_depth_is_counted_on_the_raw_body_exactly(body: bytes, depth: int) -> None:
    refuse_deep(body, depth)
    with pytest.raises(InvalidRequest, match=f"nests {depth} levels deep; at most {depth - 1} are read"):
        refuse_deep(body, depth - 1)
