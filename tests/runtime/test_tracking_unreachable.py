"""A tracking server that cannot be reached: a bounded wait, then one line that says so, exit 2.

MLflow's own client would retry for about 4 minutes (a closed port) or 16 (a server that accepts
and never answers) and the gate would then report the failed alias lookup. The runtime sets
MLflow's timeout and retries from the runtime config (the spec's `registry.timeout` and
`registry.retries`, else the contract's defaults) unless the user set the variables.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlc.runtime.contract import TRACKING_RETRIES, TRACKING_TIMEOUT_SECONDS

UNREACHABLE = "error: the tracking server is unreachable at {uri} ({reason}; {attempts} attempt(s), {timeout} s each)"


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def hanging_server() -> Iterator[str]:
    """An HTTP server that accepts connections and reads requests, and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stopping = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stopping.is_set():
            try:
                connection, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            held.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stopping.set()
        thread.join()
        for connection in held:
            connection.close()
        listener.close()


def run_gate(write_config, run_runtime, tmp_path: Path, uri: str, env: dict[str, str] | None = None, **config: object):
    path = write_config(tracking_uri=uri, evaluate={"dataset": "train", "metrics": ["accuracy"], "gates": []}, **config)
    start = time.monotonic()
    done = run_runtime("gate", "--config", str(path), cwd=tmp_path, env=env)
    return done, time.monotonic() - start


def test_a_closed_port_fails_the_gate_in_seconds_saying_where(write_config, run_runtime, tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{closed_port()}"
    done, elapsed = run_gate(write_config, run_runtime, tmp_path, uri)
    assert done.returncode == 2, done.stderr
    expected = UNREACHABLE.format(
        uri=uri, reason="connection refused", attempts=TRACKING_RETRIES + 1, timeout=TRACKING_TIMEOUT_SECONDS
    )
    assert done.stderr.startswith(expected), done.stderr
    assert done.stderr.count("\n") == 1 and "challenger" not in done.stderr and "Traceback" not in done.stderr
    assert elapsed < 20, elapsed  # MLflow's defaults: about 4 minutes


def test_a_server_that_never_answers_is_bounded_by_the_configured_timeout(
    write_config, run_runtime, tmp_path: Path, hanging_server: str
) -> None:
    done, elapsed = run_gate(
        write_config,
        run_runtime,
        tmp_path,
        hanging_server,
        tracking_requests={"request_timeout_seconds": 1, "retries": 1},
    )
    assert done.returncode == 2, done.stderr
    expected = UNREACHABLE.format(uri=hanging_server, reason="no answer", attempts=2, timeout=1)
    assert done.stderr.startswith(expected), done.stderr
    # Two 1-second attempts, a backoff of about a second (and up to 1 s of MLflow's jitter), start-up.
    assert 2 <= elapsed < 15, elapsed


def test_the_users_own_mlflow_variables_win(write_config, run_runtime, tmp_path: Path, hanging_server: str) -> None:
    done, _ = run_gate(
        write_config,
        run_runtime,
        tmp_path,
        hanging_server,
        env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "1"},
        tracking_requests={"request_timeout_seconds": 5, "retries": 3},
    )
    assert done.returncode == 2
    assert UNREACHABLE.format(uri=hanging_server, reason="no answer", attempts=1, timeout=1) in done.stderr


def test_serve_and_rollback_say_the_same(write_config, run_runtime, tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{closed_port()}"
    path = write_config(tracking_uri=uri, tracking_requests={"request_timeout_seconds": 2, "retries": 0})
    line = UNREACHABLE.format(uri=uri, reason="connection refused", attempts=1, timeout=2)
    rolled = run_runtime("rollback", "--config", str(path), cwd=tmp_path)
    assert rolled.returncode == 2 and rolled.stderr.startswith(line), rolled.stderr
    served = run_runtime("serve", "--config", str(path), "--port", "0", cwd=tmp_path)
    assert served.returncode == 1 and line.removeprefix("error: ") in served.stderr, served.stderr
    assert "Traceback" not in served.stderr
