"""How fast `mlc` starts: whole-process times of `mlc --version` and `mlc validate`, next to
`python -c "import pydantic"` measured in the same run (target: validate <= 2x that).

Run: `.venv/bin/python benchmarks/cli_startup.py [--runs N]`
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "churn" / "mlproject.yaml"


def timed(command: list[str], runs: int) -> float:
    """Median wall time of `command` over `runs` runs (after one warm-up run)."""
    subprocess.run(command, capture_output=True, check=False)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=False)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    mlc = [sys.executable, "-c", "from mlc.compiler.cli import main; main()"]
    rows = [
        ("python -c 'import pydantic'", timed([sys.executable, "-c", "import pydantic"], args.runs)),
        # `import pydantic` is lazy: BaseModel (what any pydantic-validated CLI pays) is the honest floor.
        (
            "python -c 'from pydantic import BaseModel'",
            timed([sys.executable, "-c", "from pydantic import BaseModel"], args.runs),
        ),
        ("mlc --version", timed([*mlc, "--version"], args.runs)),
        ("mlc validate (churn example)", timed([*mlc, "validate", "-f", str(SPEC)], args.runs)),
    ]
    baseline = rows[0][1]
    print(f"{'command':<44} {'median ms':>10} {'x import pydantic':>18}")
    for name, seconds in rows:
        print(f"{name:<44} {seconds * 1000:>10.1f} {seconds / baseline:>18.2f}")
    verdict = "meets" if rows[-1][1] <= 2 * baseline else "MISSES"
    print(f"\nvalidate {verdict} the target (<= 2x import pydantic)")


if __name__ == "__main__":
    main()
