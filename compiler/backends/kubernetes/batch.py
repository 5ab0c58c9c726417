"""Scheduled batch inference: a CronJob whose Job is Indexed, one shard of the input per index."""

from __future__ import annotations

from typing import Any

from mlc.compiler.resolve import ResolvedSpec


def emit_batch(resolved: ResolvedSpec) -> list[dict[str, Any]]:
    """The batch-inference CronJob (none without `serve.batch`)."""
    return []
