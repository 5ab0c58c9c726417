"""Benchmark: `mlc-runtime serve` against its peers on the same registered churn model.

Servers, each one process on 127.0.0.1, all started once and loaded in turn:
- mlc-runtime serve (this checkout, its defaults);
- `mlflow models serve --env-manager local` (one worker);
- MLServer 1.7.1 with mlserver-mlflow (what KServe runs for MLflow models), from a separate
  venv this script creates under the work directory (`"parallel_workers": 0`: MLServer 1.7.1's
  inference pool does not start with the current uvloop);
- the floor: a bare ASGI app under the same uvicorn (uvloop, httptools) that decodes the same
  JSON with the same codec and answers a fixed prediction, the most a Python HTTP server does.

Load: wrk (one thread) POSTs `dataframe_split` bodies of 1 and 32 rows (the example's eval set)
to `/invocations` with 1 and 32 connections; every (rows, connections) cell runs each server
for `--seconds`, the servers alternating within each of `--rounds` rounds (so background load
on this machine hits them alike), after a warm-up; a cell reports the median round.
Ready time: each server is started `--starts` times, alternating, and timed from process start
to its ready endpoint answering 200 (model loaded); the median is reported, twice: with the
registry on the project's sqlite file (as `mlc run` has it) and behind an MLflow tracking server
on loopback (`mlflow server`, as in a cluster, where a scale-up resolves the alias over HTTP).
MLServer loads a local model folder either way (under KServe a storage initializer downloads it
before MLServer starts), so its two columns differ only by noise. `uptime`'s load
averages are printed before and after, and the machine's cores, memory and CPU model.

Run from the repo root with the project's venv (mlc importable, e.g. the dev install):

    .venv/bin/python benchmarks/serve_vs_peers.py [--workdir /tmp/serve-peers] [--rounds 3]
        [--seconds 5] [--starts 3] [--servers mlc,mlflow,mlserver,floor]

The MLServer venv (`<workdir>/mlserver-venv`: torch pinned like the project, mlserver,
mlserver-mlflow, pyarrow, and this checkout without dependencies, since the model's code
imports `mlc.runtime`) is created on the first run and reused after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MLC = [sys.executable, "-c", "from mlc.compiler.cli import main; main()"]
MODEL = "churn-classifier"
ENVIRONMENT = "staging"
TORCH = "torch==2.13.0"  # the project's pin (Makefile)
MLSERVER = ("mlserver==1.7.1", "mlserver-mlflow==1.7.1")
SERVER_NAMES = {
    "mlc": "mlc-runtime serve",
    "mlflow": "mlflow models serve",
    "mlserver": "MLServer 1.7.1 + mlserver-mlflow",
    "floor": "floor: bare ASGI, same JSON decode",
}

FLOOR_APP = """
import orjson

ANSWER = orjson.dumps({"predictions": [{"prediction": 0, "probability": 0.5}]})
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            done = "lifespan.shutdown" if message["type"] == "lifespan.shutdown" else "lifespan.startup"
            await send({"type": done + ".complete"})
            if done == "lifespan.shutdown":
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/invocations":
        orjson.loads(body)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})
"""


@dataclass(frozen=True)
class Server:
    """How to start one server and when it is ready."""

    key: str
    command: Callable[[int], list[str]]
    ready_path: str
    environ: dict[str, str]
    cwd: Path


@dataclass(frozen=True)
class Cell:
    """One wrk run's numbers."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


def load_averages() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def machine() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in lines if "model name" in line), platform.processor())
    memory_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[1])
    return f"{os.cpu_count()} cores ({cpu}), {memory_kb / 1024 / 1024:.0f} GiB, Python {platform.python_version()}"


def train_churn(workdir: Path) -> Path:
    """The churn example trained and promoted in `workdir`; the runtime config's path."""
    project = workdir / "churn"
    config = project / ".mlc" / "bench-runtime-config.json"
    if config.is_file():
        return config
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(REPO / "examples" / "churn", project)
    environ = clean_environ()
    environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environ['PATH']}"
    trained = subprocess.run(
        [*MLC, "run", "train", "--env", ENVIRONMENT], cwd=project, env=environ, capture_output=True, text=True
    )
    if trained.returncode != 0:
        sys.exit(f"training failed:\n{trained.stderr[-3000:]}")
    printed = subprocess.run(
        [*MLC, "run", "serve", "--env", ENVIRONMENT, "--print-config"],
        cwd=project,
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    )
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{project}/.mlc/mlflow.db")
    MlflowClient().set_registered_model_alias(MODEL, "champion", "1")
    config.write_text(printed.stdout)
    return config


