"""A trained, registered project for the serving tests, and a real `mlc-runtime serve` process.

`train_served_project(root)` writes the toy project (`TOY_CONFIG`, also conftest's BASE_CONFIG: x
float in [0, 10], n int >= 0 nullable, color in {red, blue}), trains it with `mlc-runtime
train` into a sqlite MLflow store under root/.mlc and makes version 1 @champion. Its model
sleeps `TOY_PREDICT_SLEEP` seconds per call, fails when `TOY_PREDICT_FAIL` is set, and takes
`TOY_LOAD_SLEEP` seconds to load (all read from the serving process's environment), so tests
can make batches form, the model break and readiness wait.

`running_server(...)` starts the server on a free 127.0.0.1 port and always stops it.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUNTIME_CLI = [sys.executable, "-c", "from mlc.runtime.cli import main; main()"]
MODEL = "toy-model"

# The toy project's runtime config, as the compiler would emit it: conftest's BASE_CONFIG (no
# train section) and CONFIG (trained and served here) are both built on it.
TOY_CONFIG: dict[str, Any] = {
    "format_version": 1,
    "project": "toy",
    "environment": "test",
    "namespace": "ml-toy",
    "spec_digest": "sha256:" + "0" * 64,
    "compiler_version": "0.1.0",
    "tracking_uri": "sqlite:///.mlc/mlflow.db",
    "registered_model": MODEL,
    "aliases": {"challenger": "challenger", "champion": "champion", "previous": "previous"},
    "data": {"train": {"uri": "data/train.csv", "format": "csv"}},
    "contract": {
        "target": "label",
        "features": {
            "x": {"type": "float", "min": 0.0, "max": 10.0, "nullable": False, "values": None},
            "n": {"type": "int", "min": 0.0, "max": None, "nullable": True, "values": None},
            "color": {"type": "category", "min": None, "max": None, "nullable": False, "values": ["red", "blue"]},
        },
    },
    "train": None,
    "evaluate": None,
    "exit_codes": {"config_error": 78},
}

CONFIG: dict[str, Any] = {
    **TOY_CONFIG,
    "train": {
        "entrypoint": "toy.train:train",
        "params": {"epochs": 30, "lr": 0.5},
        "seed": 3,
        "checkpoint": {"uri": "checkpoints/", "every": "epoch"},
        "timeout_seconds": 600,
        "nodes": 1,
        "gpus_per_node": 0,
        "spot": False,
    },
    "serve": {
        "engine": "runtime",
        "port": 8080,
        "batch": {"input": "batch-in/", "output": "batch-out/", "parallelism": 2},
    },
    "metrics": {"names": {"requests_in_flight": "mlc_requests_in_flight"}},
}

ENTRYPOINT = """
import os
import time

import torch

# Loading the model imports this module: a slow import keeps the server unready for a while.
time.sleep(float(os.environ.get("TOY_LOAD_SLEEP", "0")))


class ToyModel(torch.nn.Module):
    def __init__(self, width):
        super().__init__()
        self.linear = torch.nn.Linear(width, 1)

    def forward(self, features):
        if os.environ.get("TOY_PREDICT_FAIL"):
            raise RuntimeError("toy model exploded")
        time.sleep(float(os.environ.get("TOY_PREDICT_SLEEP", "0")))
        return self.linear(features)


def train(ctx):
    x, y = ctx.load_training_data()
    model = ToyModel(x.shape[1])
    optimizer = torch.optim.SGD(model.parameters(), lr=ctx.params["lr"])
    for _ in range(ctx.params["epochs"]):
        optimizer.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(model(x).reshape(-1), y).backward()
        optimizer.step()
    return model
"""


def toy_rows(count: int, seed: int) -> list[dict[str, Any]]:
    """Rows within the contract (n missing in about 10% of them)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        x = round(rng.uniform(0, 10), 3)
        rows.append(
            {"x": x, "n": None if rng.random() < 0.1 else rng.randint(0, 5), "color": rng.choice(["red", "blue"])}
        )
    return rows


def rows_csv(rows: list[dict[str, Any]], label: bool = False) -> str:
    header = "x,n,color" + (",label" if label else "")
    lines = [header]
    for row in rows:
        n = "" if row["n"] is None else str(row["n"])
        lines.append(f"{row['x']},{n},{row['color']}" + (f",{int(row['x'] > 5)}" if label else ""))
    return "\n".join(lines) + "\n"


def runtime_env(**extra: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "TOY_"))}
    return environ | extra


def train_served_project(root: Path) -> Path:
    """Write, train and promote the toy project in `root`; the runtime config's path."""
    import mlflow
    from mlflow import MlflowClient

    (root / "data").mkdir(parents=True)
    (root / "data/train.csv").write_text(rows_csv(toy_rows(400, seed=1), label=True))
    (root / "src/toy").mkdir(parents=True)
    (root / "src/toy/__init__.py").write_text("")
    (root / "src/toy/train.py").write_text(ENTRYPOINT)
    config = root / ".mlc/test/runtime-config.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps(CONFIG, indent=2))
    trained = subprocess.run(
        [*RUNTIME_CLI, "train", "--config", str(config)],
        cwd=root,
        env=runtime_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    mlflow.set_tracking_uri(tracking_uri(root))
    MlflowClient().set_registered_model_alias(MODEL, "champion", "1")
    return config


def tracking_uri(root: Path) -> str:
    return f"sqlite:///{root}/.mlc/mlflow.db"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()


def get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    """(status, body) of a GET; HTTP errors are answers too."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def post(url: str, body: bytes | str, content_type: str = "application/json", timeout: float = 30) -> tuple[int, Any]:
    """(status, parsed JSON body) of a POST."""
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(url, data=data, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_until(check: Any, timeout: float, what: str, process: subprocess.Popen[str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the server exited ({process.returncode}) before {what}")
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _answers(url: str) -> bool:
    try:
        return get(url, timeout=1)[0] == 200
    except OSError:
        return False


@contextlib.contextmanager
def running_server(
    root: Path, config: Path, *args: str, ready: bool = True, python: str = sys.executable, **env: str
) -> Iterator[Server]:
    """`mlc-runtime serve` on a free 127.0.0.1 port in a subprocess (of `python`: another venv's
    interpreter runs its own packages); stopped (SIGTERM, then kill) on exit."""
    port = free_port()
    log_path = root / f"serve-{port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                python,
                *RUNTIME_CLI[1:],
                "serve",
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *args,
            ],
            cwd=root,
            env=runtime_env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    try:
        wait_until(lambda: _answers(server.url + "/v2/health/live"), 60, "/v2/health/live", process)
        if ready:
            wait_until(lambda: _answers(server.url + "/ready"), 120, "/ready", process)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def metric_value(text: str, name: str, labels: str = "") -> float:
    """A sample's value from Prometheus text (`labels` as written, e.g. `code="200"`); 0 when absent."""
    wanted = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key == wanted:
            return float(value)
    return 0.0
