"""Benchmark: the drift job's per-row kernels: sorting, lookup (the previous code), tally (now).

`run_check` bins each numeric batch of current data on the reference bins, and `build_profile`
reduces each batch of reference data to distinct grid keys with counts. Both first sorted every
batch (np.sort / np.unique: "sorting"); then a check looked bins up in a table (`bin_table`) and a
profile counted each batch's keys with bincount and merged the parts by sorting ("lookup"); now
both tally keys into dense windows with one bincount a batch, no sort and no lookup ("tally":
a check's keys between the edges; a profile's magnitude keys and signs, `MagnitudeTally`,
`MAX_DENSE_SPAN`). This runs the versions alternately in one process on the same
Parquet files (so a busy machine slows all alike) and prints the times side by side.

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
    """Seconds of `step()` per repeat, the kernels alternating."""
    counting_keys, table_span, dense_span = profile.count_keys, check.MAX_TABLE_SPAN, profile.MAX_DENSE_SPAN
    times: dict[str, list[float]] = {"sorting": [], "lookup": [], "tally": []}

    def use(kernel: str) -> None:
        profile.count_keys = sorted_count_keys if kernel == "sorting" else counting_keys
        check.MAX_TABLE_SPAN = -1 if kernel == "sorting" else table_span  # -1: no table, sort
        profile.MAX_DENSE_SPAN = check.MAX_DENSE_SPAN = dense_span if kernel == "tally" else -1  # -1: no tally

    try:
        for _ in range(repeats):
            for kernel in times:
                use(kernel)
                started = time.perf_counter()
                step()
                times[kernel].append(time.perf_counter() - started)
    finally:
        use("tally")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/drift-bench")
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    print(
        "| step | data | sorting s (median; runs) | lookup s (median; runs) | tally s (median; runs)"
        " | tally vs lookup |"
    )
    print("|---|---|---|---|---|---|")
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
            medians = {kernel: statistics.median(values) for kernel, values in times.items()}
            cells = " | ".join(
                f"{medians[kernel]:.2f} {[round(t, 2) for t in values]}" for kernel, values in times.items()
            )
            print(
                f"| {label} | {name} ({n_ref:,} rows, {numeric}+{categorical} cols) | {cells}"
                f" | {medians['lookup'] / medians['tally']:.1f}x |"
            )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
