"""Benchmark: `mlc-runtime profile` + `mlc-runtime drift` against Evidently's DataDriftPreset.

Both tools run as whole processes on the same Parquet files; the table reports wall time,
peak RSS (from wait4), and which columns each flagged. mlc runs twice over: as the lifecycle
runs it (`profile` when training, then `drift` in the scheduled job: two processes) and as
Evidently is run (one process given both datasets: `drift --reference`). Then, over repeated samples, the
false-alarm rate with no drift and the detection power for small shifts.

Setup (Evidently is not a project dependency; it lives in its own venv):

    python3 -m venv /tmp/evidently-venv
    /tmp/evidently-venv/bin/pip install evidently==0.7.23 'pandas<3' pyarrow

Run from the repo root with the project's venv (where `mlc-runtime` is installed):

    .venv/bin/python benchmarks/drift_vs_evidently.py [--scenarios small,large,huge]
        [--evidently-python /tmp/evidently-venv/bin/python] [--workdir /tmp/drift-bench]
        [--reps 30] [--runs 5]

Scenarios: small = 200k rows x (20 numeric + 4 categorical), large = 1M x (50 + 10),
huge = 10M current rows x (20 + 4), mlc only (peak RSS must stay under 500 MB).
If Evidently cannot be run, the benchmark says so and still measures mlc.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SCENARIOS = {
    # name: (reference rows, current rows, numeric, categorical, shifted numeric, shifted cat)
    "small": (200_000, 200_000, 20, 4, 3, 1),
    "large": (1_000_000, 1_000_000, 50, 10, 5, 2),
    "huge": (1_000_000, 10_000_000, 20, 4, 3, 1),
}
LEVELS = np.array(["alpha", "beta", "gamma", "delta", "epsilon"])
BASE_P = np.array([0.35, 0.25, 0.2, 0.12, 0.08])
SHIFT_P = np.array([0.15, 0.2, 0.2, 0.2, 0.25])

EVIDENTLY_SCRIPT = textwrap.dedent("""
    import json, sys
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    def flagged(ref, cur):
        snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
        out = []
        for metric in snapshot.dict()["metrics"]:
            config = metric["config"]
            if not config["type"].endswith("ValueDrift"):
                continue
            value, threshold = metric["value"], config["threshold"]
            p_value = "p_value" in config["method"].lower()
            if (value < threshold) if p_value else (value >= threshold):
                out.append(config["column"])
        return sorted(out)

    pairs = json.loads(sys.argv[1])
    result = [flagged(pd.read_parquet(r), pd.read_parquet(c)) for r, c in pairs]
    print(json.dumps(result))
""")

MLC_LOOP_SCRIPT = textwrap.dedent("""
    import json, sys
    from mlc.runtime.drift.check import run_check
    from mlc.runtime.drift.config import DriftConfig
    from mlc.runtime.drift.profile import build_profile

    pairs = json.loads(sys.argv[1])
    result = []
    for ref, cur in pairs:
        check = run_check(build_profile(ref), cur, DriftConfig())
        result.append(sorted(r.feature for r in check.features if r.drifted))
    print(json.dumps(result))
