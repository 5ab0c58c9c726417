"""The compiled monitoring against its real counterparts: a real Prometheus loading the emitted
alert rules, scraping two real `mlc-runtime serve` pods and a real Pushgateway fed by the real
drift job, with the labels the Prometheus Operator adds from the compiled ServiceMonitors.

The churn example's production environment is compiled through the library API (it has a canary
rollout with its AnalysisTemplate and KEDA autoscaling on queue depth). Version 1 is trained here
(one epoch); version 2, a model that raises (real 500s), is registered and promoted to champion.
Each pod runs the compiled serve command with the version its template pins (the downward API's
value): the stable pod version 1, the canary pod version 2, as after a promotion patched the pin.
Then: every `mlc_*` selector of every alert, KEDA trigger and canary analysis matches a series;
healthy traffic and healthy data raise nothing; drifted data fires the data-drift alert; the 5xx
burst makes the error-rate alert's expression true and the canary analysis fail for version 2
and pass for version 1; each pod exports its version and whether it is the champion; with the
canary gone (an aborted rollout) the stable pod serves version 1 and the not-champion alert's
expression is true. Alert `for:` durations are long, so expressions are evaluated directly and
the alerts' `pending` state is read from `ALERTS`.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from compiled_system import alerts, became, documents, downward_env, query, runtime, server_ready, substitute
from object_store import ObjectStore, churn_bucket
from operator_scrape import Endpoint, pushgateway_endpoint, scrape_configs
from real_services import prometheus, prometheus_api, pushgateway, wait_for
from served_project import RUNTIME_CLI, free_port, post, runtime_env

from mlc.compiler.backends.kubernetes.serving import CANARY_HASH_LABEL
from mlc.compiler.pipeline import compile_spec_file
from mlc.runtime.contract import CONFIG_PATH, SERVED_VERSION_ANNOTATION

REPO = Path(__file__).resolve().parents[2]
ENVIRONMENT = "production"
STABLE_HASH, CANARY_HASH = "6d9f8b7c5d", "7c4b9d8f6a"  # rollouts-pod-template-hash of the two pods
PINNED = {STABLE_HASH: "1", CANARY_HASH: "2"}  # the model version each pod's template pins
POD_HASH = CANARY_HASH_LABEL.replace("-", "_")  # the pod label as Prometheus names it
SELECTOR = re.compile(r"\b(mlc_[a-zA-Z0-9_]+)\{([^}]*)\}")

BROKEN_MODEL = '''
import mlflow.pyfunc
from mlflow.models import set_model


class BrokenModel(mlflow.pyfunc.PythonModel):
    """Every prediction raises: the server answers 500."""

    def predict(self, context, model_input, params=None):
        raise RuntimeError("broken on purpose")


set_model(BrokenModel())
'''


@pytest.fixture(scope="module")
def bucket() -> Iterator[ObjectStore]:
    """The example's data where production reads it: s3://acme-ml/churn/ on moto's S3 server."""
    with churn_bucket() as store:
        yield store


@pytest.fixture(scope="module")
def system(bucket: ObjectStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The compiled project on disk, its champion trained, two serving pods, the Pushgateway and Prometheus."""
    root = tmp_path_factory.mktemp("system")
    project = root / "churn"
    shutil.copytree(REPO / "examples" / "churn", project)
    # Production checks drift on its prediction log by default (tests/runtime/test_system_loop.py);
    # here the drift CronJob reads a folder of live files the test puts in the bucket.
    spec = project / "mlproject.yaml"
    live = "{current: {uri: s3://acme-ml/churn/production/live/}}"
    spec.write_text(spec.read_text().replace("{current: {uri: null}}", live))
    compiled = compile_spec_file(project / "mlproject.yaml")
    assert compiled.ok, [d.render() for d in compiled.result.diagnostics]
    for artifact in compiled.artifacts:  # as `mlc apply` writes them
        (project / artifact.path).parent.mkdir(parents=True, exist_ok=True)
        (project / artifact.path).write_bytes(artifact.content)
    manifests = documents(project, f"deploy/{ENVIRONMENT}")

    # The runtime config every pod mounts (the ConfigMap), one epoch so the test trains in seconds.
    (config_map,) = [doc for key, doc in manifests.items() if key.startswith("ConfigMap/")]
    runtime_config = json.loads(config_map["data"]["runtime-config.json"])
    runtime_config["train"]["params"]["epochs"] = 1
    config = project / ".mlc" / ENVIRONMENT / "runtime-config.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps(runtime_config))
    # The pods' environment: the tracking server, and the object store (the Secret's keys, the endpoint).
    store = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", **bucket.environment()}
    tracking = {"MLFLOW_TRACKING_URI": f"sqlite:///{project}/.mlc/mlflow.db", **store}
    trained = runtime(project, ["mlc-runtime", "train", "--config", str(config)], tracking)
    assert trained.returncode == 0, trained.stderr[-3000:]
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking["MLFLOW_TRACKING_URI"])
    registered = runtime_config["registered_model"]
    # Version 2 answers 500 to everything; a promotion pinned it in the serving Deployment's
    # template: the canary pod serves it, the stable pod keeps version 1. The alias moves to it
    # later (`observed`): the drift job, which scores with the champion, runs on version 1 first.
    (root / "broken.py").write_text(BROKEN_MODEL)
    broken = MlflowClient().create_experiment("broken", artifact_location=(root / "broken-artifacts").as_uri())
    with mlflow.start_run(experiment_id=broken):
        mlflow.pyfunc.log_model(
            "model", python_model=str(root / "broken.py"), pip_requirements=[], registered_model_name=registered
        )
    MlflowClient().set_registered_model_alias(registered, "champion", "1")

    deployment = manifests["Deployment/churn-serve"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    service = manifests["Service/churn-serve"]
    ports = {STABLE_HASH: free_port(), CANARY_HASH: free_port()}
    pods = {
        pod_hash: Endpoint(
            address=f"127.0.0.1:{port}",
            namespace=service["metadata"]["namespace"],
            service=service["metadata"]["name"],
            service_labels=service["metadata"]["labels"],
            port_name=service["spec"]["ports"][0]["name"],
            pod=f"churn-serve-{pod_hash}-x{index}z9q",
            container=container["name"],
            pod_labels={**deployment["spec"]["template"]["metadata"]["labels"], "rollouts-pod-template-hash": pod_hash},
        )
        for index, (pod_hash, port) in enumerate(ports.items())
    }
    with contextlib.ExitStack() as stack:  # every process started here is stopped, whatever fails
        gateway = stack.enter_context(pushgateway(root))
        gateway_endpoint = pushgateway_endpoint(gateway)
        monitors = [doc for key, doc in manifests.items() if key.startswith("ServiceMonitor/")]
        rule_file = project / "deploy" / "tests" / ENVIRONMENT / "alerts.rules.yaml"  # the emitted file, as written
        prometheus_config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rule_file)],
            "scrape_configs": [
                job for monitor in monitors for job in scrape_configs(monitor, [*pods.values(), gateway_endpoint], "1s")
            ],
        }
        url = stack.enter_context(prometheus(root, prometheus_config))
        servers, processes = {}, {}
        for pod_hash, port in ports.items():
            command = substitute(container["command"], {"--config": str(config), "--port": str(port)})
            command += ["--host", "127.0.0.1"]
            # The pod's environment as the kubelet fills it: the pinned version from its template's annotation.
            pinned = downward_env(container, {SERVED_VERSION_ANNOTATION: PINNED[pod_hash]})
            environ = runtime_env(**tracking, **pinned, MLC_SERVE_WATCH_SECONDS="1")
            with (root / f"serve-{pod_hash}.log").open("w") as log:
                process = subprocess.Popen(
                    [*RUNTIME_CLI, *command[1:]], cwd=project, env=environ, stdout=log, stderr=log
                )
            stack.callback(lambda process=process: process.poll() is None and (process.terminate(), process.wait(30)))
            servers[pod_hash] = f"http://127.0.0.1:{port}"
            processes[pod_hash] = process
        for pod_hash, server in servers.items():
            wait_for(lambda server=server: server_ready(server), 120, f"serving pod {pod_hash}")
        wait_for(lambda: _targets_up(url) == 3, 60, "Prometheus scraping both pods and the Pushgateway")
        yield {
            "project": project,
            "config": config,
            "tracking": tracking,
            "manifests": manifests,
            "servers": servers,
            "processes": processes,
            "pushgateway": gateway,
            "prometheus": url,
            "rules": yaml.safe_load(rule_file.read_text())["groups"][0]["rules"],
        }


