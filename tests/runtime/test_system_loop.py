"""The closed monitoring loop on real components started here: moto's S3 server holding the
prediction log and the labels, the compiled model server logging to it, the compiled drift and
feedback CronJobs' commands, a real Pushgateway, and a real Prometheus evaluating the compiled
alert rules (scraping the Pushgateway as the compiled ServiceMonitor says).

The churn example's production environment is compiled with its prediction log on S3 and its
drift check reading the log (no `current.uri`: the default). Its champion is trained (one
epoch). Then, in order:

1. healthy requests, each with a caller's X-Request-ID, logged to S3;
2. the drift job on the log's window: no input drift, no prediction drift;
3. labels for 5 of every 6 logged requests, most of them contradicting the model: the feedback
   job says degraded (exit 1), pushes f1 and the label share, and the compiled live-f1 alert's
   expression holds in Prometheus (its `for:` is 30m: the alert is pending);
4. the same requests labelled as the model answered: the feedback job says ok, the expression
   no longer holds;
5. shifted requests: the drift job finds input and prediction drift, and the compiled
   prediction-drift alert fires.

A separate test serves with the log on a store that never answers, and on a bucket that does not
exist, and measures request latency against the same server logging nothing.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from compiled_system import alerts, became, documents, query, runtime, server_ready, substitute
from operator_scrape import pushgateway_endpoint, scrape_configs
from real_services import prometheus, prometheus_api, pushgateway, wait_for
from served_project import RUNTIME_CLI, free_port, get, metric_value, runtime_env

from mlc.compiler.pipeline import compile_spec_file

try:
    import boto3
    from moto.server import ThreadedMotoServer
except ImportError as error:  # moto[server] is in the dev extra
    pytest.skip(f"no S3 API to test against: {error}", allow_module_level=True)

REPO = Path(__file__).resolve().parents[2]
ENVIRONMENT = "production"
BUCKET = "loop"
LOG_URI = f"s3://{BUCKET}/predictions/"
LABELS_URI = f"s3://{BUCKET}/labels/"
HEALTHY_REQUESTS = 300
LABELLED_EVERY = 6  # every 6th request gets no label: the label share is 5/6


def loop_spec(text: str) -> str:
    """The churn example with its prediction log and labels on S3, drift reading the log (the default)."""
    text = text.replace("    uri: predictions/ ", f"    uri: {LOG_URI} ").replace(
        "      uri: labels/ ", f"      uri: {LABELS_URI} "
    )
    # The environment's own buckets, as the example names them, become the test's.
    text = text.replace(f"s3://acme-ml/churn/{ENVIRONMENT}/predictions/", LOG_URI)
    text = text.replace(f"s3://acme-ml/churn/{ENVIRONMENT}/labels/", LABELS_URI)
    start = text.index("      uri: data/live.csv")
    return text[:start] + text[text.index("\n", start) + 1 :]


@contextlib.contextmanager
def s3_server() -> Iterator[dict[str, str]]:
    """moto's S3 API on a free port, with the bucket; the environment a pod pointed at it gets."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        env = {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        client(env).create_bucket(Bucket=BUCKET)
        yield env
    finally:
        server.stop()


def client(env: dict[str, str]) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


def predict(server: str, row: dict[str, Any], request_id: str | None = None) -> tuple[int, dict[str, Any], str]:
    """One request: status, answer, and the X-Request-ID the server answered."""
    import urllib.error
    import urllib.request

    headers = {"Content-Type": "application/json"} | ({"X-Request-ID": request_id} if request_id else {})
    body = json.dumps({"dataframe_records": [row]}).encode()
    request = urllib.request.Request(server + "/invocations", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), response.headers["X-Request-ID"]
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers["X-Request-ID"]


