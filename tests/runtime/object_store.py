"""The churn example's bucket on a real S3 API: moto's server in this process, on 127.0.0.1.

The example's staging and production environments read `s3://acme-ml/churn/...` (their jobs hold
only the image's code). `churn_bucket()` starts the server, creates the bucket and uploads the
example's data where those environments name it; its `environment()` is what a pod gets: the
credentials (from the Secret the spec's `secrets:` names) and the endpoint of an S3-compatible
store (`AWS_ENDPOINT_URL`, as a pod pointed at MinIO gets it from a Secret).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CHURN_DATA = REPO / "examples" / "churn" / "data"
BUCKET = "acme-ml"
SECRET = "churn-object-store"  # the Kubernetes Secret the example's `secrets:` names
# Where the example's environments read their data (examples/churn/mlproject.yaml).
CHURN_OBJECTS = {
    "churn/train.csv": "train.csv",
    "churn/eval.csv": "eval.csv",
    "churn/staging/live/2026-11-22.csv": "live.csv",
    "churn/production/live/2026-11-22.csv": "live.csv",
}


@dataclass(frozen=True)
class ObjectStore:
    endpoint: str
    client: Any  # boto3's S3 client

    def secret(self) -> dict[str, str]:
        """The keys of the Secret the example's pods read their S3 credentials from."""
        return {"access_key_id": "testing", "secret_access_key": "testing"}

    def environment(self) -> dict[str, str]:
        """What a pod gets besides its `secretKeyRef`s: the store's endpoint and region."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",  # never wait for an instance metadata service
        }

    def keys(self, prefix: str) -> list[str]:
        listing = self.client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
        return sorted(item["Key"] for item in listing)


@contextlib.contextmanager
def churn_bucket() -> Iterator[ObjectStore]:
    """moto's S3 server with the churn example's data uploaded; stopped on exit."""
    try:
        import boto3
        from moto.server import ThreadedMotoServer
    except ImportError as error:  # moto[server] is in the dev extra
        pytest.skip(f"no S3 API to test against: {error}; pip install 'moto[server]'")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
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
        for key, name in CHURN_OBJECTS.items():
            client.upload_file(str(CHURN_DATA / name), BUCKET, key)
        yield ObjectStore(endpoint, client)
    finally:
        server.stop()
