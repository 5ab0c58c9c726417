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

from mlc.runtime.datasets import DataError

STATE_FILE = "checkpoint.pt"
RUN_FILE = "run.json"


class CheckpointStore:
    """Save, load and clear the checkpoint of one training lineage."""

    def __init__(self, uri: str, lineage: str) -> None:
        from pathlib import Path

        import pyarrow.fs as pafs

        if "://" in uri:
            self._fs, root = pafs.FileSystem.from_uri(uri)
        else:
            self._fs, root = pafs.LocalFileSystem(), str(Path(uri).absolute())
        self.location = f"{root.rstrip('/')}/{lineage}"

    def _write(self, name: str, payload: bytes) -> None:
        self._fs.create_dir(self.location, recursive=True)
        temporary = f"{self.location}/.{name}.partial"
        with self._fs.open_output_stream(temporary) as stream:
            stream.write(payload)
        self._fs.move(temporary, f"{self.location}/{name}")

    def _read(self, name: str) -> bytes | None:
        import pyarrow.fs as pafs

        path = f"{self.location}/{name}"
        if self._fs.get_file_info(path).type != pafs.FileType.File:
            return None
        with self._fs.open_input_stream(path) as stream:
            return stream.read()

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

        if self._fs.get_file_info(self.location).type == pafs.FileType.Directory:
            self._fs.delete_dir(self.location)


def open_checkpoint_store(uri: str, lineage: str) -> CheckpointStore:
    """The store, or a DataError when the URI's filesystem cannot be opened."""
    try:
        return CheckpointStore(uri, lineage)
    except Exception as error:  # pyarrow raises several types for unknown schemes and bad URIs
        raise DataError(f"checkpoint uri {uri}: cannot open: {error}") from None
