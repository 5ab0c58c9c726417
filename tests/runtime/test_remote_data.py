"""Data on a real S3 API: moto's server, started in this process on 127.0.0.1 (no Docker, no MinIO).

In a cluster, data, `drift.current.uri` and batch input/output are s3:// or gs:// URIs. Every
runtime command finds its files through `datasets.locate_data_files`, so the same files must
give the same answers from a bucket as from disk: `validate-data`, `profile`/`drift` (as the
CronJob runs it, from `drift.current.uri`) and `batch` are run as processes on a single file, a
directory of files and a glob, and their outputs compared byte for byte with the same data read
locally. A missing bucket or key, refused credentials, an unreachable endpoint and an unknown
scheme are one `error:` line with the command's documented exit code.

The processes reach the server through `AWS_ENDPOINT_URL`, as a pod pointed at MinIO would
(one test uses `AWS_ENDPOINT_URL_S3`, or the endpoint in the URI: `?endpoint_override=...`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from checkpoint_script import LINEAGE, checkpoint_script
from served_project import RUNTIME_CLI, rows_csv, toy_rows, train_served_project

try:
    import boto3
    from moto.server import ThreadedMotoServer
except ImportError as error:  # moto[server] is in the dev extra: without it there is no S3 API here
    pytest.skip(
        f"no S3 API to test against: moto[server] cannot be imported ({error}); pip install 'moto[server]'",
        allow_module_level=True,
    )

BUCKET = "mlc-data"
SHIFTED = frozenset({"x0", "x1", "c0"})  # 3 of the 5 contract features: the dataset drifts (share 0.6 >= 0.5)
# The same current data, three ways: one file, a folder of files (with bookkeeping files a
# reader must skip), a glob over CSV files.
LAYOUTS = {
    "file": "current/one.parquet",
    "folder": "current/parts/",
    "glob": "current/csv/part-[0-9]*.csv",  # `[` cannot be in a URI: the locator splits the glob off
}


@dataclass
class S3:
    endpoint: str
    client: Any

    def upload(self, folder: Path, prefix: str = "") -> None:
        """Every file under `folder` to s3://BUCKET/<prefix><relative path>."""
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                self.client.upload_file(str(path), BUCKET, prefix + path.relative_to(folder).as_posix())

    def download(self, prefix: str) -> dict[str, bytes]:
        """{key below prefix: bytes} of every object under s3://BUCKET/<prefix>."""
        listing = self.client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
        return {
            item["Key"][len(prefix) :]: self.client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
            for item in listing
            if not item["Key"].endswith("/")
        }

    def env(self, **overrides: str | None) -> dict[str, str]:
        """A process environment with this endpoint and test credentials (and nothing AWS of the host's)."""
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_", "TOY_"))}
        environ |= {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",  # never wait for an instance metadata service
        }
        for key, value in overrides.items():
            if value is None:
                environ.pop(key, None)
            else:
                environ[key] = value
        return environ

    @contextlib.contextmanager
    def authentication(self) -> Iterator[None]:
        """moto checks signatures and access keys (it accepts anything by default) while inside."""
        self._reset_auth(b"0")
        try:
            yield
        finally:
            self._reset_auth(b"inf")

    def _reset_auth(self, count: bytes) -> None:
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/reset-auth", data=count, method="POST", headers={"Content-Type": "text/plain"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=BUCKET)
    try:
        yield S3(endpoint, client)
    finally:
        server.stop()


