"""`fetch-model`: the KServe storage initializer. One registered model version's MLflow model
directory into DEST (KServe's `/mnt/models`), so the server container loads a local path.

The alias is resolved to a version once; the files are downloaded into a temporary folder inside
DEST and moved into place, then `mlc-model.json` records which version it is (for
`mlc_model_info`). Nothing is written outside DEST.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from mlc.runtime.serve import registry_rest
from mlc.runtime.serve.served_model import (
    MODEL_INFO_FILE,
    ModelError,
    ModelInfo,
    registry_reference,
    resolve_model,
    tracking_uri,
)


def fetch_model(uri: str, dest: Path, configured_tracking_uri: str = "") -> ModelInfo:
    """Download the model version `uri` names into `dest`; what was fetched.

    From an http(s) tracking server the registry's REST API is asked directly (`registry_rest`:
    no MLflow import, seconds off every server start); otherwise, or if that does not work out,
    MLflow's client."""
    reference = registry_reference(uri)
    if reference is None:
        raise ModelError(f"{uri}: expected models:/<name>@<alias> or models:/<name>/<version>")
    try:
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".fetch-", dir=dest) as staging:
            found = registry_rest.fetch_version(*reference, tracking_uri(configured_tracking_uri), Path(staging))
            if found is not None:
                registry_uri = f"models:/{found.model}/{found.version}"
                info = ModelInfo(found.model, found.version, found.alias, found.run_id, registry_uri)
                downloaded = Path(staging)
            else:
                info, downloaded = _download_with_mlflow(uri, configured_tracking_uri, Path(staging))
            if not (downloaded / "MLmodel").is_file():
                raise ModelError(f"{info.uri}: the download has no MLmodel file")
            for entry in downloaded.iterdir():
                target = dest / entry.name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
                entry.rename(target)
    except OSError as error:
        raise ModelError(f"cannot write {dest}: {error.strerror or error}") from None
    fetched = ModelInfo(info.model, info.version, info.alias, info.run_id, str(dest))
    (dest / MODEL_INFO_FILE).write_text(json.dumps(fetched.to_dict(), indent=2, sort_keys=True) + "\n")
    return fetched


def _download_with_mlflow(uri: str, configured_tracking_uri: str, staging: Path) -> tuple[ModelInfo, Path]:
    """MLflow's client: resolve `uri` to its version and download it under `staging`."""
    import mlflow
    import mlflow.artifacts

    info = resolve_model(uri, configured_tracking_uri)
    try:
        return info, Path(mlflow.artifacts.download_artifacts(artifact_uri=info.uri, dst_path=str(staging)))
    except Exception as error:  # registry, network and storage errors come in many types
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(f"cannot download {info.uri}: {first}") from None
