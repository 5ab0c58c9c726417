"""The prediction log on Google Cloud Storage's API: gcp-storage-emulator, started in this process
on 127.0.0.1 (its JSON API, which pyarrow's GcsFileSystem speaks).

The server writes its log to `gs://`, and the drift job reads its window from there, through the
same `pyarrow.fs` code as for s3:// and local folders. A process reaches the emulator as a pod
reaches GCS: `CLOUD_STORAGE_EMULATOR_ENDPOINT` names the endpoint (or `?endpoint_override=` in
the URI) and `GOOGLE_APPLICATION_CREDENTIALS` a service-account key, which Google's client signs
its requests with itself (no token server is called, so none is needed here). Without a
credentials file the client looks for a metadata server and never answers offline.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from checkpoint_script import LINEAGE, checkpoint_script
from served_project import CONFIG, RUNTIME_CLI, free_port, get, metric_value, post, running_server, toy_rows
from served_project import train_served_project as train_toy

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from gcp_storage_emulator.server import create_server
except ImportError as error:  # gcp-storage-emulator is in the dev extra
    pytest.skip(f"no GCS API to test against: {error}", allow_module_level=True)

BUCKET = "mlc-log"
LOG = f"gs://{BUCKET}/predictions/"


def service_account_key(path: Path) -> Path:
    """A service-account key file for a made-up account (the emulator checks no signature)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    account = {
        "type": "service_account",
        "project_id": "mlc-test",
        "private_key_id": "mlc-test-key",
        "private_key": pem,
        "client_email": "drift@mlc-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "http://127.0.0.1:1/token",  # never called: requests carry self-signed JWTs
    }
    path.write_text(json.dumps(account))
    return path


@pytest.fixture(scope="module")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The emulator with one bucket; the environment a process reaches it with."""
    logging.getLogger("gcp_storage_emulator").setLevel(logging.WARNING)
    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=BUCKET)
    server.start()
    key = service_account_key(tmp_path_factory.mktemp("gcs") / "key.json")
    try:
        yield {
            "GOOGLE_APPLICATION_CREDENTIALS": str(key),
            "CLOUD_STORAGE_EMULATOR_ENDPOINT": f"http://127.0.0.1:{port}",
        }
    finally:
        server.stop()


def bucket_files(env: dict[str, str], prefix: str) -> list[str]:
    """The objects under `prefix`, listed in a child process with `env` (Google's client reads
    its endpoint and credentials once per process)."""
    listing = subprocess.run(
        [
            *RUNTIME_CLI[:1],
            "-c",
            "import sys, pyarrow.fs as f\n"
            "fs, path = f.FileSystem.from_uri(sys.argv[1])\n"
            "for info in fs.get_file_info(f.FileSelector(path, recursive=True)):\n"
            "    print(info.path) if info.type == f.FileType.File else None",
            prefix,
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listing.returncode == 0, listing.stderr
    return sorted(listing.stdout.split())


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gcs-project")
    train_toy(root)
    return root


def drift_config(project: Path, uri: str) -> Path:
    """The served toy project's runtime config with a drift job reading `uri` as the prediction log."""
    config: dict[str, Any] = {
        **CONFIG,
        "drift": {"current": {"uri": uri, "window_seconds": 3600, "prediction_log": True}, "method": "auto"},
    }
    path = project / f"drift-{abs(hash(uri))}.json"
    path.write_text(json.dumps(config))
    return path


def runtime(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RUNTIME_CLI, *args], cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=600
    )


