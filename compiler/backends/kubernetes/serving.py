"""Serving workloads."""

from __future__ import annotations

from typing import Any

from mlc.compiler.resolve import ResolvedSpec


def autoscaled_workloads(resolved: ResolvedSpec) -> list[tuple[str, str, str]]:
    """(group, kind, name) of each workload whose replicas an autoscaler owns."""
    return []


def emit_serving(resolved: ResolvedSpec) -> list[dict[str, Any]]:
    """Every serving resource of one environment."""
    return []
