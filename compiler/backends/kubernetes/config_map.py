"""The ConfigMap that carries the runtime config (`mlc.compiler.resolve.runtime_config`) to every pod."""

from __future__ import annotations

from typing import Any

from mlc.compiler.backends.kubernetes.objects import manifest, object_meta
from mlc.compiler.resolve.resolved import ResolvedSpec
from mlc.compiler.resolve.runtime_config import runtime_config_json
from mlc.runtime.contract import CONFIG_FILE


def emit_runtime_config_map(resolved: ResolvedSpec) -> dict[str, Any]:
    """The ConfigMap every pod of the environment mounts."""
    return manifest(
        "v1",
        "ConfigMap",
        object_meta(resolved, resolved.names.runtime_config, "config"),
        data={CONFIG_FILE: runtime_config_json(resolved)},
    )
