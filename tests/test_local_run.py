"""`mlc run`: the pods' runtime command, on this machine, with a local runtime config."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from mlc.compiler.errors import ExitCode
from mlc.compiler.pipeline import compile_spec_file
from spec_fixtures import REPO_ROOT

CHURN = REPO_ROOT / "examples" / "churn"
MLC = [sys.executable, "-c", "from mlc.compiler.cli import main; main()"]


def run_mlc(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | (env or {})
    return subprocess.run([*MLC, *args], cwd=cwd, env=environ, capture_output=True, text=True)


def test_print_config_uses_a_local_store_without_a_tracking_server(tmp_path: Path) -> None:
    shutil.copytree(CHURN, tmp_path / "churn")
    done = run_mlc("run", "train", "--env", "production", "--print-config", cwd=tmp_path / "churn")
    config = json.loads(done.stdout)
    assert config["tracking_uri"] == "sqlite:///.mlc/mlflow.db"
    assert (config["environment"], config["train"]["gpus_per_node"]) == ("production", 1)
    overridden = run_mlc(
        "run", "train", "--print-config", cwd=tmp_path / "churn", env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"}
    )
    assert json.loads(overridden.stdout)["tracking_uri"] == "http://127.0.0.1:5000"


def test_unknown_environment_is_a_usage_error(tmp_path: Path) -> None:
    done = run_mlc("run", "train", "--env", "nope", "-f", str(CHURN / "mlproject.yaml"), cwd=tmp_path)
    assert done.returncode == ExitCode.USAGE and "environments: local, staging, production" in done.stderr


def test_run_executes_the_pod_command_with_a_local_config(tmp_path: Path) -> None:
    project = tmp_path / "churn"
    shutil.copytree(CHURN, project)
    stub_dir = tmp_path / "bin"
    stub_dir.mkdir()
    record = tmp_path / "args.json"
    stub = stub_dir / "mlc-runtime"  # stands in for the runtime: records what it was given
    stub.write_text(
        f"#!{sys.executable}\nimport json, os, sys\njson.dump({{'argv': sys.argv[1:], 'cwd': os.getcwd()}}, open({str(record)!r}, 'w'))\nsys.exit(3)\n"
    )
    stub.chmod(0o755)
    env = {"PATH": f"{stub_dir}{os.pathsep}{os.environ['PATH']}"}
    done = run_mlc("run", "serve", "--env", "staging", cwd=project, env=env)
    assert done.returncode == 3  # the job's exit code is mlc run's
    seen = json.loads(record.read_text())
    assert Path(seen["cwd"]) == project
    assert seen["argv"] == ["serve", "--config", ".mlc/staging/runtime-config.json", "--port", "8080"]
    local = json.loads((project / ".mlc" / "staging" / "runtime-config.json").read_text())
    # The pod runs the same arguments against the ConfigMap's copy of the same config.
    compiled = compile_spec_file(project / "mlproject.yaml")
    deployment = next(a for a in compiled.artifacts if a.path == "deploy/staging/deployment-churn-serve.yaml")
    pod = yaml.safe_load(deployment.content)["spec"]["template"]["spec"]["containers"][0]
    assert pod["command"][1:] == ["serve", "--config", "/etc/mlc/runtime-config.json", "--port", "8080"]
    config_map = next(a for a in compiled.artifacts if a.path.startswith("deploy/staging/configmap-"))
    in_cluster = json.loads(yaml.safe_load(config_map.content)["data"]["runtime-config.json"])
    assert {k: v for k, v in local.items() if k != "tracking_uri"} == {
        k: v for k, v in in_cluster.items() if k != "tracking_uri"
    }


def test_sigterm_to_mlc_run_stops_the_runtime_itself(tmp_path: Path) -> None:
    """`mlc run` becomes the runtime (exec): the process a supervisor signals is the one serving."""
    project = tmp_path / "churn"
    shutil.copytree(CHURN, project)
    stub_dir = tmp_path / "bin"
    stub_dir.mkdir()
    pid_file = tmp_path / "runtime.pid"
    stub = stub_dir / "mlc-runtime"  # a server that runs until it is signalled
    stub.write_text(
        f"#!{sys.executable}\nimport os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n"
    )
    stub.chmod(0o755)
    environ = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    environ["PATH"] = f"{stub_dir}{os.pathsep}{environ['PATH']}"
    process = subprocess.Popen([*MLC, "run", "serve", "--env", "staging"], cwd=project, env=environ, text=True)
    try:
        deadline = time.monotonic() + 60
        while not pid_file.is_file() or not pid_file.read_text():
            assert process.poll() is None and time.monotonic() < deadline, "the runtime never started"
            time.sleep(0.05)
        assert int(pid_file.read_text()) == process.pid  # no child left to orphan: mlc run is the runtime
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == -signal.SIGTERM
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_every_job_the_compiler_runs_is_a_runtime_command() -> None:
    """The contract's jobs are what `mlc run` offers and what pods call: each must exist."""
    from mlc.runtime.cli import main as runtime_main
    from mlc.runtime.contract import JOBS

    assert set(JOBS) <= set(runtime_main.commands), set(JOBS) - set(runtime_main.commands)
