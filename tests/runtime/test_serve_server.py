"""`mlc-runtime serve`: the real server process on a model trained and registered by the test."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from served_project import (
    CONFIG,
    RUNTIME_CLI,
    free_port,
    get,
    metric_value,
    post,
    rows_csv,
    running_server,
    runtime_env,
    toy_rows,
    tracking_uri,
    train_served_project,
    wait_until,
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("served")
    return root, train_served_project(root)


@pytest.fixture(scope="module")
def server(project):
    root, config = project
    with running_server(root, config) as running:
        yield running


@pytest.fixture(scope="module")
def reference_model(project):
    root, _ = project
    mlflow.set_tracking_uri(tracking_uri(root))
    return mlflow.pyfunc.load_model("models:/toy-model@champion")


def expected(model, rows: list[dict]) -> list[dict]:
    return model.predict(pd.DataFrame(rows)).to_dict(orient="records")


def invoke(server, payload: object) -> tuple[int, dict]:
    return post(server.url + "/invocations", json.dumps(payload))


def test_predictions_equal_the_pyfunc_in_every_mlflow_format(server, reference_model) -> None:
    rows = toy_rows(20, seed=7)
    want = expected(reference_model, rows)
    columns = ["x", "n", "color"]
    bodies = {
        "dataframe_records": {"dataframe_records": rows},
        "dataframe_split": {"dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}},
        "instances": {"instances": rows},
        "inputs (columns)": {"inputs": {c: [r[c] for r in rows] for c in columns}},
        "extra columns and params": {"dataframe_records": [{**r, "id": i} for i, r in enumerate(rows)], "params": {}},
    }
    for name, body in bodies.items():
        status, answer = invoke(server, body)
        assert (status, answer) == (200, {"predictions": want}), name
    status, answer = post(server.url + "/invocations", rows_csv(rows), "text/csv")
    assert (status, answer) == (200, {"predictions": want})
    # Numbers as text and ints for a float are read by the contract's parser, as in training data.
    status, answer = invoke(
        server, {"dataframe_records": [{"x": str(rows[0]["x"]), "n": rows[0]["n"], "color": rows[0]["color"]}]}
    )
    assert (status, answer["predictions"]) == (200, want[:1])


BAD_REQUESTS = [
    (
        {"dataframe_records": [{"n": 1, "color": "red"}]},
        "column 'x': missing feature (valid: a number in [0, 10], not null)",
        None,
    ),
    (
        {"dataframe_records": [{"x": 1, "color": "red"}, {"x": "abc", "color": "red"}]},
        "row 1, column 'x': 'abc' is not a float",
        1,
    ),
    (
        {"dataframe_records": [{"x": 12.5, "color": "red"}]},
        "row 0, column 'x': 12.5 is above max 10 (valid: a number in [0, 10], not null)",
        0,
    ),
    ({"dataframe_records": [{"x": 1, "n": -2, "color": "red"}]}, "row 0, column 'n': -2 is below min 0", 0),
    ({"dataframe_records": [{"x": 1, "n": 1.5, "color": "red"}]}, "row 0, column 'n': 1.5 is not an integer", 0),
    (
        {"dataframe_records": [{"x": 1, "color": "red"}, {"x": None, "color": "red"}]},
        "row 1, column 'x': None is null, and the feature is not nullable",
        1,
    ),
    (
        {"dataframe_records": [{"x": 1, "color": "green"}]},
        "row 0, column 'color': 'green' is not in the closed set of values (valid: one of red, blue, not null)",
        0,
    ),
    (
        {"dataframe_records": [{"x": 1, "color": {"nested": True}}]},
        "row 0, column 'color': '{\"nested\": true}' is not in the closed set",
        0,
    ),
    ({"dataframe_records": [{"x": True, "color": "red"}]}, "row 0, column 'x': True is not a float", 0),
]


@pytest.mark.parametrize(("body", "message", "row"), BAD_REQUESTS)
def test_contract_violations_are_400_naming_row_column_and_what_is_valid(server, body, message, row) -> None:
    status, answer = invoke(server, body)
    assert status == 400
    assert answer["error_code"] == "BAD_REQUEST"
    assert answer["message"].startswith(message)
    assert answer["violations"][0]["row"] == row
    assert answer["violations"][0]["valid"]


def test_every_violation_is_counted_and_the_first_listed(server) -> None:
    rows = [{"x": 11, "n": -1, "color": "green"}] * 30
    status, answer = invoke(server, {"dataframe_records": rows})
    assert status == 400
    assert answer["violation_count"] == 90
    assert len(answer["violations"]) == 20
    assert answer["message"].endswith("(and 89 more)")


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        ("{not json", "application/json", 400, "malformed JSON"),
        ("[1, 2]", "application/json", 400, "expected a JSON object with one of dataframe_split"),
        ('{"rows": []}', "application/json", 400, "expected exactly one of dataframe_split"),
        ('{"dataframe_records": [], "instances": []}', "application/json", 400, "expected exactly one of"),
        ('{"dataframe_records": [1, 2]}', "application/json", 400, "dataframe_records: row 0 is int"),
        ('{"dataframe_records": []}', "application/json", 400, "column 'x': missing feature"),
        (
            '{"dataframe_split": {"columns": ["x"], "data": [[1, 2]]}}',
            "application/json",
            400,
            "dataframe_split: row 0",
        ),
        ('{"inputs": {"x": [1, 2], "color": ["red"]}}', "application/json", 400, "inputs: the columns have different"),
        ('{"instances": [[1, 2, "red"]]}', "application/json", 400, "instances: row 0 is list"),
        ("", "text/csv", 400, "empty CSV body"),
        ("x,n,color\n1,2,red,extra\n", "text/csv", 400, "malformed CSV"),
        ("x=1", "application/x-www-form-urlencoded", 415, "content type"),
        ('{"inputs": {"x": [' + "9" * 5000 + "]}}", "application/json", 400, "a number has more digits"),
        ("[" * 100_000 + "]" * 100_000, "application/json", 400, "nests 100000 levels deep; at most 32 are read"),
        ('{"inputs": {"x": [1], "n": [1], "color": ["\\ud800"]}}', "application/json", 400, "lone surrogate"),
        ("x,x,n,color\n1,2,1,red\n", "text/csv", 400, "CSV header: column 'x' appears 2 times"),
        ('{"dataframe_split": {"columns": ["x", "x"], "data": [[1, 2]]}}', "application/json", 400, "appears 2 times"),
        (",".join(f"c{i}" for i in range(5000)) + "\n", "text/csv", 400, "the request has 5000 columns"),
    ],
)
def test_malformed_requests_are_4xx_never_500(server, body, content_type, status, message) -> None:
    got, answer = post(server.url + "/invocations", body, content_type)
    assert got == status
    assert message in answer["message"]


def test_probes_and_metrics(server) -> None:
    assert get(server.url + "/ping") == (200, b"ok\n")
    status, ready = get(server.url + "/ready")
    assert status == 200
    assert json.loads(ready) | {"run_id": ""} == {
        "status": "ready",
        "model": "toy-model",
        "version": "1",
        "alias": "champion",
        "run_id": "",
        "uri": "models:/toy-model/1",
    }
    before = get(server.url + "/metrics")[1].decode()
    assert invoke(server, {"dataframe_records": toy_rows(3, seed=1)})[0] == 200
    assert invoke(server, {"dataframe_records": [{"x": -1, "color": "red"}]})[0] == 400
    after = get(server.url + "/metrics")[1].decode()

    def moved(name: str, labels: str = "") -> float:
        return metric_value(after, name, labels) - metric_value(before, name, labels)

    assert moved("mlc_requests_total", 'code="200"') == 1
    assert moved("mlc_requests_total", 'code="400"') == 1
    assert moved("mlc_request_duration_seconds_count", 'code="200"') == 1
    assert moved("mlc_predictions_count", 'output="probability"') == 3
    assert (
        0
        < metric_value(after, "mlc_predictions_sum", 'output="probability"')
        <= metric_value(after, "mlc_predictions_count", 'output="probability"')
    )
    assert metric_value(after, "mlc_requests_in_flight") == 0
    assert "# TYPE mlc_request_duration_seconds histogram" in after
    info = [line for line in after.splitlines() if line.startswith("mlc_model_info{")]
    assert len(info) == 1 and 'version="1"' in info[0] and 'model="toy-model"' in info[0] and info[0].endswith(" 1.0")


def test_ready_is_503_until_the_model_is_loaded(project) -> None:
    root, config = project
    with running_server(root, config, ready=False, TOY_LOAD_SLEEP="3") as server:
        status, body = get(server.url + "/ready")
        assert (status, json.loads(body)) == (503, {"status": "loading"})
        assert get(server.url + "/v2/health/live")[0] == 200  # alive while loading
        assert get(server.url + "/ping")[0] == 503  # MLflow's meaning: 200 once the model is loaded
        status, answer = invoke(server, {"dataframe_records": toy_rows(1, seed=1)})
        assert status == 503 and "not loaded yet" in answer["message"]
        wait_until(lambda: get(server.url + "/ready")[0] == 200, 60, "/ready", server.process)


def test_concurrent_requests_are_predicted_in_fewer_model_calls(project, reference_model) -> None:
    root, config = project
    rows = toy_rows(24, seed=11)
    want = expected(reference_model, rows)
    # A slow model: requests arriving while it predicts queue up and share the next call.
    with running_server(
        root, config, "--max-batch-size", "8", "--max-wait-ms", "50", TOY_PREDICT_SLEEP="0.2"
    ) as server:
        calls_before = metric_value(get(server.url + "/metrics")[1].decode(), "mlc_model_calls_total")
        peak = []

        def watch() -> None:
            for _ in range(100):
                peak.append(metric_value(get(server.url + "/metrics")[1].decode(), "mlc_requests_in_flight"))
                time.sleep(0.02)

        watcher = threading.Thread(target=watch)
        watcher.start()
        with ThreadPoolExecutor(max_workers=len(rows)) as pool:
            answers = list(pool.map(lambda row: invoke(server, {"dataframe_records": [row]}), rows))
        watcher.join()
        metrics = get(server.url + "/metrics")[1].decode()
    for (status, answer), row_expected in zip(answers, want, strict=True):
        assert status == 200
        assert answer["predictions"][0]["prediction"] == row_expected["prediction"]
        assert answer["predictions"][0]["probability"] == pytest.approx(row_expected["probability"], rel=1e-6)
    calls = metric_value(metrics, "mlc_model_calls_total") - calls_before
    assert 3 <= calls < len(rows)  # at most 8 rows a call: at least 3 calls, and far fewer than 24
    assert metric_value(metrics, "mlc_batch_rows_bucket", 'le="8.0"') == metric_value(metrics, "mlc_batch_rows_count")
    assert max(peak) > 1  # the in-flight gauge KEDA scales on saw the queue


def test_a_model_error_is_a_short_500_and_counted(project) -> None:
    root, config = project
    with running_server(root, config, TOY_PREDICT_FAIL="1") as server:
        status, answer = invoke(server, {"dataframe_records": toy_rows(2, seed=1)})
        assert status == 500
        assert answer["message"] == "prediction failed: RuntimeError: toy model exploded"
        assert metric_value(get(server.url + "/metrics")[1].decode(), "mlc_requests_total", 'code="500"') == 1
        assert get(server.url + "/ping")[0] == 200
    assert "toy model exploded" in server.log()  # the traceback is in the log


def test_sigterm_finishes_in_flight_requests_then_stops(project) -> None:
    root, config = project
    with running_server(root, config, TOY_PREDICT_SLEEP="1.5") as server:
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(invoke, server, {"dataframe_records": toy_rows(2, seed=1)})
            wait_until(
                lambda: metric_value(get(server.url + "/metrics")[1].decode(), "mlc_requests_in_flight") == 1,
                10,
                "the request in flight",
            )
            server.process.send_signal(signal.SIGTERM)
            status, answer = pending.result(timeout=30)
        assert status == 200 and len(answer["predictions"]) == 2
        assert server.process.wait(timeout=30) == -signal.SIGTERM  # uvicorn re-raises it once done
        assert "Finished server process" in server.log()


def test_a_model_that_does_not_load_exits_1_with_one_clear_line(project) -> None:
    root, config = project
    args = ["serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(free_port())]
    done = subprocess.run(
        [*RUNTIME_CLI, *args, "--model-uri", "models:/toy-model@nope", "--watch-seconds", "0"],
        cwd=root,
        env=runtime_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "models:/toy-model@nope:" in errors[0]


# --- the fast path, the Open Inference Protocol, request ids, logging, abuse ---------------------


def test_the_fast_path_predicts_exactly_what_the_pyfunc_predicts(project, reference_model) -> None:
    """What the server computes for a model mlc registered, without MLflow, equals pyfunc.predict bit for bit."""
    from mlc.runtime.contract.config import Contract
    from mlc.runtime.contract_model import ContractModelParts
    from mlc.runtime.serve.model_fetch import fetch_model
    from mlc.runtime.serve.payload import RequestColumns, columns_table
    from mlc.runtime.serve.scoring import ContractScorer
    from mlc.runtime.serve.served_model import load_served_model
    from mlc.runtime.serve.validation import ContractCheck

    root, _ = project
    directory = root / "fetched-for-fast-path"
    fetch_model("models:/toy-model@champion", directory, tracking_uri(root))
    parts = load_served_model(directory)
    assert isinstance(parts, ContractModelParts)  # loaded from the directory, not through MLflow
    scorer = ContractScorer(parts)
    check = ContractCheck(Contract.model_validate(CONFIG["contract"]))
    rows = toy_rows(60, seed=3)
    want = reference_model.predict(pd.DataFrame(rows))

    def request(part: list[dict]) -> RequestColumns:
        return RequestColumns({name: [row[name] for row in part] for name in ("x", "n", "color")}, len(part))

    whole = check.fast_checked_rows(request(rows))
    assert whole is not None
    predictions, _ = scorer.score_batch([whole])
    assert predictions[0].columns == {name: want[name].tolist() for name in want.columns}
    # Three requests predicted in one batch: each gets its rows of the pyfunc's answer on all of them.
    pieces = [check.fast_checked_rows(request(rows[a:b])) for a, b in ((0, 1), (1, 25), (25, 60))]
    batched, _ = scorer.score_batch(pieces)
    assert [value for part in batched for value in part.columns["probability"]] == want["probability"].tolist()
    # Numbers as text take the arrow path; the predictions are the same.
    as_text = request([{**row, "x": str(row["x"])} for row in rows])
    assert check.fast_checked_rows(as_text) is None
    slow, _ = scorer.score_batch([check.checked_table(columns_table(as_text))])
    assert slow[0].columns == predictions[0].columns


def test_open_inference_protocol_through_tritonclient(server, reference_model) -> None:
    import numpy as np
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("toy-model")
    assert not client.is_model_ready("other-model")
    metadata = client.get_model_metadata("toy-model")
    assert metadata["inputs"] == [
        {"name": "x", "datatype": "FP64", "shape": [-1]},
        {"name": "n", "datatype": "INT64", "shape": [-1]},
        {"name": "color", "datatype": "BYTES", "shape": [-1]},
    ]
    assert [output["name"] for output in metadata["outputs"]] == ["prediction", "probability"]
    assert metadata["versions"] == ["1"]

    rows = toy_rows(12, seed=4)
    want = reference_model.predict(pd.DataFrame(rows))

    def inputs(binary: bool) -> list:
        x = triton.InferInput("x", [len(rows)], "FP64")
        x.set_data_from_numpy(np.array([row["x"] for row in rows]), binary_data=binary)
        # n is nullable: sent as FP64, a missing value as NaN (the contract reads NaN as missing).
        n = triton.InferInput("n", [len(rows), 1], "FP64")
        values = [[np.nan if row["n"] is None else row["n"]] for row in rows]
        n.set_data_from_numpy(np.array(values, dtype=np.float64), binary_data=True)
        color = triton.InferInput("color", [len(rows)], "BYTES")
        color.set_data_from_numpy(np.array([row["color"] for row in rows], dtype=object), binary_data=binary)
        return [x, n, color]

    for binary in (True, False):
        outputs = [triton.InferRequestedOutput(name, binary_data=binary) for name in ("prediction", "probability")]
        result = client.infer("toy-model", inputs(binary), outputs=outputs, request_id="r-1")
        assert result.get_response()["id"] == "r-1"
        assert result.as_numpy("prediction").tolist() == want["prediction"].tolist()
        assert result.as_numpy("probability").tolist() == want["probability"].tolist()  # exactly: same computation
    result = client.infer("toy-model", inputs(True))  # no outputs named: all of them, binary
    assert result.as_numpy("probability").tolist() == want["probability"].tolist()

    bad = triton.InferInput("x", [1], "FP64")
    bad.set_data_from_numpy(np.array([12.5]))
    color = triton.InferInput("color", [1], "BYTES")
    color.set_data_from_numpy(np.array(["red"], dtype=object))
    with pytest.raises(InferenceServerException, match=r"row 0, column 'x': 12.5 is above max 10"):
        client.infer("toy-model", [bad, color])
    with pytest.raises(InferenceServerException, match="unknown model"):
        client.infer("other-model", [bad, color])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [1]}]}', "holds 2 values, data has 1"),
        ('{"inputs": [{"name": "x", "shape": [1], "datatype": "FP99", "data": [1]}]}', "datatype 'FP99'"),
        ('{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}', "must be [rows]"),
        ('{"inputs": []}', "expected {"),
        ("[1]", "expected {"),
        ("{nope", "malformed JSON"),
    ],
)
def test_malformed_infer_requests_are_400_with_the_protocols_error_body(server, body, message) -> None:
    status, answer = post(server.url + "/v2/models/toy-model/infer", body)
    assert status == 400
    assert message in answer["error"]


def test_responses_carry_the_request_id(server) -> None:
    import urllib.request

    body = json.dumps({"dataframe_records": toy_rows(1, seed=2)}).encode()
    headers = {"Content-Type": "application/json", "X-Request-ID": "order-7431"}
    request = urllib.request.Request(server.url + "/invocations", data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["X-Request-ID"] == "order-7431"
    request = urllib.request.Request(server.url + "/invocations", data=body, headers=headers | {"X-Request-ID": ""})
    with urllib.request.urlopen(request, timeout=10) as response:
        made = response.headers["X-Request-ID"]
    assert len(made) == 32 and int(made, 16) >= 0


def test_sampled_logging_body_limit_and_a_thousand_connections(project) -> None:
    """One server with every request logged and a small body limit, under 1000 concurrent connections."""
    import asyncio

    import pyarrow.parquet as pq

    root, config = project
    log = root / "predictions"
    args = ("--log-sample-rate", "1", "--log-uri", str(log), "--log-flush-seconds", "0.2", "--max-body-mb", "0.05")
    with running_server(root, config, *args) as server:
        rows = toy_rows(3, seed=9)
        status, answer = invoke(server, {"dataframe_records": rows})
        assert status == 200
        wait_until(lambda: list(log.rglob("*.parquet")), 10, "the logged request")
        (written,) = log.rglob("*.parquet")
        assert written.parent.name.startswith("hour=") and written.parent.parent.name.startswith("date=")
        logged = pq.read_table(written).to_pylist()
        assert [record["row"] for record in logged] == [0, 1, 2]
        assert {record["request_id"] for record in logged} == {logged[0]["request_id"]}
        assert len(logged[0]["request_id"]) == 32 and logged[0]["source"] == "/invocations"
        assert [record["inputs"]["x"] for record in logged] == [row["x"] for row in rows]
        assert [record["outputs"]["probability"] for record in logged] == [
            p["probability"] for p in answer["predictions"]
        ]

        too_big = json.dumps({"dataframe_records": toy_rows(2000, seed=1)})
        assert len(too_big) > 0.05 * 1024 * 1024
        status, answer = post(server.url + "/invocations", too_big)
        assert status == 413 and answer["error_code"] == "PAYLOAD_TOO_LARGE"

        def resident_bytes() -> float:
            return metric_value(get(server.url + "/metrics")[1].decode(), "process_resident_memory_bytes")

        before = resident_bytes()
        host, port = server.url.removeprefix("http://").split(":")
        body = json.dumps({"dataframe_records": toy_rows(1, seed=5)}).encode()
        raw = (
            f"POST /invocations HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body

        async def one(idle: bool) -> int:
            reader, writer = await asyncio.open_connection(host, int(port))
            try:
                if idle:  # holds a connection open and sends nothing
                    await asyncio.sleep(1.0)
                    return 0
                writer.write(raw)
                await writer.drain()
                answer = await asyncio.wait_for(reader.read(), 60)
                return int(answer.split(b" ", 2)[1])
            finally:
                writer.close()

        async def crowd() -> list[int]:
            return await asyncio.gather(*(one(idle=i % 5 == 0) for i in range(1250)))

        statuses = asyncio.run(crowd())
        answered = [status for status in statuses if status]
        assert len(answered) == 1000 and set(answered) == {200}
        assert resident_bytes() - before < 150 * 1024 * 1024  # bounded: no per-connection growth to speak of
        assert invoke(server, {"dataframe_records": rows})[0] == 200  # still serving
