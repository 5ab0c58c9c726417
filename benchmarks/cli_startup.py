"""How fast `mlc` starts: whole-process times of `mlc --version`, `mlc validate` and `mlc plan`,
next to `python -c "import pydantic"` measured in the same run (target: validate and plan of an
unchanged spec <= 2x that).

`mlc validate` is timed twice: cold (`--no-cache`: load, validate and resolve, which imports
pydantic and builds the spec models) and warm (the spec validated before and unchanged,
answered from the validation cache without importing pydantic). The target applies to the warm
run, what re-validating in an editor loop or a pre-commit hook costs; the cold run is reported
beside it. `mlc plan` is timed on the churn example applied in a temporary git repository: cold
(`MLC_NO_CACHE=1`: validates, resolves and checks the lock, skipping emit) and warm (the cached
validation record and the lock prove the files up to date: no validator, no backend). The
cache lives in a temporary directory, never the user's.

Run: `.venv/bin/python benchmarks/cli_startup.py [--runs N]`

Results, the machine and the command: `cli_startup.results.md` beside this file.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "churn" / "mlproject.yaml"


def applied_copy(workdir: Path, mlc: list[str], env: Mapping[str, str]) -> Path:
    """The churn example copied into a fresh git repository and applied: what `mlc plan` runs on."""
    import shutil

    project = workdir / "churn"
    shutil.copytree(SPEC.parent, project, ignore=shutil.ignore_patterns(".mlc", "deploy", "mlc.lock"))
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    subprocess.run([*mlc, "apply", "-f", str(project / "mlproject.yaml")], check=True, env=env, capture_output=True)
    return project / "mlproject.yaml"


Command = tuple[list[str], Mapping[str, str] | None]


def timed(commands: dict[str, Command], runs: int) -> dict[str, float]:
    """Median wall time of each command over `runs` rounds, after one warm-up run of each.

    Rounds interleave the commands, so a busy spell on the machine slows them all alike and
    the ratios between them stay fair.
    """
    for command, env in commands.values():
        subprocess.run(command, capture_output=True, check=False, env=env)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, (command, env) in commands.items():
            start = time.perf_counter()
            subprocess.run(command, capture_output=True, check=False, env=env)
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    python = sys.executable
    mlc = [python, "-c", "from mlc.compiler.cli import main; main()"]
    validate = [*mlc, "validate", "-f", str(SPEC)]
    # As installed software runs: with cached bytecode (pip compiles it at install; the warm-up
    # run writes it for a checkout), whatever this shell says.
    base = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory(prefix="mlc-bench-cache-") as cache:
        env = {**base, "MLC_CACHE_DIR": cache}
        env.pop("MLC_NO_CACHE", None)
        plan = [*mlc, "plan", "-f", str(applied_copy(Path(cache), mlc, env))]
        rows = timed(
            {
                "python -c 'import pydantic'": ([python, "-c", "import pydantic"], base),
                # `import pydantic` is lazy: BaseModel (what any pydantic-validated CLI pays) is the honest floor.
                "python -c 'from pydantic import BaseModel'": ([python, "-c", "from pydantic import BaseModel"], base),
                "mlc --version": ([*mlc, "--version"], base),
                "mlc validate (cold: --no-cache)": ([*validate, "--no-cache"], env),
                # The warm-up run stores the entry that every measured run then reads.
                "mlc validate (warm cache)": (validate, env),
                "mlc plan, applied spec (cold: MLC_NO_CACHE=1)": (plan, {**env, "MLC_NO_CACHE": "1"}),
                "mlc plan, applied spec (warm cache)": (plan, env),
            },
            args.runs,
        )
    baseline = rows["python -c 'import pydantic'"]
    print(f"{'command':<44} {'median ms':>10} {'x import pydantic':>18}")
    for name, seconds in rows.items():
        print(f"{name:<44} {seconds * 1000:>10.1f} {seconds / baseline:>18.2f}")
    print()
    for command in ("validate", "plan, applied spec"):
        warm = next(value for name, value in rows.items() if name.startswith(f"mlc {command} (warm")) / baseline
        cold = next(value for name, value in rows.items() if name.startswith(f"mlc {command} (cold")) / baseline
        verdict = "meets" if warm <= 2 else "MISSES"
        print(f"warm {command} {verdict} the target (<= 2x import pydantic): {warm:.2f}x; cold is {cold:.2f}x")


if __name__ == "__main__":
    main()
