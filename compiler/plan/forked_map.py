"""Run one function over many items on every available CPU, results in input order.

Planning a monorepo compiles each spec independently, so the specs can be shared out between
processes. Workers are forked after the compiler's stages are imported, so they start in
milliseconds with everything loaded; only the items' indices go to them and only the results
(picklable dataclasses) come back. Where fork is not the platform's safe default (macOS,
Windows) or there is one CPU or few items, the function simply runs in this process.

`MLC_PARALLELISM=N` caps the number of processes (1 turns workers off), as Terraform's
`-parallelism` does.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# Below this many items per worker, forking and pickling cost more than they save.
_MIN_ITEMS_PER_WORKER = 8

# The job of the current `map_forked` call: forked workers inherit it, so neither the function
# nor the items are pickled (closures and lambdas are fine).
_job: tuple[Callable[[object], object], Sequence[object]] | None = None


def map_forked(function: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
    """`[function(item) for item in items]`, computed by forked workers when that is faster."""
    workers = worker_count(len(items))
    if workers <= 1:
        return [function(item) for item in items]
    global _job
    _job = (function, items)  # type: ignore[assignment]
    try:
        context = multiprocessing.get_context("fork")
        with context.Pool(workers) as pool:
            chunk = max(1, len(items) // (workers * 4))
            return pool.map(_run_one, range(len(items)), chunksize=chunk)  # type: ignore[return-value]
    finally:
        _job = None


def worker_count(items: int) -> int:
    """How many processes to use for `items` items (1: run in this process)."""
    if sys.platform != "linux":
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - Linux always has it
        cpus = os.cpu_count() or 1
    limit = os.environ.get("MLC_PARALLELISM", "").strip()
    if limit.isdigit() and int(limit) >= 1:
        cpus = min(cpus, int(limit))
    return max(1, min(cpus, items // _MIN_ITEMS_PER_WORKER))


def _run_one(index: int) -> object:
    assert _job is not None, "a forked worker runs only inside map_forked"
    function, items = _job
    return function(items[index])
