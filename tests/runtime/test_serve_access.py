"""`serve.access` on the real server: metrics port, API keys (rotated live), rate limit, audit log.

The server runs as `mlc-runtime serve` in a subprocess with a runtime config whose `serve.access`
is what the compiler writes for a spec with `serve.access`; every check is an HTTP request on
127.0.0.1.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from served_project import CONFIG, free_port, get, metric_value, running_server, toy_rows, train_served_project

KEY_A = "ka-" + "a" * 40
KEY_B = "kb-" + "b" * 40


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("guarded")
    return root, train_served_project(root)


def guarded_config(root: Path, **access: Any) -> Path:
    config = json.loads(json.dumps(CONFIG))
    config["serve"]["access"] = access
    path = root / f"access-{len(list(root.glob('access-*.json')))}.json"
    path.write_text(json.dumps(config))
    return path


def call(url: str, body: object | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict, Any]:
    """(status, response headers, parsed body) of a POST (or a GET without a body)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


ROWS = {"dataframe_records": toy_rows(2, seed=5)}


def audit_lines(log: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in log.splitlines() if line.startswith('{"')]
    return [line for line in lines if line.get("log") == "audit"]


def test_metrics_and_readiness_details_only_on_the_metrics_port(project) -> None:
    root, _ = project
    metrics_port = free_port()
    config = guarded_config(root, metrics_port=metrics_port, audit="off")
    with running_server(root, config, "--metrics-port", str(metrics_port)) as server:
        status, _, body = call(server.url + "/invocations", ROWS)
        assert status == 200 and len(body["predictions"]) == 2
        assert get(server.url + "/metrics")[0] == 404
        status, ready = get(server.url + "/ready")
        assert status == 200 and json.loads(ready) == {"status": "ready"}  # no model identity
        metrics = f"http://127.0.0.1:{metrics_port}"
        status, text = get(metrics + "/metrics")
        assert status == 200 and metric_value(text.decode(), "mlc_requests_total", 'code="200"') == 1
        status, ready = get(metrics + "/ready")
        assert status == 200 and json.loads(ready)["version"] == "1"
        assert get(metrics + "/v2/health/live")[0] == 200
        assert call(metrics + "/invocations", ROWS)[0] == 404  # no predictions on the metrics port