def rows(path: Path, count: int) -> list[dict[str, Any]]:
    frame = pd.read_csv(path).drop(columns=["churned"]).head(count)
    return [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def logged_keys(env: dict[str, str]) -> list[str]:
    listing = client(env).list_objects_v2(Bucket=BUCKET, Prefix="predictions/").get("Contents", [])
    return [item["Key"] for item in listing]


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The compiled project, its champion, S3, the Pushgateway, Prometheus and the serving pod."""
    root = tmp_path_factory.mktemp("loop")
    project = root / "churn"
    shutil.copytree(REPO / "examples" / "churn", project)
    spec = project / "mlproject.yaml"
    spec.write_text(loop_spec(spec.read_text()))
    compiled = compile_spec_file(spec)
    assert compiled.ok, [d.render() for d in compiled.result.diagnostics]
    for artifact in compiled.artifacts:
        (project / artifact.path).parent.mkdir(parents=True, exist_ok=True)
        (project / artifact.path).write_bytes(artifact.content)
    manifests = documents(project, f"deploy/{ENVIRONMENT}")
    (config_map,) = [doc for key, doc in manifests.items() if key.startswith("ConfigMap/")]
    runtime_config = json.loads(config_map["data"]["runtime-config.json"])
    assert runtime_config["drift"]["current"] == {"uri": LOG_URI, "window_seconds": 86400, "prediction_log": True}
    assert runtime_config["prediction_log"] == {"uri": LOG_URI, "sample_rate": 1.0}
    runtime_config["train"]["params"]["epochs"] = 2
    # Training is not what this test is about: it reads the example's local data (the environment
    # names its bucket, tests/runtime/test_system_cluster_promotion.py trains from S3).
    for name, dataset in runtime_config["data"].items():
        dataset["uri"] = f"data/{name}.csv"
    runtime_config["train"]["checkpoint"]["uri"] = "checkpoints/"
    config = project / ".mlc" / ENVIRONMENT / "runtime-config.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps(runtime_config))
    tracking = {"MLFLOW_TRACKING_URI": f"sqlite:///{project}/.mlc/mlflow.db"}
    trained = runtime(project, ["mlc-runtime", "train", "--config", str(config)], tracking)
    assert trained.returncode == 0, trained.stderr[-3000:]
    from mlflow import MlflowClient

    MlflowClient(tracking["MLFLOW_TRACKING_URI"]).set_registered_model_alias("churn-classifier", "champion", "1")
    with contextlib.ExitStack() as stack:
        s3 = stack.enter_context(s3_server())
        env = {**tracking, **s3}
        gateway = stack.enter_context(pushgateway(root))
        gateway_endpoint = pushgateway_endpoint(gateway)
        monitor = manifests["ServiceMonitor/churn-drift-pushgateway"]
        rule_file = project / "deploy" / "tests" / ENVIRONMENT / "alerts.rules.yaml"
        url = stack.enter_context(
            prometheus(
                root,
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(rule_file)],
                    "scrape_configs": scrape_configs(monitor, [gateway_endpoint], "1s"),
                },
            )
        )
        container = manifests["Deployment/churn-serve"]["spec"]["template"]["spec"]["containers"][0]
        port = free_port()
        command = substitute(container["command"], {"--config": str(config), "--port": str(port)})
        # Files every half second instead of every 30 s, so the test need not wait.
        command += ["--host", "127.0.0.1", "--log-flush-seconds", "0.5"]
        with (root / "serve.log").open("w") as log:
            process = subprocess.Popen(
                [*RUNTIME_CLI, *command[1:]], cwd=project, env=runtime_env(**env), stdout=log, stderr=log
            )
        stack.callback(lambda: (process.terminate(), process.wait(timeout=30)))
        server = f"http://127.0.0.1:{port}"
        wait_for(lambda: server_ready(server), 120, "the serving pod")
        yield {
            "project": project,
            "config": config,
            "env": env,
            "s3": s3,
            "manifests": manifests,
            "server": server,
            "pushgateway": gateway,
            "prometheus": url,
            "rules": {rule["alert"]: rule for rule in yaml.safe_load(rule_file.read_text())["groups"][0]["rules"]},
            "root": root,
        }


def cronjob_command(loop: dict[str, Any], name: str) -> list[str]:
    """The compiled CronJob's command, against the local config and Pushgateway."""
    cronjob = loop["manifests"][f"CronJob/{name}"]
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    return substitute(container["command"], {"--config": str(loop["config"]), "--push": loop["pushgateway"]})


def write_labels(loop: dict[str, Any], labels: dict[str, int]) -> None:
    """The labels file, as a team's ETL would drop it (CSV: request_id, churned)."""
    body = "request_id,churned\n" + "".join(f"{request_id},{label}\n" for request_id, label in labels.items())
    client(loop["s3"]).put_object(Bucket=BUCKET, Key="labels/labels.csv", Body=body.encode())


@pytest.fixture(scope="module")
def observed(loop: dict[str, Any]) -> dict[str, Any]:
    """The scenario in order (see the module docstring), and what each step saw."""
    project, server, url, rules = loop["project"], loop["server"], loop["prometheus"], loop["rules"]
    seen: dict[str, Any] = {}

    # 1. Healthy traffic; the caller names each request.
    answers = {}
    for index, row in enumerate(rows(project / "data" / "live-healthy.csv", HEALTHY_REQUESTS)):
        status, answer, echoed = predict(server, row, f"order-{index:04d}")
        assert status == 200 and echoed == f"order-{index:04d}"
        answers[echoed] = answer["predictions"][0]["prediction"]
    seen["answers"] = answers
    wait_for(lambda: _logged_rows(loop) >= HEALTHY_REQUESTS, 30, "the logged requests on S3")
    seen["keys"] = logged_keys(loop["s3"])

    # 2. The drift CronJob on the log's window.
    seen["healthy_drift"] = runtime(project, [*cronjob_command(loop, "churn-drift"), "--on-drift", "none"], loop["env"])

    # 3. Labels arrive for 5 of every 6 requests; 80% of them contradict what the model said.
    feedback = [*cronjob_command(loop, "churn-feedback"), "--on-degrade", "none"]
    labelled = [request_id for i, request_id in enumerate(answers) if i % LABELLED_EVERY]
    write_labels(loop, {rid: (1 - answers[rid]) if i % 5 else answers[rid] for i, rid in enumerate(labelled)})
    seen["degraded"] = runtime(project, feedback, loop["env"])
    live = rules["ChurnProductionLiveF1BelowGate"]
    seen["live_rule"] = live
    seen["degraded_expression"] = became(lambda: query(url, live["expr"]) != [], 30)
    seen["degraded_alert"] = became(lambda: alerts(url).get(live["alert"]) == "pending", 30)
    seen["label_share"] = float(query(url, 'mlc_live_label_share{job="mlc-feedback"}')[0]["value"][1])
    seen["labelled_rows"] = float(query(url, 'mlc_live_labelled_rows{job="mlc-feedback"}')[0]["value"][1])

    # 4. The same requests labelled as the model answered: healthy.
    write_labels(loop, {rid: answers[rid] for rid in labelled})
    seen["good"] = runtime(project, feedback, loop["env"])
    seen["good_expression_gone"] = became(lambda: query(url, live["expr"]) == [], 30)
    # The alert's state changes at the rule's next evaluation, a moment after the expression does.
    became(lambda: live["alert"] not in alerts(url), 30)
    seen["alerts_after_good"] = alerts(url)

    # 5. Shifted inputs: new customers, short tenure, high charges, many support calls.
    shifted = {"tenure_months": 1.0, "monthly_charges": 180.0, "support_calls": 9, "plan": "basic", "region": "north"}
    before = _logged_rows(loop)
    for index in range(3 * HEALTHY_REQUESTS):
        status, _, _ = predict(server, {**shifted, "tenure_months": 1.0 + index % 3})
        assert status == 200
    wait_for(lambda: _logged_rows(loop) >= before + 3 * HEALTHY_REQUESTS, 30, "the shifted requests on S3")
    seen["shifted_drift"] = runtime(project, [*cronjob_command(loop, "churn-drift"), "--on-drift", "none"], loop["env"])
    prediction = rules["ChurnProductionPredictionDrift"]
    seen["prediction_rule"] = prediction
    seen["prediction_alert"] = became(lambda: alerts(url).get(prediction["alert"]) == "firing", 30)
    seen["psi"] = query(url, 'mlc_prediction_psi{job="mlc-drift",output="probability"}')
    return seen


def test_every_selector_of_the_loops_alerts_matches_a_series(observed, loop) -> None:
    """After the scenario: the feedback job's and the prediction-drift alerts' selectors (the ones
    test_system_monitoring.py cannot check: it runs no feedback job) each match a pushed series."""
    selector = re.compile(r"\b(mlc_[a-zA-Z0-9_]+)\{([^}]*)\}")
    expressions = [rule["expr"] for name, rule in loop["rules"].items() if "Live" in name or "Feedback" in name]
    expressions.append(observed["prediction_rule"]["expr"])
    selectors = sorted({f"{name}{{{labels}}}" for expr in expressions for name, labels in selector.findall(expr)})
    assert any('job="mlc-feedback"' in s for s in selectors) and any("mlc_prediction_psi" in s for s in selectors)
    url = loop["prometheus"]
    unmatched = [s for s in selectors if not prometheus_api(url, "/api/v1/series", **{"match[]": s, "start": "0"})]
    assert unmatched == [], f"selectors matching no series: {unmatched}"


def _logged_rows(loop: dict[str, Any]) -> int:
    metrics = get(loop["server"] + "/metrics")[1].decode()
    return int(metric_value(metrics, "mlc_request_log_written_total"))


def test_the_server_logs_requests_with_their_ids_to_s3_by_the_hour(observed, loop) -> None:
    keys = observed["keys"]  # every object under the log's prefix: files only, no folder markers
    assert keys and all(key.startswith("predictions/date=") and "/hour=" in key for key in keys)
    assert all(key.endswith(".parquet") for key in keys)
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    s3 = loop["s3"]
    filesystem = pafs.S3FileSystem(
        endpoint_override=s3["AWS_ENDPOINT_URL"], access_key="testing", secret_key="testing", region="us-east-1"
    )
    table = pq.ParquetDataset([f"{BUCKET}/{key}" for key in keys], filesystem=filesystem).read()
    ids = set(table.column("request_id").to_pylist())
    assert {f"order-{i:04d}" for i in range(HEALTHY_REQUESTS)} <= ids
    assert set(table.column("model_version").to_pylist()) == {"1"}
    assert table.schema.field("inputs").type.get_field_index("monthly_charges") >= 0


def test_healthy_data_drifts_neither_in_inputs_nor_in_predictions(observed) -> None:
    drift = observed["healthy_drift"]
    assert drift.returncode == 0, drift.stdout + drift.stderr
    assert f"{HEALTHY_REQUESTS} current rows" in drift.stdout
    assert "predictions: no drift" in drift.stdout
    assert "legend:" in drift.stdout and "why" in drift.stdout


def test_degraded_labels_fire_the_live_quality_alert_and_report_the_label_share(observed) -> None:
    degraded = observed["degraded"]
    assert degraded.returncode == 1, degraded.stdout + degraded.stderr  # 1: degraded
    labelled = HEALTHY_REQUESTS - len(range(0, HEALTHY_REQUESTS, LABELLED_EVERY))
    assert observed["labelled_rows"] == labelled
    assert observed["label_share"] == pytest.approx(labelled / HEALTHY_REQUESTS)
    assert "gate: f1 " in degraded.stdout and "DEGRADED" in degraded.stdout
    assert observed["degraded_expression"] and observed["degraded_alert"]


def test_good_labels_keep_it_quiet(observed) -> None:
    good = observed["good"]
    assert good.returncode == 0, good.stdout + good.stderr
    assert "live quality: ok" in good.stdout
    assert observed["good_expression_gone"]
    assert observed["live_rule"]["alert"] not in observed["alerts_after_good"]


def test_shifted_inputs_fire_the_prediction_drift_alert(observed) -> None:
    drift = observed["shifted_drift"]
    assert drift.returncode == 1, drift.stdout + drift.stderr
    assert "predictions: DRIFT" in drift.stdout
    assert observed["prediction_alert"]
    (sample,) = observed["psi"]
    assert float(sample["value"][1]) > 0.25


# --- a store that refuses or hangs never slows a prediction -------------------------------------


@contextlib.contextmanager
def silent_endpoint() -> Iterator[str]:
    """A TCP server that accepts connections and never answers: an object store that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        listener.close()


def interleaved_latencies(
    servers: dict[str, str], rounds: int, row: dict[str, Any], burst: int = 10
) -> dict[str, list[float]]:
    """Seconds per request to each server, taking turns in bursts (the order rotating each round),
    so each server's requests meet the same load on a shared machine: compared with each other,
    not with a number. Within a burst a request follows the previous answer at once, so work a
    server does after answering (handing the row to the log's writer) delays it if it blocks."""
    measured: dict[str, list[float]] = {name: [] for name in servers}
    names = list(servers)
    for turn in range(rounds):
        for name in names[turn % len(names) :] + names[: turn % len(names)]:
            for _ in range(burst):
                started = time.perf_counter()
                status, _, _ = predict(servers[name], row)
                measured[name].append(time.perf_counter() - started)
                assert status == 200
    return measured


def test_a_store_that_hangs_or_refuses_never_fails_or_slows_a_prediction(loop) -> None:
    project, config = loop["project"], loop["config"]
    row = rows(project / "data" / "live-healthy.csv", 1)[0]
    stores = {"off": None, "hanging": "s3://loop/predictions/", "refusing": "s3://no-such-bucket/predictions/"}
    servers: dict[str, str] = {}
    processes: list[subprocess.Popen] = []
    with silent_endpoint() as hanging, contextlib.ExitStack() as stack:
        for name, uri in stores.items():  # all three serving at once
            env = {**loop["env"], **({"AWS_ENDPOINT_URL": hanging} if name == "hanging" else {})}
            port = free_port()
            args = ["serve", "--config", str(config), "--port", str(port), "--host", "127.0.0.1"]
            args += ["--log-sample-rate", "0"] if uri is None else ["--log-uri", uri, "--log-sample-rate", "1"]
            args += [] if uri is None else ["--log-flush-seconds", "0.05"]  # every request logged, flushed often
            log = stack.enter_context((loop["root"] / f"serve-{name}.log").open("w"))
            process = subprocess.Popen(
                [*RUNTIME_CLI, *args], cwd=project, env=runtime_env(**env), stdout=log, stderr=log
            )
            processes.append(process)
            stack.callback(process.wait, timeout=30)
            stack.callback(process.terminate)
            servers[name] = f"http://127.0.0.1:{port}"
        for name, server in servers.items():
            wait_for(lambda server=server: server_ready(server), 120, f"the server ({name} log)")
        interleaved_latencies(servers, 5, row)  # warm
        measured = interleaved_latencies(servers, 30, row)
        refusing = servers["refusing"]
        wait_for(
            lambda: metric_value(get(refusing + "/metrics")[1].decode(), "mlc_request_log_dropped_total") >= 350,
            30,
            "every refused row to be counted",
        )
        dropped = {
            name: metric_value(get(server + "/metrics")[1].decode(), "mlc_request_log_dropped_total")
            for name, server in servers.items()
        }
    report = {
        name: {"p50_ms": statistics.median(v) * 1000, "p95_ms": sorted(v)[int(0.95 * len(v))] * 1000}
        for name, v in measured.items()
    }
    print(json.dumps(report, indent=2))
    base = report["off"]
    for name in ("hanging", "refusing"):
        # The same order as logging nothing, measured side by side under the same load (a writer
        # that blocked the event loop on the store would add the store's time to every request).
        assert report[name]["p50_ms"] <= base["p50_ms"] * 1.5 + 1, report
        assert report[name]["p95_ms"] <= base["p95_ms"] * 2 + 5, report
    assert dropped["refusing"] >= 350  # every logged row refused is counted (350 requests of one row)
