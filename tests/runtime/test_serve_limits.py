"""`serve.limits` on the real server: a compiled spec's limits hold exactly at their value.

The spec is compiled (load, validate, resolve, runtime config) and its `serve.limits` goes into
the toy project's runtime config, which `mlc-runtime serve` reads on 127.0.0.1. Each limit is
probed at its value (answered) and one past it (refused, naming the limit); without the section
the contract's defaults hold.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from served_project import CONFIG, post, running_server, toy_rows, train_served_project

from mlc.compiler.pipeline import resolve_spec_file
from mlc.compiler.resolve.runtime_config import runtime_config
from mlc.runtime.contract import SERVE_MAX_COLUMNS, SERVE_MAX_ROWS
from spec_fixtures import make_project
from test_validate import BASE

LIMITS = "serve:\n  limits: {max_body_bytes: 4096, max_rows: 5, max_columns: 3, max_depth: 5, body_timeout: 1s, header_timeout: 1s}\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("limited")
    return root, train_served_project(root)


def compiled_config(root: Path, spec_tail: str) -> Path:
    """The toy runtime config with the `serve` section the compiler writes for BASE + `spec_tail`."""
    (resolved,) = resolve_spec_file(make_project(root / "spec", BASE + spec_tail)).resolved
    compiled = runtime_config(resolved).model_dump(mode="json")["serve"]
    config = json.loads(json.dumps(CONFIG))
    config["serve"] = {**config["serve"], **{k: v for k, v in compiled.items() if k == "limits"}}
    path = root / "limited-config.json"
    path.write_text(json.dumps(config))
    return path


def records(count: int) -> bytes:
    return json.dumps({"dataframe_records": toy_rows(count, seed=7)}).encode()


def csv_rows(count: int, extra_columns: int = 0) -> bytes:
    header = ["x", "n", "color", *(f"extra{i}" for i in range(extra_columns))]
    lines = [",".join(header)] + [",".join(["1.5", "2", "red", *["0"] * extra_columns])] * count
    return ("\n".join(lines) + "\n").encode()


def padded(body: bytes, size: int) -> bytes:
    """The JSON body with trailing spaces to exactly `size` bytes."""
    assert len(body) <= size
    return body + b" " * (size - len(body))


def status_and_message(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, str]:
    status, answer = post(url + "/invocations", body, content_type)
    return status, json.dumps(answer)


def raw_exchange(port: int, send: bytes, wait: float) -> bytes:
    """Send `send` on a fresh connection, then read until the server answers or closes (at most `wait` s)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as connection:
        connection.sendall(send)
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
        except TimeoutError:
            return b"still open"
        return received


def test_compiled_limits_hold_exactly_at_their_value(project) -> None:
    root, _ = project
    config = compiled_config(root, LIMITS)
    with running_server(root, config) as server:
        url = server.url
        # max_body_bytes: 4096 answered, 4097 refused before it is read
        assert status_and_message(url, padded(records(2), 4096))[0] == 200
        status, message = status_and_message(url, padded(records(2), 4097))
        assert status == 413 and "limit is 4096" in message
        # max_rows: 5 answered, 6 refused (JSON and CSV)
        assert status_and_message(url, records(5))[0] == 200
        status, message = status_and_message(url, records(6))
        assert status == 400 and "6 rows; at most 5" in message
        assert status_and_message(url, csv_rows(5), "text/csv")[0] == 200
        status, message = status_and_message(url, csv_rows(6), "text/csv")
        assert status == 400 and "6 rows; at most 5" in message
        # max_columns: the contract's 3 pass the limit, a fourth is refused before the contract check
        status, message = status_and_message(url, csv_rows(1, extra_columns=1), "text/csv")
        assert status == 400 and "4 columns; at most 3" in message
        wide = {"dataframe_split": {"columns": ["x", "n", "color", "more"], "data": [[1.5, 2, "red", 0]]}}
        status, message = status_and_message(url, json.dumps(wide).encode())
        assert status == 400 and "4 columns; at most 3" in message
        # max_depth: `index` is ignored by the model, so only the nesting differs
        split: dict[str, Any] = {"columns": ["x", "n", "color"], "data": [[1.5, 2, "red"]], "index": [[[0]]]}
        assert status_and_message(url, json.dumps({"dataframe_split": split}).encode())[0] == 200  # 5 deep
        split["index"] = [[[[0]]]]
        status, message = status_and_message(url, json.dumps({"dataframe_split": split}).encode())
        assert status == 400 and "nests 6 levels deep; at most 5" in message
        port = int(url.rsplit(":", 1)[1])
        # body_timeout 1s: headers, half a body, then nothing -> 408
        started = time.monotonic()
        head = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        answer = raw_exchange(port, head + b'{"dataframe', wait=5)
        assert answer.startswith(b"HTTP/1.1 408") and time.monotonic() - started < 4
        # header_timeout 1s: half a request line, then nothing -> closed without an answer
        started = time.monotonic()
        assert raw_exchange(port, b"POST /invoc", wait=5) == b""
        assert 0.9 < time.monotonic() - started < 4


def test_without_the_section_the_contracts_defaults_hold(project) -> None:
    root, _ = project
    config = compiled_config(root, "serve:\n  port: 8080\n")
    assert "limits" not in json.loads(config.read_text())["serve"]  # nothing compiled: the runtime's defaults
    with running_server(root, config) as server:
        status, message = status_and_message(server.url, csv_rows(1, extra_columns=SERVE_MAX_COLUMNS - 3), "text/csv")
        assert f"at most {SERVE_MAX_COLUMNS} are read" not in message
        status, message = status_and_message(server.url, csv_rows(1, extra_columns=SERVE_MAX_COLUMNS - 2), "text/csv")
        assert status == 400 and f"{SERVE_MAX_COLUMNS + 1} columns; at most {SERVE_MAX_COLUMNS}" in message
        assert status_and_message(server.url, csv_rows(SERVE_MAX_ROWS), "text/csv")[0] == 200
        status, message = status_and_message(server.url, csv_rows(SERVE_MAX_ROWS + 1), "text/csv")
        assert status == 400 and f"at most {SERVE_MAX_ROWS} are read" in message
