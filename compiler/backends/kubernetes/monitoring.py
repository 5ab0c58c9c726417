"""Monitoring."""

from __future__ import annotations

from typing import Any

from mlc.compiler.resolve import ResolvedSpec


def emit_monitoring(resolved: ResolvedSpec) -> list[dict[str, Any]]:
    """Every monitoring resource of one environment."""
    return []


def emit_alert_tests(resolved: ResolvedSpec) -> dict[str, Any] | None:
    """The promtool test file."""
    return None
