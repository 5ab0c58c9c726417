"""Benchmark: the drift job's per-row kernels, sorting (the previous code) vs counting (now).

`run_check` bins each numeric batch of current data on the reference bins, and `build_profile`
reduces each batch of reference data to distinct grid keys with counts. Both used to sort every
batch (np.sort / np.unique); now a check looks bins up in a table (`bin_table`) and a profile
counts keys with bincount (`count_keys`). This runs both versions alternately in one process on
the same Parquet files (so a busy machine slows both alike) and prints the times side by side.

    .venv/bin/python benchmarks/drift_kernels.py [--workdir /tmp/drift-bench] [--repeats 4]

Data: the `small` and `large` files of benchmarks/drift_vs_evidently.py (written if missing).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from drift_vs_evidently import SCENARIOS, write_dataset

from mlc.runtime.drift import check, profile
from mlc.runtime.drift.config import DriftConfig


def sorted_count_keys(keys: np.ndarray, zero_key: int) -> tuple[np.ndarray, np.ndarray]:
    """The previous profile kernel: sort every batch."""
    unique, counts = np.unique(keys.astype(np.int32), return_counts=True)
    return unique.astype(np.int64), counts


def timed(step, repeats: int) -> dict[str, list[float]]:
    """Seconds of `step()` per repeat, the sorting and the counting kernel alternating."""
    counting_keys, table_span = profile.count_keys, check.MAX_TABLE_SPAN
    times: dict[str, list[float]] = {"sorting": [], "counting": []}
    try:
        for _ in range(repeats):
            for kernel in times:
                profile.count_keys = sorted_count_keys if kernel == "sorting" else counting_keys
                check.MAX_TABLE_SPAN = -1 if kernel == "sorting" else table_span  # -1: no table, sort
                started = time.perf_counter()
                step()
                times[kernel].append(time.perf_counter() - started)
    finally:
        profile.count_keys, check.MAX_TABLE_SPAN = counting_keys, table_span
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/drift-bench")
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    print("| step | data | sorting s (median; runs) | counting s (median; runs) | speed-up |")
    print("|---|---|---|---|---|")
    for name in ("small", "large"):
        n_ref, n_cur, numeric, categorical, s_num, s_cat = SCENARIOS[name]
        ref = write_dataset(work / f"{name}_ref.parquet", n_ref, numeric, categorical, 1)
        cur = write_dataset(work / f"{name}_cur.parquet", n_cur, numeric, categorical, 2, s_num, s_cat, shift=0.5)
        reference = profile.build_profile(ref)
        steps = {
            "profile (build_profile)": lambda ref=ref: profile.build_profile(ref),
            "check (run_check)": lambda reference=reference, cur=cur: check.run_check(reference, cur, DriftConfig()),
        }
        for label, step in steps.items():
            times = timed(step, args.repeats)
            old, new = statistics.median(times["sorting"]), statistics.median(times["counting"])
            runs = {kernel: [round(t, 2) for t in values] for kernel, values in times.items()}
            print(
                f"| {label} | {name} ({n_ref:,} rows, {numeric}+{categorical} cols) | {old:.2f} {runs['sorting']}"
                f" | {new:.2f} {runs['counting']} | {old / new:.1f}x |"
            )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