""")


def column_names(numeric: int, categorical: int) -> tuple[list[str], list[str]]:
    return [f"num{i:02d}" for i in range(numeric)], [f"cat{i:02d}" for i in range(categorical)]


def make_batch(
    rng: np.random.Generator,
    rows: int,
    numeric: int,
    categorical: int,
    shifted_num: int,
    shifted_cat: int,
    shift: float,
) -> pa.Table:
    """Mixed-shape columns; the first `shifted_*` columns get a shift of `shift` std."""
    nums, cats = column_names(numeric, categorical)
    columns = {}
    for i, name in enumerate(nums):
        delta = shift if i < shifted_num else 0.0
        shape = i % 4
        if shape == 0:
            values = rng.normal(size=rows) + delta
        elif shape == 1:
            values = rng.lognormal(size=rows) * np.exp(delta)  # lognormal scale shift
        elif shape == 2:
            values = rng.uniform(-1.0, 1.0, size=rows) + delta * 0.577
        else:
            values = np.round(rng.normal(50, 10, size=rows) + delta * 10)  # int-like
        columns[name] = values
    for i, name in enumerate(cats):
        weight = min(shift / 0.5, 1.0) if i < shifted_cat else 0.0
        p = (1 - weight) * BASE_P + weight * SHIFT_P
        columns[name] = pa.array(LEVELS[rng.choice(len(LEVELS), size=rows, p=p)])
    return pa.table(columns)


def write_dataset(
    path: Path,
    rows: int,
    numeric: int,
    categorical: int,
    seed: int,
    shifted_num: int = 0,
    shifted_cat: int = 0,
    shift: float = 0.0,
) -> Path:
    """Write in 500k-row chunks so 10M-row files never sit in memory."""
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    writer = None
    tmp = path.with_suffix(".tmp")
    for start in range(0, rows, 500_000):
        table = make_batch(rng, min(500_000, rows - start), numeric, categorical, shifted_num, shifted_cat, shift)
        writer = writer or pq.ParquetWriter(tmp, table.schema)
        writer.write_table(table)
    writer.close()
    tmp.rename(path)
    return path


def run_measured(argv: list[str]) -> tuple[float, float, int, str, str]:
    """Run a process; (seconds, peak RSS in MB, exit code, stdout, stderr)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(argv, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (elapsed, usage.ru_maxrss / 1024, process.returncode, out.read().decode(), err.read().decode())


def best_of(results: list[dict]) -> dict:
    """The fastest run (this machine is shared, so noise only ever adds time), with every peak
    RSS the max over all runs and every run's seconds listed."""
    best = min(results, key=lambda r: r["seconds"])
    peaks = {key: max(r[key] for r in results) for key in best if key.endswith("rss_mb")}
    return {**best, **peaks, "all_seconds": [round(r["seconds"], 2) for r in results]}


def runtime_cli() -> str:
    """The `mlc-runtime` beside this interpreter (the project's venv), else the one on PATH."""
    return shutil.which("mlc-runtime", path=str(Path(sys.executable).parent)) or "mlc-runtime"


def mlc_best(ref: Path, cur: Path, work: Path, runs: int) -> dict:
    """Best of `runs` of `profile` then `drift --profile`."""
    return best_of([mlc_whole(ref, cur, work) for _ in range(runs)])


def mlc_one_best(ref: Path, cur: Path, runs: int) -> dict:
    """Best of `runs` of `mlc-runtime drift --reference`: one process profiles and checks."""
    results = []
    for _ in range(runs):
        seconds, rss, code, out, err = run_measured(
            [runtime_cli(), "drift", "--reference", str(ref), "--data", str(cur), "--format", "json"]
        )
        if code not in (0, 1):
            raise SystemExit(f"mlc drift --reference failed: {err}")
        flagged = sorted(k for k, v in json.loads(out)["features"].items() if v["drifted"])
        results.append({"seconds": seconds, "rss_mb": rss, "flagged": flagged})
    return best_of(results)


def mlc_whole(ref: Path, cur: Path, work: Path) -> dict:
    """Time `mlc-runtime profile` then `mlc-runtime drift` as separate processes."""
    cli = runtime_cli()
    profile = work / f"{ref.stem}.profile.json"
    t1, rss1, code1, _, err1 = run_measured([cli, "profile", "--data", str(ref), "-o", str(profile)])
    if code1 != 0:
        raise SystemExit(f"mlc profile failed: {err1}")
    t2, rss2, code2, out2, err2 = run_measured(
        [cli, "drift", "--profile", str(profile), "--data", str(cur), "--format", "json"]
    )
    if code2 not in (0, 1):
        raise SystemExit(f"mlc drift failed: {err2}")
    flagged = sorted(k for k, v in json.loads(out2)["features"].items() if v["drifted"])
    return {
        "profile_s": t1,
        "drift_s": t2,
        "seconds": t1 + t2,
        "rss_mb": max(rss1, rss2),
        "drift_rss_mb": rss2,
        "flagged": flagged,
    }


def evidently_whole(python: str | None, ref: Path, cur: Path, work: Path) -> dict | None:
    if python is None:
        return None
    script = work / "evidently_run.py"
    script.write_text(EVIDENTLY_SCRIPT)
    seconds, rss, code, out, err = run_measured([python, str(script), json.dumps([[str(ref), str(cur)]])])
    if code != 0:
        print(f"Evidently failed: {err.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return {"seconds": seconds, "rss_mb": rss, "flagged": json.loads(out)[0]}


def evidently_python(candidate: str) -> str | None:
    """The Evidently interpreter if it can import Evidently, else None (and say why)."""
    if not Path(candidate).exists():
        print(
            f"NOTE: Evidently not measured: {candidate} not found (see the module docstring for the setup).",
            file=sys.stderr,
        )
        return None
    probe = subprocess.run(
        [candidate, "-c", "import evidently; print(evidently.__version__)"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        print(
            f"NOTE: Evidently not measured: cannot import it with {candidate}: "
            f"{probe.stderr.strip().splitlines()[-1:]}",
            file=sys.stderr,
        )
        return None
    print(f"Evidently {probe.stdout.strip()} via {candidate}")
    return candidate


def speed(scenarios: list[str], ev_python: str | None, work: Path, runs: int) -> None:
    print(
        f"\n## Whole processes on the same Parquet files (mlc: best of {runs} runs, peak RSS"
        " the max over them; Evidently: one run)\n"
    )
    print("| scenario | tool | time s | peak RSS MB | speed-up | flagged == shifted |")
    print("|---|---|---|---|---|---|")
    for name in scenarios:
        n_ref, n_cur, numeric, categorical, s_num, s_cat = SCENARIOS[name]
        ref = write_dataset(work / f"{name}_ref.parquet", n_ref, numeric, categorical, 1)
        cur = write_dataset(work / f"{name}_cur.parquet", n_cur, numeric, categorical, 2, s_num, s_cat, shift=0.5)
        nums, cats = column_names(numeric, categorical)
        expected = sorted(nums[:s_num] + cats[:s_cat])
        mlc = mlc_best(ref, cur, work, runs)
        one = mlc_one_best(ref, cur, runs)
        ev = evidently_whole(ev_python, ref, cur, work) if name != "huge" else None
        label = f"{name} ({n_ref:,} ref / {n_cur:,} cur rows, {numeric}+{categorical} cols)"
        ratio = f"{ev['seconds'] / mlc['seconds']:.0f}x" if ev else "-"
        print(
            f"| {label} | mlc (profile {mlc['profile_s']:.2f}s + drift {mlc['drift_s']:.2f}s)"
            f" | {mlc['seconds']:.2f} (runs {mlc['all_seconds']}) | {mlc['rss_mb']:.0f}"
            f" (drift {mlc['drift_rss_mb']:.0f})"
            f" | {ratio} | {mlc['flagged'] == expected} |"
        )
        one_ratio = f"{ev['seconds'] / one['seconds']:.0f}x" if ev else "-"
        print(
            f"| {label} | mlc, one process (drift --reference) | {one['seconds']:.2f} (runs {one['all_seconds']})"
            f" | {one['rss_mb']:.0f} | {one_ratio} | {one['flagged'] == expected} |"
        )
        if ev:
            print(
                f"| {label} | Evidently DataDriftPreset | {ev['seconds']:.2f} | "
                f"{ev['rss_mb']:.0f} | 1x | {ev['flagged'] == expected} |"
            )
        elif name != "huge":
            print(f"| {label} | Evidently | not measured | | | |")
        for tool, result in (("mlc", mlc), ("mlc --reference", one), ("evidently", ev)):
            if result and result["flagged"] != expected:
                print(f"|   {tool} flagged {result['flagged']}, expected {expected} |||||")
        sys.stdout.flush()


def rates(ev_python: str | None, work: Path, reps: int) -> None:
    """False alarms on no-drift samples and power on small shifts, fresh data each rep."""
    numeric, categorical = 20, 4
    nums, cats = column_names(numeric, categorical)
    # (label, reference rows, current rows, shift in std). Evidently switches from per-column
    # KS/chi-square p-values (reference <= 1000 rows) to fixed distance thresholds above it.
    settings = [
        ("no drift", 1000, 500, 0.0),
        ("no drift", 2000, 200, 0.0),
        ("no drift", 20_000, 5000, 0.0),
        ("shift 0.05 std", 20_000, 5000, 0.05),
        ("shift 0.1 std", 20_000, 5000, 0.1),
        ("shift 0.2 std", 20_000, 5000, 0.2),
    ]
    print(
        f"\n## Repeated samples ({reps} reps each; fresh reference and current each rep; "
        f"{numeric}+{categorical} columns; shifted ones: {nums[0]}, {cats[0]})\n"
    )
    print(
        "| setting | reference / current rows | tool | false-alarm rate per unshifted column"
        " | samples with any false alarm | power on shifted columns |"
    )
    print("|---|---|---|---|---|---|")
    scripts = {"mlc": (sys.executable, MLC_LOOP_SCRIPT), "evidently": (ev_python, EVIDENTLY_SCRIPT)}
    for label, n_ref, n_cur, shift in settings:
        pairs = []
        for rep in range(reps):
            tag = f"rate_{n_ref}_{n_cur}_{shift}_{rep}"
            ref = write_dataset(work / f"{tag}_ref.parquet", n_ref, numeric, categorical, 1000 + rep)
            cur = write_dataset(
                work / f"{tag}_cur.parquet",
                n_cur,
                numeric,
                categorical,
                5000 + rep,
                1 if shift else 0,
                1 if shift else 0,
                shift,
            )
            pairs.append([str(ref), str(cur)])
        shifted = {nums[0], cats[0]} if shift else set()
        for tool, (python, code) in scripts.items():
            if python is None:
                continue
            script = work / f"{tool}_loop.py"
            script.write_text(code)
            out = subprocess.run([python, str(script), json.dumps(pairs)], capture_output=True, text=True)
            if out.returncode != 0:
                print(f"| {label} | {n_ref} / {n_cur} | {tool} | failed: {out.stderr.strip().splitlines()[-1:]} | | |")
                continue
            flagged = [set(f) for f in json.loads(out.stdout)]
            unshifted = numeric + categorical - len(shifted)
            false = sum(len(f - shifted) for f in flagged)
            any_false = sum(bool(f - shifted) for f in flagged)
            power = sum(len(f & shifted) for f in flagged) / (len(shifted) * reps) if shifted else None
            print(
                f"| {label} | {n_ref} / {n_cur} | {tool} | {false / (unshifted * reps):.3f} | "
                f"{any_false}/{reps} | {'-' if power is None else f'{power:.2f}'} |"
            )
            sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="small,large,huge")
    parser.add_argument("--evidently-python", default="/tmp/evidently-venv/bin/python")
    parser.add_argument("--workdir", default="/tmp/drift-bench")
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--skip-rates", action="store_true")
    parser.add_argument("--runs", type=int, default=5, help="mlc timing runs (best is kept)")
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    ev_python = evidently_python(args.evidently_python)
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    speed([s for s in args.scenarios.split(",") if s], ev_python, work, args.runs)
    if not args.skip_rates:
        rates(ev_python, work, args.reps)


if __name__ == "__main__":
    main()
