"""Retraining Job from the CronJob, through the real kubernetes client with a faked HTTP layer."""

from __future__ import annotations

import copy
import io
import json

import pytest
import urllib3

from kubernetes import client
from mlc.runtime.retraining import RetrainError, create_job_from_cronjob, job_name, trigger_tags

CRONJOB = {
    "apiVersion": "batch/v1",
    "kind": "CronJob",
    "metadata": {"name": "churn-retrain", "namespace": "ml", "uid": "1234-abcd"},
    "spec": {
        "schedule": "0 3 * * 0",
        "jobTemplate": {
            "metadata": {"labels": {"app": "churn"}, "annotations": {"team": "ml"}},
            "spec": {
                "backoffLimit": 1,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "train", "image": "churn:1", "args": ["mlc-runtime", "train"]}],
                    }
                },
            },
        },
    },
}


class FakePoolManager:
    """Stands in for urllib3.PoolManager: records requests, answers like the API server."""

    def __init__(self, cronjob_status: int = 200) -> None:
        self.requests: list[tuple[str, str, dict | None]] = []
        self.cronjob_status = cronjob_status

    def request(self, method, url, body=None, headers=None, **_):
        payload = json.loads(body) if body else None
        self.requests.append((method, url, payload))
        if method == "GET" and url.endswith("/namespaces/ml/cronjobs/churn-retrain"):
            status, answer = self.cronjob_status, CRONJOB
            if status != 200:
                answer = {"kind": "Status", "code": status, "reason": "NotFound"}
        elif method == "POST" and url.endswith("/apis/batch/v1/namespaces/ml/jobs"):
            status, answer = 201, {**payload, "metadata": {**payload["metadata"], "uid": "j1"}}
        else:
            status, answer = 404, {"kind": "Status", "code": 404}
        return urllib3.HTTPResponse(
            body=io.BytesIO(json.dumps(answer).encode()),
            status=status,
            headers={"Content-Type": "application/json"},
            preload_content=False,
            reason="x",
        )

    def clear(self) -> None:
        pass


def _batch_api(pool: FakePoolManager) -> client.BatchV1Api:
    configuration = client.Configuration(host="https://k8s.invalid")
    api_client = client.ApiClient(configuration)
    api_client.rest_client.pool_manager = pool
    return client.BatchV1Api(api_client)


def test_job_is_created_from_the_cronjob_template_like_kubectl():
    pool = FakePoolManager()
    job = create_job_from_cronjob(_batch_api(pool), "ml", "churn-retrain", now=1_700_000_000)
    assert [(m, u.split("k8s.invalid")[1]) for m, u, _ in pool.requests] == [
        ("GET", "/apis/batch/v1/namespaces/ml/cronjobs/churn-retrain"),
        ("POST", "/apis/batch/v1/namespaces/ml/jobs"),
    ]
    posted = pool.requests[1][2]
    assert posted["kind"] == "Job" and posted["apiVersion"] == "batch/v1"
    assert posted["metadata"]["name"] == "churn-retrain-drift-1700000000"
    assert posted["metadata"]["annotations"] == {
        "team": "ml",
        "cronjob.kubernetes.io/instantiate": "manual",
        "mlc.dev/retrain-trigger": "drift",
    }
    assert posted["metadata"]["labels"] == {"app": "churn"}
    assert posted["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "name": "churn-retrain",
            "uid": "1234-abcd",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    # The template as it is, its containers told what started them (training tags the run with it).
    expected = copy.deepcopy(CRONJOB["spec"]["jobTemplate"]["spec"])
    expected["template"]["spec"]["containers"][0]["env"] = [{"name": "MLC_RETRAIN_TRIGGER", "value": "drift"}]
    assert posted["spec"] == expected
    assert job.metadata.uid == "j1"


def test_a_feedback_retraining_carries_its_checks_run_to_the_training_tags():
    pool = FakePoolManager()
    create_job_from_cronjob(
        _batch_api(pool), "ml", "churn-retrain", now=1_700_000_000, trigger="feedback", run_id="abc123"
    )
    posted = pool.requests[1][2]
    assert posted["metadata"]["name"] == "churn-retrain-feedback-1700000000"
    assert posted["metadata"]["annotations"]["mlc.dev/retrain-trigger-run"] == "abc123"
    (container,) = posted["spec"]["template"]["spec"]["containers"]
    environ = {variable["name"]: variable["value"] for variable in container["env"]}
    assert environ == {"MLC_RETRAIN_TRIGGER": "feedback", "MLC_RETRAIN_TRIGGER_RUN": "abc123"}
    assert trigger_tags(environ) == {"mlc.retrain.trigger": "feedback", "mlc.retrain.trigger_run_id": "abc123"}
    assert trigger_tags({}) == {}  # a scheduled training records no trigger


def test_missing_cronjob_is_a_retrain_error():
    with pytest.raises(RetrainError, match="404"):
        create_job_from_cronjob(_batch_api(FakePoolManager(cronjob_status=404)), "ml", "churn-retrain")


def test_job_name_stays_a_valid_label():
    name = job_name("x" * 80, now=1_700_000_000)
    assert len(name) <= 63 and name.endswith("-drift-1700000000")