def model_directory(workdir: Path, project: Path) -> Path:
    """The champion's MLflow model directory (MLServer loads a local path, as under KServe)."""
    target = workdir / "champion-model"
    if not (target / "MLmodel").is_file():
        import mlflow.artifacts

        mlflow.set_tracking_uri(f"sqlite:///{project}/.mlc/mlflow.db")
        shutil.rmtree(target, ignore_errors=True)
        mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{MODEL}@champion", dst_path=str(target))
    return target


def mlserver_venv(workdir: Path) -> Path:
    """A venv with MLServer and mlserver-mlflow (created once); its bin folder."""
    venv = workdir / "mlserver-venv"
    marker = venv / ".installed"
    if not marker.is_file():
        shutil.rmtree(venv, ignore_errors=True)
        print(f"creating {venv} (MLServer, mlserver-mlflow, {TORCH}) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, TORCH], check=True)
        subprocess.run([*pip, *MLSERVER, "pyarrow"], check=True)
        subprocess.run([*pip, "--no-deps", str(REPO)], check=True)  # the model's code imports mlc.runtime
        marker.touch()
    return venv / "bin"


def mlserver_folder(workdir: Path, model: Path, port: int) -> Path:
    folder = workdir / f"mlserver-{port}"
    folder.mkdir(exist_ok=True)
    settings = {
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "host": "127.0.0.1",
        "parallel_workers": 0,
    }
    (folder / "settings.json").write_text(json.dumps(settings))
    model_settings = {
        "name": MODEL,
        "implementation": "mlserver_mlflow.MLflowRuntime",
        "parameters": {"uri": str(model)},
    }
    (folder / "model-settings.json").write_text(json.dumps(model_settings))
    return folder


def servers(workdir: Path, config: Path, wanted: list[str], tracking_uri: str) -> list[Server]:
    project = config.parents[1]
    environ = clean_environ() | {"MLFLOW_TRACKING_URI": tracking_uri}
    # `mlflow models serve` runs `uvicorn` from PATH: this interpreter's.
    environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environ['PATH']}"
    floor = workdir / "floor_app.py"
    floor.write_text(FLOOR_APP)
    made = {
        "mlc": Server(
            "mlc",
            lambda port: [
                sys.executable,
                "-c",
                "from mlc.runtime.cli import main; main()",
                "serve",
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            "/ready",
            environ,
            project,
        ),
        "mlflow": Server(
            "mlflow",
            lambda port: [
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
            environ,
            project,
        ),
        "floor": Server(
            "floor",
            lambda port: [
                sys.executable,
                "-m",
                "uvicorn",
                "floor_app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            "/",
            environ,
            workdir,
        ),
    }
    if "mlserver" in wanted:
        bin_dir = mlserver_venv(workdir)
        model = model_directory(workdir, project)
        made["mlserver"] = Server(
            "mlserver",
            lambda port: [str(bin_dir / "mlserver"), "start", str(mlserver_folder(workdir, model, port))],
            "/v2/health/ready",
            clean_environ() | {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
            workdir,
        )
    return [made[key] for key in wanted]


def tracking_server(workdir: Path, project: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`mlflow server` on loopback over the project's sqlite store; (process, tracking URI)."""
    port = free_port()
    log = (workdir / "mlflow-server.log").open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{project}/.mlc/mlflow.db",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=workdir,
        env=clean_environ() | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as response:
                if response.status == 200:
                    return process, url
        except OSError:
            time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    sys.exit("the MLflow tracking server did not start (see mlflow-server.log)")


def measure_ready(chosen: list[Server], attempt: int, workdir: Path, ready: dict[str, list[float]], label: str) -> None:
    """Start each server once (the order rotating with `attempt`); add its seconds from start to ready."""
    for server in chosen[attempt % len(chosen) :] + chosen[: attempt % len(chosen)]:
        running = Running(server, workdir / f"{server.key}.log")
        try:
            ready.setdefault(server.key, []).append(running.wait_ready())
        finally:
            running.stop()
    times = ", ".join(f"{key} {seconds[-1]:.2f}s" for key, seconds in ready.items())
    print(f"start round {attempt + 1} ({label}): {times}", file=sys.stderr)


class Running:
    """A started server process (its own process group: some servers start children)."""

    def __init__(self, server: Server, log: Path) -> None:
        self.server = server
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        with log.open("ab") as output:
            self.started = time.perf_counter()
            self.process = subprocess.Popen(
                server.command(self.port),
                cwd=server.cwd,
                env=server.environ,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 300) -> float:
        """Seconds from process start until the ready endpoint answered 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"{self.server.key} exited with {self.process.returncode} before it was ready")
            try:
                with urllib.request.urlopen(self.url + self.server.ready_path, timeout=1) as response:
                    if response.status == 200:
                        return time.perf_counter() - self.started
            except OSError:
                pass
            time.sleep(0.01)
        sys.exit(f"timed out waiting for {self.server.key}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def wrk_script(directory: Path, eval_csv: Path, rows: int) -> Path:
    """A wrk Lua script POSTing one `dataframe_split` body of `rows` rows and counting non-200 answers."""
    import csv

    with eval_csv.open() as handle:
        reader = csv.DictReader(handle)
        columns = [name for name in reader.fieldnames or [] if name != "churned"]
        records = [row for _, row in zip(range(rows), reader, strict=False)]

    def value(text: str) -> object:
        if text == "":
            return None
        try:
            return float(text)
        except ValueError:
            return text

    data = [[value(record[column]) for column in columns] for record in records]
    body = json.dumps({"dataframe_split": {"columns": columns, "data": data}})
    script = directory / f"post-{rows}.lua"
    script.write_text(
        f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [==[{body}]==]\n'
    )
    return script


def parse_wrk(output: str) -> Cell:
    def duration_ms(text: str) -> float:
        number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])
    p50 = duration_ms(re.search(r"^\s+50%\s+(\S+)", output, re.M)[1])
    p99 = duration_ms(re.search(r"^\s+99%\s+(\S+)", output, re.M)[1])
    errors = int(m[1]) if (m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)) else 0
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output):
        errors += sum(int(n) for n in m.groups())
    return Cell(rate, p50, p99, errors)


def run_wrk(url: str, script: Path, connections: int, seconds: int) -> Cell:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s", "-s", str(script)]
    done = subprocess.run(
        [*command, url],
        capture_output=True,
        text=True,
        check=True,
    )
    return parse_wrk(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--servers", default="mlc,mlflow,mlserver,floor")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    wanted = [key.strip() for key in args.servers.split(",") if key.strip()]
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="serve-peers-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"work directory {workdir}", file=sys.stderr)
    config = train_churn(workdir)
    project = config.parents[1]
    eval_csv = project / "data" / "eval.csv"
    sqlite_uri = f"sqlite:///{project}/.mlc/mlflow.db"
    chosen = servers(workdir, config, wanted, sqlite_uri)
    before = load_averages()

    ready: dict[str, list[float]] = {}
    ready_http: dict[str, list[float]] = {}
    tracking, http_uri = tracking_server(workdir, project)
    try:
        over_http = servers(workdir, config, wanted, http_uri)
        for attempt in range(args.starts):  # the two registries alternate too
            measure_ready(chosen, attempt, workdir, ready, "sqlite file")
            measure_ready(over_http, attempt, workdir, ready_http, "tracking server")
    finally:
        os.killpg(tracking.pid, signal.SIGTERM)
        tracking.wait(timeout=30)

    scripts = {rows: wrk_script(workdir, eval_csv, rows) for rows in (1, 32)}
    cells: dict[tuple[str, int, int], list[Cell]] = {}
    started = [Running(server, workdir / f"{server.key}.log") for server in chosen]
    try:
        for running in started:
            running.wait_ready()
        for running in started:  # warm-up: every code path taken once, caches filled
            for rows in (1, 32):
                run_wrk(running.url + "/invocations", scripts[rows], 8, 1)
        for rows in (1, 32):
            for connections in (1, 32):
                for round_index in range(args.rounds):
                    turn = round_index % len(started)
                    for running in started[turn:] + started[:turn]:
                        cell = run_wrk(running.url + "/invocations", scripts[rows], connections, args.seconds)
                        cells.setdefault((running.server.key, rows, connections), []).append(cell)
                print(f"done: {rows} rows, {connections} connections ({load_averages()})", file=sys.stderr)
    finally:
        for running in started:
            running.stop()
    after = load_averages()

    def median(key: str, rows: int, connections: int, field: str) -> float:
        return statistics.median(getattr(cell, field) for cell in cells[(key, rows, connections)])

    def errors(key: str) -> int:
        return sum(cell.errors for (k, _, _), runs in cells.items() if k == key for cell in runs)

    print(f"\nmachine: {machine()}")
    print(f"load before: {before}\nload after:  {after}")
    print(
        f"wrk -t1, {args.seconds:g} s per server per cell, {args.rounds} alternating rounds (median), "
        f"dataframe_split to /invocations; ready: median of {args.starts} alternating starts\n"
    )
    header = (
        "| server | req/s 1 row, 32 conns | p99 ms | req/s 32 rows, 32 conns | p99 ms "
        "| p50 ms 1 row, 1 conn | p50 ms 32 rows, 1 conn | req/s 1 row, 1 conn "
        "| ready s, tracking server | ready s, sqlite file | errors |"
    )
    print(header)
    print("| --- |" + " ---: |" * 10)
    for server in chosen:
        key = server.key
        print(
            f"| {SERVER_NAMES[key]} | {median(key, 1, 32, 'requests_per_second'):,.0f} "
            f"| {median(key, 1, 32, 'p99_ms'):.1f} | {median(key, 32, 32, 'requests_per_second'):,.0f} "
            f"| {median(key, 32, 32, 'p99_ms'):.1f} | {median(key, 1, 1, 'p50_ms'):.2f} "
            f"| {median(key, 32, 1, 'p50_ms'):.2f} | {median(key, 1, 1, 'requests_per_second'):,.0f} "
            f"| {statistics.median(ready_http[key]) if key != 'floor' else float('nan'):.2f} "
            f"| {statistics.median(ready[key]) if key != 'floor' else float('nan'):.2f} | {errors(key)} |"
        )
    if "mlc" in ready:
        print()
        mlc = median("mlc", 1, 32, "requests_per_second")
        for key, factor in (("mlflow", 8.0), ("mlserver", 2.0), ("floor", 0.35)):
            if key in ready:
                peer = median(key, 1, 32, "requests_per_second")
                verdict = "met" if mlc >= factor * peer else "NOT met"
                target = f"target >= {factor:g}x"
                print(f"- throughput at 32 conns, 1 row: mlc {mlc / peer:.2f}x {key} ({target}): {verdict}")
        for rows in (1, 32):
            peers = [median(k, rows, 32, "p99_ms") for k in ready if k not in ("mlc", "floor")]
            if peers:
                mine = median("mlc", rows, 32, "p99_ms")
                verdict = "met" if mine < min(peers) else "NOT met"
                print(f"- p99 at 32 conns, {rows} row(s): mlc {mine:.1f} ms, best peer {min(peers):.1f} ms: {verdict}")
        if "mlflow" in ready:
            mine, theirs = median("mlc", 1, 1, "p50_ms"), median("mlflow", 1, 1, "p50_ms")
            verdict = "met" if mine < theirs else "NOT met"
            print(f"- p50 at 1 conn: mlc {mine:.2f} ms, mlflow {theirs:.2f} ms: {verdict}")
        for label, times in (("tracking server", ready_http), ("sqlite file", ready)):
            mine = statistics.median(times["mlc"])
            verdict = "met" if mine < 3 else "NOT met"
            print(f"- ready after start, registry on the {label}: mlc {mine:.2f} s (target < 3 s): {verdict}")


if __name__ == "__main__":
    main()