def _targets_up(url: str) -> int:
    targets = prometheus_api(url, "/api/v1/targets")["activeTargets"]
    return sum(target["health"] == "up" for target in targets)


def _rule(system: dict[str, Any], suffix: str) -> dict[str, Any]:
    (rule,) = [rule for rule in system["rules"] if rule["alert"].endswith(suffix)]
    return rule


def _drift(system: dict[str, Any], *extra: str) -> subprocess.CompletedProcess[str]:
    """The compiled drift CronJob's command, against the local config and Pushgateway."""
    (cronjob,) = [doc for key, doc in system["manifests"].items() if key == "CronJob/churn-drift"]
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][container["command"].index("--config") + 1] == CONFIG_PATH
    command = substitute(container["command"], {"--config": str(system["config"]), "--push": system["pushgateway"]})
    # No Kubernetes API here to start the retraining Job `on_drift: retrain` asks for.
    return runtime(system["project"], [*command, "--on-drift", "none", *extra], system["tracking"])


def _rows(path: Path, count: int) -> list[dict[str, Any]]:
    frame = pd.read_csv(path).drop(columns=["churned"]).head(count)
    return [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


@pytest.fixture(scope="module")
def observed(system: dict[str, Any]) -> dict[str, Any]:
    """The scenario, in order, and what Prometheus said at each step (the tests below judge it)."""
    url, servers, project = system["prometheus"], system["servers"], system["project"]
    latency, errors, data_drift = (_rule(system, name) for name in ("LatencyP95High", "ErrorRateHigh", "DataDrift"))
    seen: dict[str, Any] = {"rules": (latency, errors, data_drift)}
    healthy_rows = _rows(project / "data" / "live-healthy.csv", 40)

    # Healthy: valid requests to the stable pod, the drift job on live data from the training distribution.
    seen["healthy_statuses"] = [
        post(servers[STABLE_HASH] + "/invocations", json.dumps({"dataframe_records": [row]}))[0] for row in healthy_rows
    ]
    seen["healthy_drift"] = _drift(system, "--data", "data/live-healthy.csv")
    wait_for(
        lambda: query(url, 'sum(mlc_requests_total{code="200"}) >= 40 and on() count(mlc_drift_rows) > 0'),
        30,
        "the requests and the drift result in Prometheus",
    )
    time.sleep(3)  # a few rule evaluations (every second) over what was scraped
    seen["healthy"] = {rule["alert"]: query(url, rule["expr"]) for rule in (latency, errors, data_drift)}
    seen["healthy_alerts"] = alerts(url)

    # Drifted: the CronJob's command as compiled (its data: monitor.drift.current.uri, production/live/ in the bucket).
    seen["drifted"] = _drift(system)
    seen["drift_alert_fired"] = became(lambda: alerts(url).get(data_drift["alert"]) == "firing", 30)

    # 5xx from the canary pod, whose model raises on every request, while traffic goes on. rate() counts
    # increases between scrapes: the server exports code="500" from its first 500 on (no series at 0
    # before), so the errors before that series' first scrape never count; the later ones do.
    seen["burst_statuses"] = []
    for index, row in enumerate(healthy_rows[:30]):
        seen["burst_statuses"].append(
            post(servers[CANARY_HASH] + "/invocations", json.dumps({"dataframe_records": [row]}))[0]
        )
        if index == 4:
            wait_for(lambda: query(url, 'mlc_requests_total{code="500"}'), 30, "the first 500s to be scraped")
    seen["error_expression_true"] = became(lambda: query(url, errors["expr"]) != [], 30)
    seen["error_alert_pending"] = became(lambda: alerts(url).get(errors["alert"]) == "pending", 30)
    seen["alerts_after_burst"] = alerts(url)

    (template,) = [doc for key, doc in system["manifests"].items() if key.startswith("AnalysisTemplate/")]
    (error_metric,) = [m for m in template["spec"]["metrics"] if m["name"] == "error-rate"]
    analysis = error_metric["provider"]["prometheus"]["query"]
    seen["analysis_condition"] = error_metric["successCondition"]
    seen["analysis"] = {
        pod_hash: [
            float(sample["value"][1]) for sample in query(url, analysis.replace("{{args.canary-hash}}", pod_hash))
        ]
        for pod_hash in (CANARY_HASH, STABLE_HASH)
    }
    # Which version each pod serves, and whether it is the champion, as scraped: before and after
    # the alias moves to version 2 (the promotion's first step; its second pinned the canary).
    seen["served_before"] = _served(url)
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(system["tracking"]["MLFLOW_TRACKING_URI"])
    registered = json.loads(system["config"].read_text())["registered_model"]
    MlflowClient().set_registered_model_alias(registered, "champion", "2")
    # Each pod reads the alias on its own and Prometheus scrapes each on its own: wait for both.
    became(
        lambda: (
            [_served(url)[h]["mlc_model_is_champion"] for h in (CANARY_HASH, STABLE_HASH)]
            == [[("2", "1")], [("1", "0")]]
        ),
        30,
    )
    seen["served"] = _served(url)
    seen["not_champion_mid_rollout"] = query(url, _rule(system, "ServedModelNotChampion")["expr"])
    return seen


def _served(url: str) -> dict[str, dict[str, list[tuple[str, str]]]]:
    """Pod hash -> (version, value) of its `mlc_model_info` and `mlc_model_is_champion`."""
    return {
        pod_hash: {
            name: [(sample["metric"]["version"], sample["value"][1]) for sample in query(url, f"{name}{{{pod}}}")]
            for name in ("mlc_model_info", "mlc_model_is_champion")
        }
        for pod_hash in (CANARY_HASH, STABLE_HASH)
        for pod in [f'{POD_HASH}="{pod_hash}"']
    }


@pytest.fixture(scope="module")
def aborted(system: dict[str, Any], observed: dict[str, Any]) -> dict[str, Any]:
    """The analysis failed: Argo Rollouts scales the canary down, the stable pod stays (on version 1)."""
    canary = system["processes"][CANARY_HASH]
    canary.terminate()
    canary.wait(timeout=30)
    url, rule = system["prometheus"], _rule(system, "ServedModelNotChampion")
    return {
        "rule": rule,
        "expression_true": became(lambda: query(url, rule["expr"]) != [], 30),
        "stable_ready": server_ready(system["servers"][STABLE_HASH]),
        "stable_serves": query(url, f'mlc_model_info{{{POD_HASH}="{STABLE_HASH}"}}')[0]["metric"]["version"],
    }


def test_healthy_traffic_and_healthy_data_raise_no_alert(observed) -> None:
    latency, errors, data_drift = observed["rules"]
    assert set(observed["healthy_statuses"]) == {200}
    assert observed["healthy_drift"].returncode == 0, (
        observed["healthy_drift"].stdout + observed["healthy_drift"].stderr
    )
    assert observed["healthy"] == {latency["alert"]: [], errors["alert"]: [], data_drift["alert"]: []}
    assert not set(observed["healthy_alerts"]) & {latency["alert"], errors["alert"], data_drift["alert"]}


def test_drifted_data_fires_the_data_drift_alert(observed) -> None:
    assert observed["drifted"].returncode == 1, observed["drifted"].stdout + observed["drifted"].stderr  # 1: drift
    assert observed["drift_alert_fired"]


def test_a_5xx_burst_makes_the_error_rate_alert_true_and_fails_the_canary_analysis(observed) -> None:
    latency, _, _ = observed["rules"]
    assert set(observed["burst_statuses"]) == {500}
    assert observed["error_expression_true"] and observed["error_alert_pending"]
    assert latency["alert"] not in observed["alerts_after_burst"]
    # The canary analysis, its condition evaluated as Argo Rollouts does on each pod's answer: the
    # canary's error rate fails it (the rollout aborts); the stable pod, whose 5xx series exists at
    # 0 from its start (so the first burst is counted), measures 0 and passes.
    condition, measured = observed["analysis_condition"], observed["analysis"]
    assert measured[CANARY_HASH] == [1.0] and measured[STABLE_HASH] == [0.0]
    assert not analysis_passes(condition, measured[CANARY_HASH])
    assert analysis_passes(condition, measured[STABLE_HASH])


def analysis_passes(condition: str, result: list[float]) -> bool:
    """An AnalysisTemplate `successCondition` on a Prometheus vector, as Argo Rollouts evaluates it.

    Only the expr-language forms the compiler emits (`len`, `isNaN`, `result[0]`, `||`, `<=`); an
    index into an empty result is an error there, as here (IndexError), not a pass.
    """
    assert re.fullmatch(r"[a-zA-Z0-9_\[\]().<=|\s]+", condition), condition
    python = condition.replace("||", " or ").replace("isNaN(", "math.isnan(")
    return bool(eval(python, {"math": math, "len": len, "__builtins__": {}}, {"result": result}))


def test_every_mlc_selector_of_alerts_autoscaling_and_canary_analysis_matches_a_series(system, observed) -> None:
    """After the scenario (`observed`): requests of every status, a drift result pushed."""
    manifests, url = system["manifests"], system["prometheus"]
    expressions = [rule["expr"] for rule in system["rules"]]
    for key, doc in manifests.items():
        if key.startswith("ScaledObject/"):
            expressions += [trigger["metadata"]["query"] for trigger in doc["spec"]["triggers"]]
        if key.startswith("AnalysisTemplate/"):
            for metric in doc["spec"]["metrics"]:
                expressions.append(
                    metric["provider"]["prometheus"]["query"].replace("{{args.canary-hash}}", CANARY_HASH)
                )
    # The feedback job's series (live quality) and prediction drift (the drift job on a prediction
    # log, which this scenario has not) are checked where they are produced: test_system_loop.py.
    selectors = sorted(
        {
            f"{name}{{{labels}}}"
            for expression in expressions
            for name, labels in SELECTOR.findall(expression)
            if 'job="mlc-feedback"' not in labels and not name.startswith("mlc_prediction_")
        }
    )
    unmatched = [s for s in selectors if not prometheus_api(url, "/api/v1/series", **{"match[]": s, "start": "0"})]
    assert unmatched == [], f"selectors matching no series: {unmatched}"
    names = {selector.split("{")[0] for selector in selectors}
    assert {
        "mlc_requests_in_flight",  # KEDA
        "mlc_requests_total",  # error-rate alert and canary analysis
        "mlc_request_duration_seconds_bucket",  # latency alert and canary analysis
        "mlc_drift_dataset_drifted",  # data-drift alert
        "mlc_drift_last_success_timestamp_seconds",  # stale drift check alert
    } <= names


def test_each_pod_serves_the_version_its_template_pins(observed) -> None:
    """The canary pod serves version 2, the stable pod version 1, whatever the alias says; each
    says whether it serves the champion."""
    before = observed["served_before"]  # version 1 is still the champion
    assert before[CANARY_HASH] == {"mlc_model_info": [("2", "1")], "mlc_model_is_champion": [("2", "0")]}
    assert before[STABLE_HASH] == {"mlc_model_info": [("1", "1")], "mlc_model_is_champion": [("1", "1")]}
    served = observed["served"]  # promoted: version 2 is
    assert served[CANARY_HASH] == {"mlc_model_info": [("2", "1")], "mlc_model_is_champion": [("2", "1")]}
    assert served[STABLE_HASH] == {"mlc_model_info": [("1", "1")], "mlc_model_is_champion": [("1", "0")]}
    # Mid-rollout a pod serves the champion: no alert.
    assert observed["not_champion_mid_rollout"] == []


def test_an_aborted_canary_leaves_the_stable_pod_on_the_old_version_and_alerts(aborted) -> None:
    # The registry still names version 2 (the alias is not moved back for the operator): the stable
    # pod keeps answering with version 1, and no pod serving @champion is what the alert says.
    assert aborted["stable_ready"] and aborted["stable_serves"] == "1"
    assert aborted["expression_true"], aborted["rule"]["expr"]
    assert aborted["rule"]["labels"]["severity"] == "critical"
