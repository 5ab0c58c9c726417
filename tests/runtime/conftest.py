"""Shared fixtures for runtime tests: small Parquet/CSV datasets written on the fly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest


@pytest.fixture
def write_parquet(tmp_path: Path) -> Callable[..., Path]:
    """Write columns (name -> list/array) to a Parquet file in tmp_path; returns its path."""
    counter = iter(range(1_000_000))

    def write(columns: dict, name: str | None = None) -> Path:
        path = tmp_path / (name or f"data{next(counter)}.parquet")
        pq.write_table(pa.table(columns), path)
        return path

    return write


def make_columns(n: int, seed: int, shift: float = 0.0, shifted: tuple[str, ...] = (),
                 new_level: bool = False) -> dict:
    """3 numeric + 2 categorical columns; `shifted` columns get a mean shift / level swap."""
    rng = np.random.default_rng(seed)
    columns = {}
    for name in ("x0", "x1", "x2"):
        columns[name] = rng.normal(size=n) + (shift if name in shifted else 0.0)
    levels, probs = ["a", "b", "c"], [0.5, 0.3, 0.2]
    if "c0" in shifted:
        probs = [0.3, 0.3, 0.4]
    c0 = rng.choice(levels, size=n, p=probs).astype(object)
    if new_level:
        c0[: n // 10] = "brand-new"
    columns["c0"] = c0.tolist()
    columns["b0"] = (rng.random(n) < 0.3).tolist()
    return columns


@pytest.fixture
def columns() -> Callable[..., dict]:
    return make_columns


@pytest.fixture
def runtime_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a compiler runtime config (format_version 1, the fields drift reads)."""

    def write(current_uri: str, tracking_uri: str = "http://127.0.0.1:1",
              on_drift: str = "alert") -> Path:
        import json

        config = {
            "format_version": 1, "project": "churn", "environment": "prod",
            "namespace": "ml-churn", "tracking_uri": tracking_uri, "registered_model": "churn",
            "aliases": {"challenger": "challenger", "champion": "champion",
                        "previous": "previous"},
            "contract": {"target": "label", "features": {
                "x0": {"type": "float"}, "x1": {"type": "float"}, "x2": {"type": "float"},
                "c0": {"type": "category"}, "b0": {"type": "bool"}}},
            "drift": {"current": {"uri": current_uri, "window_seconds": 86400},
                      "method": "auto", "threshold": {"psi": 0.2, "share": 0.5},
                      "on_drift": on_drift, "retrain_cronjob": "churn-prod-retrain"},
            "metrics": {"pushgateway": "http://pushgateway:9091", "push_job": "mlc-drift",
                        "grouping": {"project": "churn", "environment": "prod"}},
            "exit_codes": {"config_error": 78},
        }
        path = tmp_path / "runtime-config.json"
        path.write_text(json.dumps(config))
        return path

    return write
