"""Reading the runtime config: the JSON file the compiler emits, checked against the contract.

The shape, defaults and version live in `mlc.runtime.contract` (which the compiler imports to
write it); this module is the reader. Paths in `data.*.uri` and `train.checkpoint.uri` are
relative to the working directory (the spec's folder, where `mlc run` starts the runtime)
unless they carry a scheme (`s3://`, ...).
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from mlc.runtime.contract import FORMAT_VERSION, LOCAL_STATE_DIR
from mlc.runtime.contract.config import ConfigError, RuntimeConfig


def parse_runtime_config(text: str, source: str) -> RuntimeConfig:
    """The config from its JSON text; `source` names it in error messages."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{source}:{error.lineno}:{error.colno}: not valid JSON: {error.msg}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: must be a JSON object, got {type(data).__name__}")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise ConfigError(
            f"{source}: format_version {version!r} is not supported (this runtime reads {FORMAT_VERSION}); "
            "recompile with a matching mlc (`mlc apply`, or `mlc run`)"
        )
    try:
        return RuntimeConfig.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        raise ConfigError(f"{source}: {where}: {first['msg']}{more}") from None


def load_runtime_config(path: Path) -> RuntimeConfig:
    """Read and check the runtime config file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: runtime config not found (`mlc run JOB` writes it under {LOCAL_STATE_DIR}/)"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the runtime config: {error}") from None
    return parse_runtime_config(text, str(path))
