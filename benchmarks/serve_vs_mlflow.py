"""Benchmark: `mlc-runtime serve` against `mlflow models serve` on the same registered churn model.

Trains the churn example once (`mlc run train`, MLflow on sqlite in a temporary copy), makes
version 1 @champion, then serves it on 127.0.0.1 with each server in turn (one process, one
worker each) and drives both with the same bounded load: C concurrent connections (aiohttp),
N requests of 1 row and N of 32 rows (`dataframe_split`, rows from the example's eval set),
after a warm-up. Prints requests/s, p50/p95 latency and errors (non-200 answers or failures).

Run from the repo root with the project's venv (mlc importable, e.g. the dev install):

    .venv/bin/python benchmarks/serve_vs_mlflow.py [--concurrency 16] [--requests 2000]
        [--max-batch-size 64] [--max-wait-ms 5] [--workdir /tmp/serve-bench]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MLC = [sys.executable, "-c", "from mlc.compiler.cli import main; main()"]
RUNTIME = [sys.executable, "-c", "from mlc.runtime.cli import main; main()"]
MODEL = "churn-classifier"
ENVIRONMENT = "staging"


@dataclass(frozen=True)
class LoadResult:
    server: str
    rows: int
    requests: int
    seconds: float
    latencies: list[float]
    errors: int

    def row(self) -> str:
        ordered = sorted(self.latencies) or [float("nan")]
        p50 = ordered[len(ordered) // 2] * 1000
        p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000
        rate = self.requests / self.seconds
        return f"| {self.server} | {self.rows} | {rate:,.0f} | {p50:.1f} | {p95:.1f} | {self.errors} |"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def train_churn(workdir: Path) -> Path:
    """The churn example trained and promoted in `workdir`; the runtime config's path."""
    project = workdir / "churn"
    shutil.copytree(REPO / "examples" / "churn", project)
    environ = clean_environ()
    environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environ['PATH']}"
    trained = subprocess.run(
        [*MLC, "run", "train", "--env", ENVIRONMENT],
        cwd=project,
        env=environ,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if trained.returncode != 0:
        sys.exit(f"training failed:\n{trained.stderr[-3000:]}")
    printed = subprocess.run(
        [*MLC, "run", "serve", "--env", ENVIRONMENT, "--print-config"],
        cwd=project,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    config = project / ".mlc" / "bench-runtime-config.json"
    config.write_text(printed.stdout)
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{project}/.mlc/mlflow.db")
    MlflowClient().set_registered_model_alias(MODEL, "champion", "1")
    return config


def clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"server exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"timed out waiting for {url}")


@contextmanager
def served(command: list[str], cwd: Path, ready_path: str, port: int, log: Path) -> Iterator[str]:
    """A server process on 127.0.0.1:port; always stopped (SIGTERM, then kill)."""
    environ = clean_environ() | {"MLFLOW_TRACKING_URI": f"sqlite:///{cwd}/.mlc/mlflow.db"}
    # `mlflow models serve` runs `uvicorn` from PATH: this interpreter's.
    environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environ['PATH']}"
    with log.open("wb") as output:
        # Its own process group: `mlflow models serve` starts uvicorn as a child process.
        process = subprocess.Popen(
            command, cwd=cwd, env=environ, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url + ready_path, process)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def payloads(eval_csv: Path, rows: int, count: int) -> list[bytes]:
    """`count` dataframe_split bodies of `rows` rows each, cycling through the eval set."""
    import pandas as pd

    frame = pd.read_csv(eval_csv).drop(columns=["churned"])
    records = frame.astype(object).where(frame.notna(), None).values.tolist()
    bodies = []
    for i in range(count):
        start = (i * rows) % (len(records) - rows)
        body = {"dataframe_split": {"columns": list(frame.columns), "data": records[start : start + rows]}}
        bodies.append(json.dumps(body).encode())
    return bodies


async def drive(url: str, bodies: list[bytes], concurrency: int) -> tuple[float, list[float], int]:
    """POST every body with `concurrency` workers; (seconds, latencies of 200s, errors)."""
    import aiohttp

    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []
    errors = 0
    headers = {"Content-Type": "application/json"}

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while not queue.empty():
            body = queue.get_nowait()
            started = time.perf_counter()
            try:
                async with session.post(url + "/invocations", data=body, headers=headers) as response:
                    await response.read()
                    ok = response.status == 200
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            if ok:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return time.perf_counter() - started, latencies, errors


def measure(name: str, url: str, eval_csv: Path, rows: int, requests: int, concurrency: int) -> LoadResult:
    asyncio.run(drive(url, payloads(eval_csv, rows, min(200, requests)), concurrency))  # warm-up
    seconds, latencies, errors = asyncio.run(drive(url, payloads(eval_csv, rows, requests), concurrency))
    return LoadResult(name, rows, requests, seconds, latencies, errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="serve-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"training the churn example in {workdir} ...", file=sys.stderr)
    config = train_churn(workdir)
    project = config.parents[1]
    eval_csv = project / "data" / "eval.csv"
    servers = {
        "mlc-runtime serve": lambda port: (
            [
                *RUNTIME,
                "serve",
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--max-batch-size",
                str(args.max_batch_size),
                "--max-wait-ms",
                str(args.max_wait_ms),
            ],
            "/ready",
        ),
        "mlflow models serve": lambda port: (
            [
                sys.executable,
                "-m",
                "mlflow",
                "models",
                "serve",
                "-m",
                f"models:/{MODEL}@champion",
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-w",
                "1",
            ],
            "/ping",
        ),
    }
    results: list[LoadResult] = []
    for name, command_of in servers.items():
        port = free_port()
        command, ready_path = command_of(port)
        log = workdir / f"{name.split()[0]}.log"
        print(f"{name} on 127.0.0.1:{port} (log {log}) ...", file=sys.stderr)
        with served(command, project, ready_path, port, log) as url:
            for rows in (1, 32):
                results.append(measure(name, url, eval_csv, rows, args.requests, args.concurrency))
    print(
        f"\n{args.requests} requests per row, {args.concurrency} concurrent connections, 127.0.0.1, "
        f"one server process each; mlc micro-batching {args.max_batch_size} rows / {args.max_wait_ms:g} ms\n"
    )
    print("| server | rows/request | requests/s | p50 ms | p95 ms | errors |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for result in sorted(results, key=lambda r: (r.rows, r.server)):
        print(result.row())


if __name__ == "__main__":
    main()