def run(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RUNTIME_CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The error line of a failed command, after checking it is the only output and no traceback."""
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    return done.stderr


# ---------------------------------------------------------------- drift and profile
def drift_table(rows: int, seed: int, shifted: frozenset[str] = frozenset()) -> pa.Table:
    """The contract of conftest's `runtime_config`: x0..x2 normal (shifted: +0.5), c0 a|b|c, b0 bool."""
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {
        name: rng.normal(size=rows) + (0.5 if name in shifted else 0.0) for name in ("x0", "x1", "x2")
    }
    probabilities = [0.3, 0.3, 0.4] if "c0" in shifted else [0.5, 0.3, 0.2]
    columns["c0"] = rng.choice(["a", "b", "c"], size=rows, p=probabilities).tolist()
    columns["b0"] = (rng.random(rows) < 0.3).tolist()
    return pa.table(columns)


@pytest.fixture(scope="module")
def drift_data(s3: S3, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Reference and current data on disk under the returned folder, and the same files in the bucket."""
    root = tmp_path_factory.mktemp("drift-data")
    (root / "reference").mkdir()
    reference = drift_table(20_000, seed=1)
    for part in range(2):
        pq.write_table(reference.slice(part * 10_000, 10_000), root / f"reference/part-{part}.parquet")
    current = drift_table(3000, seed=3, shifted=SHIFTED)
    (root / "current/parts").mkdir(parents=True)
    (root / "current/csv").mkdir()
    pq.write_table(current, root / "current/one.parquet")
    for part in range(3):
        chunk = current.slice(part * 1000, 1000)
        pq.write_table(chunk, root / f"current/parts/part-{part}.parquet")
        pacsv.write_csv(chunk, root / f"current/csv/part-{part}.csv")
    # What Spark and partial writes leave in a data folder: a reader must not take them for data.
    (root / "current/parts/_SUCCESS").write_bytes(b"")
    (root / "current/parts/.part-0.parquet.crc").write_bytes(b"\x00crc")
    (root / "current/parts/_temporary/0").mkdir(parents=True)
    (root / "current/parts/_temporary/0/part-9.parquet").write_bytes(b"half a file")
    (root / "current/csv/README.txt").write_text("not data\n")
    s3.upload(root)
    return root


@pytest.fixture(scope="module")
def profile_path(drift_data: Path) -> Path:
    """The reference profile, built from the local files."""
    path = drift_data / "profile.json"
    done = run("profile", "--data", "reference/", "-o", str(path), cwd=drift_data, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    return path


def test_profile_of_a_bucket_folder_is_byte_identical_to_the_local_one(s3, drift_data, profile_path, tmp_path):
    done = run(
        "profile", "--data", f"s3://{BUCKET}/reference/", "-o", str(tmp_path / "p.json"), cwd=tmp_path, env=s3.env()
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "profiled 20000 rows, 5 features -> " + str(tmp_path / "p.json") + "\n"
    assert (tmp_path / "p.json").read_bytes() == profile_path.read_bytes()


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_drift_cronjob_on_s3_gives_the_local_verdict_byte_for_byte(
    layout, s3, drift_data, profile_path, runtime_config, tmp_path
):
    """`drift --config` reads `drift.current.uri` (as the CronJob does); --data points the same check at disk."""
    config = runtime_config(f"s3://{BUCKET}/{LAYOUTS[layout]}")
    outputs = {}
    for fmt in ("json", "text"):
        args = ["drift", "--config", str(config), "--profile", str(profile_path), "--format", fmt]
        remote = run(*args, cwd=tmp_path, env=s3.env())
        local = run(*args, "--data", str(drift_data / LAYOUTS[layout]), cwd=tmp_path, env=s3.env())
        assert remote.returncode == local.returncode == 1, remote.stderr + local.stderr  # 1: drift
        assert remote.stderr == local.stderr == ""
        assert remote.stdout == local.stdout  # byte for byte
        outputs[fmt] = remote.stdout
    document = json.loads(outputs["json"])
    assert {name for name, feature in document["features"].items() if feature["drifted"]} == SHIFTED
    assert document["dataset"]["rows_current"] == 3000  # the bookkeeping files were not read
    assert "dataset: DRIFT: 3/5 features drifted" in outputs["text"]


@pytest.mark.parametrize("how", ["AWS_ENDPOINT_URL_S3", "endpoint_override"])
def test_other_ways_to_name_the_endpoint(how, s3, drift_data, profile_path, tmp_path):
    """The S3-only variable, or the endpoint in the URI (`?endpoint_override=host:port&scheme=http`)."""
    uri = f"s3://{BUCKET}/current/parts/"
    if how == "endpoint_override":
        uri += f"?endpoint_override={s3.endpoint.removeprefix('http://')}&scheme=http"
        env = s3.env(AWS_ENDPOINT_URL=None)
    else:
        env = s3.env(AWS_ENDPOINT_URL=None, AWS_ENDPOINT_URL_S3=s3.endpoint)
    args = ["drift", "--profile", str(profile_path), "--format", "json", "--data"]
    remote = run(*args, uri, cwd=tmp_path, env=env)
    local = run(*args, str(drift_data / "current/parts"), cwd=tmp_path, env=s3.env())
    assert remote.returncode == local.returncode == 1, remote.stderr
    assert remote.stdout == local.stdout


# ---------------------------------------------------------------- validate-data
@pytest.fixture
def contract_data(s3: S3, tmp_path: Path) -> Path:
    """Data for conftest's contract (x in [0, 10], n >= 0 nullable, color red|blue, label) on disk and in the bucket."""
    folder = tmp_path / "data"
    (folder / "parts").mkdir(parents=True)
    (folder / "train.csv").write_text(rows_csv(toy_rows(300, seed=1), label=True))
    table = pacsv.read_csv(folder / "train.csv")
    pq.write_table(table.slice(0, 150), folder / "parts/part-0.parquet")
    above_max = pa.array([11.5] * 3 + table.column("x").to_pylist()[153:])
    pq.write_table(table.slice(150).set_column(0, "x", above_max), folder / "parts/part-1.parquet")
    for part in range(2):
        (folder / f"day-{part}.csv").write_text(rows_csv(toy_rows(40, seed=10 + part), label=True))
    s3.upload(folder, f"validate/{tmp_path.name}/")
    return tmp_path


@pytest.mark.parametrize(
    ("uri", "sample", "code"),
    [
        ("train.csv", None, 0),  # one file
        ("parts/", None, 1),  # a folder of parquet files, 3 rows above max
        ("day-*.csv", "50", 0),  # a glob, sampled
    ],
)
def test_validate_data_reads_the_bucket_like_the_disk(uri, sample, code, s3, contract_data, write_config):
    remote_uri = f"s3://{BUCKET}/validate/{contract_data.name}/{uri}"
    reports = {}
    for where, data_uri in (("remote", remote_uri), ("local", f"data/{uri}")):
        config = write_config(data={"train": {"uri": data_uri, "format": None}})
        args = [
            "validate-data",
            "--config",
            str(config),
            "--dataset",
            "train",
            *(["--sample", sample] if sample else []),
        ]
        done = run(*args, cwd=contract_data, env=s3.env())
        assert done.returncode == code, done.stdout + done.stderr
        assert done.stderr == ""
        reports[where] = done.stdout
    assert reports["remote"].startswith(f"dataset train ({remote_uri}): ")
    assert reports["remote"].replace(remote_uri, f"data/{uri}") == reports["local"]
    if code == 1:
        assert "above max 10: 3 row(s), e.g. row 150: 11.5" in reports["remote"]


# ---------------------------------------------------------------- batch
@pytest.fixture(scope="module")
def scoring_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("batch-s3")
    return root, train_served_project(root)


def test_batch_scores_bucket_files_into_the_bucket_like_local_files(s3, scoring_project, tmp_path):
    root, config_path = scoring_project
    inputs = tmp_path / "batch-in"
    (inputs / "more").mkdir(parents=True)
    for i in range(3):
        (inputs / f"part-{i}.csv").write_text(rows_csv(toy_rows(40 + i, seed=200 + i)))
    pq.write_table(pa.Table.from_pylist(toy_rows(30, seed=299)), inputs / "more/part-3.parquet")
    s3.upload(inputs, "batch-in/")
    outputs, printed = {}, ""
    for where, (source, target) in {
        "remote": (f"s3://{BUCKET}/batch-in/", f"s3://{BUCKET}/batch-out/"),
        "local": (str(inputs), str(tmp_path / "batch-out")),
    }.items():
        config = json.loads(config_path.read_text())
        config["serve"]["batch"] |= {"input": source, "output": target}
        (tmp_path / f"{where}.json").write_text(json.dumps(config))
        for shard in ("0", "1"):
            args = ["batch", "--config", str(tmp_path / f"{where}.json"), "--shard", shard, "--shards", "2"]
            done = run(*args, cwd=root, env=s3.env())
            assert done.returncode == 0, done.stderr[-2000:]
            printed += done.stdout if where == "remote" else ""
    assert (
        f"s3://{BUCKET}/batch-in/more/part-3.parquet: 30 rows -> s3://{BUCKET}/batch-out/more/part-3.predictions.parquet"
        in printed.splitlines()
    )
    outputs["remote"] = s3.download("batch-out/")
    local_root = tmp_path / "batch-out"
    outputs["local"] = {
        p.relative_to(local_root).as_posix(): p.read_bytes() for p in local_root.rglob("*") if p.is_file()
    }
    assert sorted(outputs["remote"]) == [
        "more/part-3.predictions.parquet",
        *[f"part-{i}.predictions.parquet" for i in range(3)],
    ]
    assert outputs["remote"] == outputs["local"]  # byte for byte, no temporary left behind


def test_batch_into_a_missing_bucket_is_one_line_exit_1(s3, scoring_project, tmp_path):
    root, config_path = scoring_project
    (tmp_path / "in").mkdir()
    (tmp_path / "in/part-0.csv").write_text(rows_csv(toy_rows(5, seed=1)))
    config = json.loads(config_path.read_text())
    config["serve"]["batch"] = {"input": str(tmp_path / "in"), "output": "s3://no-such-bucket/out/", "parallelism": 1}
    (tmp_path / "config.json").write_text(json.dumps(config))
    done = run("batch", "--config", str(tmp_path / "config.json"), cwd=root, env=s3.env())
    assert done.returncode == 1
    assert "s3://no-such-bucket/out/part-0.predictions.parquet: cannot write: the bucket does not exist" in (
        one_error_line(done)
    )


# ---------------------------------------------------------------- errors
MISSING_KEY = f"s3://{BUCKET}/current/nope.parquet"
MISSING_BUCKET = "s3://no-such-bucket/current/one.parquet"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (MISSING_KEY, f"error: {MISSING_KEY}: no such key or prefix in bucket '{BUCKET}'"),
        (f"s3://{BUCKET}/nothing-here/", f"s3://{BUCKET}/nothing-here/: no such key or prefix in bucket '{BUCKET}'"),
        (MISSING_BUCKET, f"error: {MISSING_BUCKET}: bucket 'no-such-bucket' does not exist"),
        ("s3://no-such-bucket/current/*.parquet", "bucket 'no-such-bucket' does not exist"),
        (f"s3://{BUCKET}/current/*.nothing", "matches no data files"),
        ("foo://bucket/x.parquet", "error: foo://bucket/x.parquet: unsupported URI scheme 'foo://'"),
    ],
)
def test_missing_data_is_one_line_exit_2(uri, message, s3, drift_data, profile_path, tmp_path):
    for args in (["drift", "--profile", str(profile_path)], ["profile", "-o", str(tmp_path / "p.json")]):
        done = run(*args, "--data", uri, cwd=tmp_path, env=s3.env())
        assert done.returncode == 2
        assert message in one_error_line(done)
        assert done.stdout == ""
    assert not (tmp_path / "p.json").exists()


