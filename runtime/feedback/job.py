"""One run of the feedback job: the champion's logged predictions of the last `labels.max_delay`
joined with the labels that arrived, judged against the gates (`quality.py`).

The champion's version and its target encoding (which label is the positive class, the classes'
order) come from the registry: the version's run logged `preprocessor.json` at training. Only the
window's rows that version answered are scored: after a promotion the new champion starts from
its own first labelled rows, not from its predecessor's.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from mlc.runtime.contract import LOG_MODEL_VERSION, LOG_OUTPUTS, LOG_REQUEST_ID, LOG_ROW
from mlc.runtime.contract.config import RuntimeConfig
from mlc.runtime.errors import MlcRuntimeError
from mlc.runtime.feedback.quality import LiveQuality, live_quality

if TYPE_CHECKING:
    from mlc.runtime.preprocessor import Preprocessor

PREPROCESSOR_RUN_ARTIFACT = "preprocessor.json"  # what training logs on the run (`mlflow.log_dict`)


class FeedbackError(MlcRuntimeError):
    """No verdict possible: the registry, the labels or the log cannot be read."""


def champion(config: RuntimeConfig, tracking_uri: str) -> tuple[str, Preprocessor]:
    """The champion's version and its fitted preprocessor (the target's encoding), from the registry."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from mlc.runtime.errors import tracking_error_line
    from mlc.runtime.preprocessor import Preprocessor

    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        version = client.get_model_version_by_alias(config.registered_model, config.aliases.champion)
        with tempfile.TemporaryDirectory(prefix="mlc-feedback-") as scratch:
            path = client.download_artifacts(version.run_id, PREPROCESSOR_RUN_ARTIFACT, scratch)
            preprocessor = Preprocessor.from_dict(json.loads(Path(path).read_text()))
    except MlflowException as error:
        named = f"{config.registered_model}@{config.aliases.champion}"
        raise FeedbackError(f"cannot read {named}: {tracking_error_line(error, tracking_uri)}") from None
    if preprocessor.target is None:
        raise FeedbackError(f"{config.registered_model} version {version.version} has no target encoding")
    return str(version.version), preprocessor


def run_feedback(config: RuntimeConfig, tracking_uri: str, now: float | None = None) -> LiveQuality:
    """Read, join, score and judge (see the module docstring)."""
    import pyarrow.compute as pc

    from mlc.runtime.contract_model import output_columns
    from mlc.runtime.datasets import DataError
    from mlc.runtime.feedback.labels import read_labels
    from mlc.runtime.prediction_log.reader import read_window, window_files
    from mlc.runtime.preprocessor import PreprocessError

    feedback, evaluate = config.require_feedback(), config.require_evaluate()
    log = config.require_prediction_log()
    now = time.time() if now is None else now
    since = now - feedback.labels.max_delay_seconds
    version, preprocessor = champion(config, tracking_uri)
    assert preprocessor.target is not None
    outputs = [f"{LOG_OUTPUTS}.{name}" for name, _ in output_columns(preprocessor)]
    try:
        files = window_files(log.uri, since, now)
        window = read_window(files, [LOG_REQUEST_ID, LOG_ROW, LOG_MODEL_VERSION, *outputs], since, now)
        logged = window.filter(pc.equal(window.column(LOG_MODEL_VERSION), version))
        labels = read_labels(feedback.labels)
        return live_quality(
            logged, labels, preprocessor.target, evaluate.metrics, evaluate.gates, feedback.min_rows, version
        )
    except (DataError, PreprocessError) as error:
        raise FeedbackError(str(error)) from None