def test_api_keys_from_a_folder_rotate_without_a_restart(project, monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = project
    keys = root / "api-keys"
    keys.mkdir()
    (keys / "client-a").write_text(KEY_A + "\n")
    (keys / "..data").mkdir()  # the kubelet's own entries are not keys
    config = guarded_config(root, api_keys_dir=str(keys), audit="requests")
    with running_server(root, config) as server:
        url = server.url + "/invocations"
        status, headers, body = call(url, ROWS)
        assert status == 401 and body["error_code"] == "UNAUTHENTICATED"
        assert headers["www-authenticate"].startswith("Bearer")
        assert call(url, ROWS, {"Authorization": "Bearer wrong"})[0] == 401
        assert call(url, ROWS, {"Authorization": f"Bearer {KEY_A}"})[0] == 200
        assert call(url, ROWS, {"X-API-Key": KEY_A})[0] == 200
        assert get(server.url + "/ready")[0] == 200  # probes need no key
        assert call(server.url + "/v2/models/toy-model", None)[0] == 401  # metadata is the contract: keyed

        # Rotation: the new key works while the old one still does, then the old one is removed.
        (keys / "client-b").write_text(KEY_B)
        deadline = time.monotonic() + 30
        while call(url, ROWS, {"X-API-Key": KEY_B})[0] != 200:
            assert time.monotonic() < deadline, "the new key was never accepted"
            time.sleep(0.5)
        assert call(url, ROWS, {"X-API-Key": KEY_A})[0] == 200
        (keys / "client-a").unlink()
        while call(url, ROWS, {"X-API-Key": KEY_A})[0] != 401:
            assert time.monotonic() < deadline + 30, "the removed key stayed valid"
            time.sleep(0.5)
        assert call(url, ROWS, {"X-API-Key": KEY_B})[0] == 200
        log = server.log()
    audit = audit_lines(log)
    assert {line["caller"] for line in audit if line["status"] == 200} == {"client-a", "client-b"}
    assert {line["status"] for line in audit if line["caller"] is None} == {401}
    assert all(line["model"] == "toy-model" and line["version"] == "1" for line in audit)
    assert all("payload" not in line for line in audit)
    assert KEY_A not in log and KEY_B not in log  # keys are never logged
    assert all(len(line["request_id"]) == 32 for line in audit if line["status"] == 200)


def test_each_client_has_its_own_rate_limit_answered_with_429(project) -> None:
    root, _ = project
    keys = root / "limited-keys"
    keys.mkdir()
    (keys / "fast").write_text(KEY_A)
    (keys / "other").write_text(KEY_B)
    config = guarded_config(
        root, api_keys_dir=str(keys), rate_limit={"requests_per_second": 2, "burst": 3}, audit="payloads"
    )
    with running_server(root, config) as server:
        url = server.url + "/invocations"
        statuses = [call(url, ROWS, {"X-API-Key": KEY_A})[0] for _ in range(6)]
        assert statuses[:3] == [200, 200, 200] and 429 in statuses[3:], statuses
        status, headers, body = call(url, ROWS, {"X-API-Key": KEY_A})
        assert status == 429 and int(headers["retry-after"]) >= 1 and body["error_code"] == "RATE_LIMITED"
        assert call(url, ROWS, {"X-API-Key": KEY_B})[0] == 200  # another client is not held back
        time.sleep(1.1)  # two tokens a second
        assert call(url, ROWS, {"X-API-Key": KEY_A})[0] == 200
        metrics = get(server.url + "/metrics")[1].decode()
        log = server.log()
    assert metric_value(metrics, "mlc_requests_total", 'code="429"') >= 2
    audit = audit_lines(log)
    assert json.loads(audit[0]["payload"]) == ROWS  # `payloads`: the body, as sent


def post_from(source: str, url: str, forwarded: str | None) -> int:
    """The status of a prediction request sent from the loopback address `source`, with an
    `X-Forwarded-For` header when given."""
    parsed = urllib.parse.urlparse(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30, source_address=(source, 0))
    headers = {"Content-Type": "application/json", **({"X-Forwarded-For": forwarded} if forwarded else {})}
    try:
        connection.request("POST", "/invocations", json.dumps(ROWS), headers)
        return connection.getresponse().status
    finally:
        connection.close()


def test_forwarded_clients_are_believed_only_from_a_trusted_proxy(project) -> None:
    root, _ = project
    # 127.0.0.2 plays the ingress; 127.0.0.1 a pod calling the server directly. No refill meanwhile.
    config = guarded_config(
        root, rate_limit={"requests_per_second": 0.001, "burst": 2}, trusted_proxies=["127.0.0.2/32"], audit="requests"
    )
    with running_server(root, config) as server:
        # An untrusted peer changing its X-Forwarded-For on every request still has one bucket.
        assert [post_from("127.0.0.1", server.url, f"198.51.100.{i}") for i in range(4)] == [200, 200, 429, 429]
        # Behind the trusted proxy, each forwarded client has its own bucket ...
        assert [post_from("127.0.0.2", server.url, "203.0.113.7") for _ in range(3)] == [200, 200, 429]
        assert post_from("127.0.0.2", server.url, "203.0.113.8") == 200
        # ... by the entry the proxy appended: what the client wrote to its left is not believed,
        assert post_from("127.0.0.2", server.url, "203.0.113.99, 203.0.113.7") == 429
        # and trusted proxies in the chain are skipped from the right.
        assert post_from("127.0.0.2", server.url, "203.0.113.9, 127.0.0.2") == 200
        # A trusted proxy that forwards nothing is the client itself.
        assert post_from("127.0.0.2", server.url, None) == 200
    addresses = [line["address"] for line in audit_lines(server.log()) if line["path"] == "/invocations"]
    assert addresses == ["127.0.0.1"] * 4 + ["203.0.113.7"] * 3 + ["203.0.113.8", "203.0.113.7", "203.0.113.9"] + [
        "127.0.0.2"
    ]
