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
