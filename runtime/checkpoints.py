"""Training checkpoints: one state dict per training lineage, in `train.checkpoint.uri`.

The folder is `<uri>/<project>-<environment>-<spec digest, 12 hex>/`, so a changed spec (new
params, new data contract) never resumes an old run's state. It holds `checkpoint.pt` (the last
state the entrypoint saved) and `run.json` (the MLflow run it logs to, so a resumed attempt
keeps logging to the same run). A successful training clears the folder, so the next scheduled
retraining starts fresh. Local paths and any pyarrow filesystem URI (s3://, gs://) work; writes
go to a temporary name first, then move into place.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow as pa

from mlc.runtime.datasets import DataError, is_remote, open_filesystem, store_error

# pyarrow's errors: OSError for I/O, ArrowException (not an OSError) for some of Google's.
_STORE_ERRORS = (OSError, pa.ArrowException)

STATE_FILE = "checkpoint.pt"
RUN_FILE = "run.json"


class CheckpointStore:
    """Save, load and clear the checkpoint of one training lineage.

    The filesystem is opened as the data is (`datasets.open_filesystem`: the same schemes, GCS's
    retry limit), and a store that cannot be reached is a `DataError` naming the folder and the
    store's own settings, never an entrypoint's traceback.
    """

    def __init__(self, uri: str, lineage: str) -> None:
        self._fs, root = open_filesystem(uri)
        self._folders = not is_remote(uri)  # object stores have no folders to create first
        self.location = f"{root.rstrip('/')}/{lineage}"
        # What messages name: the URI the spec gave (its query, such as GCS's retry limit, left out).
        self.uri = f"{uri.partition('?')[0].rstrip('/')}/{lineage}"

    def _error(self, error: BaseException, action: str) -> DataError:
        return DataError(store_error(self.uri, error, action))

    def _write(self, name: str, payload: bytes) -> None:
        temporary = f"{self.location}/.{name}.partial"
        try:
            if self._folders:  # (on GCS, a folder marker per level: each call its own retries)
                self._fs.create_dir(self.location, recursive=True)
            with self._fs.open_output_stream(temporary) as stream:
                stream.write(payload)
            self._fs.move(temporary, f"{self.location}/{name}")
        except _STORE_ERRORS as error:
            raise self._error(error, f"cannot write checkpoint {name}") from None

    def _read(self, name: str) -> bytes | None:
        import pyarrow.fs as pafs

        path = f"{self.location}/{name}"
        try:
            if self._fs.get_file_info(path).type != pafs.FileType.File:
                return None
            with self._fs.open_input_stream(path) as stream:
                return stream.read()
        except _STORE_ERRORS as error:
            raise self._error(error, f"cannot read checkpoint {name}") from None

    def save(self, state: dict[str, Any]) -> None:
        import torch

        buffer = io.BytesIO()
        torch.save(state, buffer)
        self._write(STATE_FILE, buffer.getvalue())

    def load(self) -> dict[str, Any] | None:
        import torch

        payload = self._read(STATE_FILE)
        if payload is None:
            return None
        # Our own file, written by this job's earlier attempt: full unpickling is fine.
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=False)

    def save_run_id(self, run_id: str) -> None:
        self._write(RUN_FILE, json.dumps({"mlflow_run_id": run_id}).encode())

    def load_run_id(self) -> str | None:
        payload = self._read(RUN_FILE)
        return None if payload is None else json.loads(payload)["mlflow_run_id"]

    def clear(self) -> None:
        import pyarrow.fs as pafs

        try:
            if not self._folders:  # the objects under the prefix: there is no folder object
                self._fs.delete_dir_contents(self.location, missing_dir_ok=True)
            elif self._fs.get_file_info(self.location).type == pafs.FileType.Directory:
                self._fs.delete_dir(self.location)
        except _STORE_ERRORS as error:
            raise self._error(error, "cannot clear the checkpoint folder") from None


def open_checkpoint_store(uri: str, lineage: str) -> CheckpointStore:
    """The store, or a DataError when the URI's filesystem cannot be opened."""
    try:
        return CheckpointStore(uri, lineage)
    except DataError as error:
        raise DataError(f"checkpoint uri: {error}") from None