def test_the_server_logs_to_gs_and_the_drift_job_reads_its_window_there(gcs, project, tmp_path) -> None:
    config = project / ".mlc/test/runtime-config.json"
    requests = toy_rows(40, seed=7)
    with running_server(
        project, config, "--log-uri", LOG, "--log-sample-rate", "1", "--log-flush-seconds", "0.05", **gcs
    ) as server:
        for row in requests:
            status, _ = post(server.url + "/invocations", json.dumps({"dataframe_records": [row]}))
            assert status == 200
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            metrics = get(server.url + "/metrics")[1].decode()
            if metric_value(metrics, "mlc_request_log_written_total") >= len(requests):
                break
            time.sleep(0.1)
        assert metric_value(metrics, "mlc_request_log_written_total") == len(requests), server.log()
        assert metric_value(metrics, "mlc_request_log_dropped_total") == 0
    written = bucket_files(gcs, LOG)
    assert written and all("/date=" in path and "/hour=" in path for path in written), written

    # The same files on disk: the drift job's verdict on the bucket is the one on the folder.
    local = tmp_path / "predictions"
    copy = subprocess.run(
        [
            *RUNTIME_CLI[:1],
            "-c",
            "import os, sys, pyarrow.fs as f\n"
            "src, path = f.FileSystem.from_uri(sys.argv[1])\n"
            "for info in src.get_file_info(f.FileSelector(path, recursive=True)):\n"
            "    if info.type == f.FileType.File:\n"
            "        target = os.path.join(sys.argv[2], os.path.relpath(info.path, path))\n"
            "        os.makedirs(os.path.dirname(target), exist_ok=True)\n"
            "        f.copy_files(info.path, target, source_filesystem=src, destination_filesystem=f.LocalFileSystem())",
            LOG,
            str(local),
        ],
        env={**os.environ, **gcs},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert copy.returncode == 0, copy.stderr
    profile = tmp_path / "profile.json"
    profiled = runtime(
        "profile", "--config", str(config), "--data", "data/train.csv", "-o", str(profile), cwd=project, env={}
    )
    assert profiled.returncode == 0, profiled.stderr
    verdicts = {}
    for where, uri in (("bucket", LOG), ("disk", str(local))):
        done = runtime(
            "drift",
            "--config",
            str(drift_config(project, uri)),
            "--profile",
            str(profile),
            "--format",
            "json",
            cwd=project,
            env=gcs,
        )
        assert done.returncode in (0, 1), done.stderr
        assert "Traceback" not in done.stderr
        verdicts[where] = done.stdout
    assert verdicts["bucket"] == verdicts["disk"]
    assert json.loads(verdicts["bucket"])["dataset"]["rows_current"] == len(requests)


def test_the_endpoint_can_be_named_in_the_uri(gcs, project, tmp_path) -> None:
    """`?endpoint_override=host:port&scheme=http`, as for an S3-compatible store."""
    endpoint = gcs["CLOUD_STORAGE_EMULATOR_ENDPOINT"].removeprefix("http://")
    uri = f"gs://{BUCKET}/uri-named/?endpoint_override={endpoint}&scheme=http"
    env = {"GOOGLE_APPLICATION_CREDENTIALS": gcs["GOOGLE_APPLICATION_CREDENTIALS"]}
    config = project / ".mlc/test/runtime-config.json"
    data = tmp_path / "train.parquet"
    import pyarrow.csv as pacsv

    pq.write_table(pacsv.read_csv(project / "data/train.csv"), data)
    copied = runtime(
        "profile", "--config", str(config), "--data", str(data), "-o", str(tmp_path / "local.json"), cwd=project, env={}
    )
    assert copied.returncode == 0, copied.stderr
    upload = subprocess.run(
        [
            *RUNTIME_CLI[:1],
            "-c",
            "import sys, pyarrow.fs as f\n"
            "fs, path = f.FileSystem.from_uri(sys.argv[1])\n"
            "f.copy_files(sys.argv[2], path + '/train.parquet', source_filesystem=f.LocalFileSystem(),"
            " destination_filesystem=fs)",
            uri,
            str(data),
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert upload.returncode == 0, upload.stderr
    remote = runtime(
        "profile", "--config", str(config), "--data", uri, "-o", str(tmp_path / "remote.json"), cwd=project, env=env
    )
    assert remote.returncode == 0, remote.stderr
    assert (tmp_path / "remote.json").read_bytes() == (tmp_path / "local.json").read_bytes()


def test_gcs_errors_say_what_to_check_for_gcs(gcs, project) -> None:
    # A bucket that is not there, on the emulator; then an endpoint nothing listens on (a bounded
    # retry: GCS's own default would retry for 15 minutes).
    missing = runtime(
        "drift", "--config", str(drift_config(project, "gs://no-such-bucket/predictions/")), cwd=project, env=gcs
    )
    assert missing.returncode != 0
    (line,) = [line for line in missing.stderr.splitlines() if "no-such-bucket" in line]
    assert "bucket 'no-such-bucket' does not exist" in line and "CLOUD_STORAGE_EMULATOR_ENDPOINT" in line
    assert "AWS" not in line  # the advice is GCS's, not S3's

    closed = {**gcs, "CLOUD_STORAGE_EMULATOR_ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    started = time.monotonic()
    unreachable = runtime(
        "drift", "--config", str(drift_config(project, f"{LOG}?retry_limit_seconds=2")), cwd=project, env=closed
    )
    assert unreachable.returncode != 0 and time.monotonic() - started < 60
    (line,) = [line for line in unreachable.stderr.splitlines() if "cannot reach the object store" in line]
    assert "CLOUD_STORAGE_EMULATOR_ENDPOINT" in line and "AWS" not in line


def test_a_gcs_store_retries_for_a_minute_unless_the_uri_says_otherwise() -> None:
    from mlc.runtime.datasets import GCS_RETRY_LIMIT_SECONDS, open_filesystem

    def retry_limit(uri: str) -> float:
        filesystem, _ = open_filesystem(uri)
        return filesystem.__reduce__()[1][0]["retry_time_limit"].total_seconds()  # GcsOptions, as pickled

    assert retry_limit("gs://bucket/predictions/") == GCS_RETRY_LIMIT_SECONDS == 60
    assert retry_limit("gs://bucket/predictions/*.parquet") == 60
    assert retry_limit("gs://bucket/log?endpoint_override=127.0.0.1:1&scheme=http") == 60
    assert retry_limit("gs://bucket/log?retry_limit_seconds=5") == 5


def test_checkpoints_live_on_gcs_and_an_unreachable_store_is_one_clear_line(gcs, tmp_path) -> None:
    """Checkpoints open their store as the data does: GCS's retry limit and GCS's advice."""
    run, env, uri = checkpoint_script(tmp_path), {**os.environ, **gcs}, f"gs://{BUCKET}/checkpoints/"
    assert json.loads(run(uri, "load", env)) == {"state": None, "run": None}
    assert run(uri, "save", env) == "saved"
    assert json.loads(run(uri, "load", env)) == {"state": {"epoch": 3}, "run": "run-1"}
    assert run(uri, "clear", env) == "cleared"
    assert json.loads(run(uri, "load", env)) == {"state": None, "run": None}
    closed = {**env, "CLOUD_STORAGE_EMULATOR_ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    started = time.monotonic()
    line = run(f"{uri}?retry_limit_seconds=2", "save", closed)
    # One call's retries (GCS's backoff overshoots the 2 s limit a little), not one per folder level.
    assert time.monotonic() - started < 15
    assert line.startswith(f"{uri}{LINEAGE}: cannot write checkpoint"), line
    assert "CLOUD_STORAGE_EMULATOR_ENDPOINT" in line and "\n" not in line
