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
        [*RUNTIME_CLI, *args, "--model-uri", "models:/toy-model@nope"],
        cwd=root,
        env=runtime_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "models:/toy-model@nope:" in errors[0]