def test_validate_data_on_a_missing_key_or_bucket_exits_2(s3, write_config, tmp_path):
    for uri, message in ((MISSING_KEY, "no such key or prefix"), (MISSING_BUCKET, "bucket 'no-such-bucket' does")):
        config = write_config(data={"train": {"uri": uri, "format": None}})
        done = run("validate-data", "--config", str(config), "--dataset", "train", cwd=tmp_path, env=s3.env())
        assert done.returncode == 2
        assert one_error_line(done).startswith(f"error: {uri}: ") and message in done.stderr


@pytest.mark.parametrize(
    "credentials",
    [
        {"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": "wrong"},
        # None at all: no keys, no profile files, no instance metadata (an unsigned request).
        {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"},
    ],
    ids=["bad-credentials", "no-credentials"],
)
def test_refused_credentials_are_one_line_exit_2(credentials, s3, drift_data, profile_path, tmp_path):
    uri = f"s3://{BUCKET}/{LAYOUTS['file']}"
    env = s3.env(**credentials, AWS_CONFIG_FILE="/nonexistent", HOME=str(tmp_path))
    with s3.authentication():
        done = run("drift", "--profile", str(profile_path), "--data", uri, cwd=tmp_path, env=env)
    assert done.returncode == 2
    line = one_error_line(done)
    assert line.startswith(f"error: {uri}: cannot read: access denied: check the credentials")
    assert "AWS_ACCESS_KEY_ID" in line


def test_an_unreachable_endpoint_is_one_line_exit_2(s3, profile_path, tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    uri = f"s3://{BUCKET}/{LAYOUTS['file']}"
    env = s3.env(AWS_ENDPOINT_URL=f"http://127.0.0.1:{closed}")
    done = run("drift", "--profile", str(profile_path), "--data", uri, cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert "cannot reach the object store: check the network and the endpoint" in one_error_line(done)


def test_checkpoints_live_in_the_bucket_and_clearing_removes_them(s3, tmp_path):
    """Training's checkpoints on S3: written under the lineage's prefix (no folder markers),
    read back, cleared; a bucket that is not there is one line naming S3's settings."""
    run, env, uri = checkpoint_script(tmp_path), s3.env(), f"s3://{BUCKET}/checkpoints/"
    assert run(uri, "save", env) == "saved"
    assert sorted(s3.download("checkpoints/")) == [f"{LINEAGE}/checkpoint.pt", f"{LINEAGE}/run.json"]
    assert json.loads(run(uri, "load", env)) == {"state": {"epoch": 3}, "run": "run-1"}
    assert run(uri, "clear", env) == "cleared"
    assert s3.download("checkpoints/") == {}
    line = run("s3://no-such-bucket/checkpoints/", "save", env)
    assert line.startswith(f"s3://no-such-bucket/checkpoints/{LINEAGE}: cannot write checkpoint"), line
    assert "the bucket does not exist: check the bucket name (and AWS_ENDPOINT_URL" in line
