"""Regenerate the example's synthetic data (deterministic): `python make_data.py`.

`live.csv` is shifted in `monthly_charges` and `region`, so the drift check has something to find;
`live-healthy.csv` is live data from the training distribution, where it must find nothing.
"""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

PLANS = ["basic", "plus", "pro"]
REGIONS = ["north", "south", "east", "west"]


def rows(n: int, seed: int, shift: bool = False) -> list[dict[str, object]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        tenure = round(rng.expovariate(1 / 30), 2)
        charges = max(0.0, round(rng.gauss(75 if shift else 60, 20), 2))  # the contract: min 0
        calls = None if rng.random() < 0.05 else int(rng.expovariate(1 / 2))
        plan = rng.choices(PLANS, weights=[5, 3, 2])[0]
        region = rng.choices([*REGIONS, "central"], weights=[1, 1, 1, 1, 3 if shift else 0])[0]
        logit = -1.0 - 0.04 * tenure + 0.03 * (charges - 60) + 0.4 * (calls or 0) - 0.5 * PLANS.index(plan)
        churned = int(rng.random() < 1 / (1 + math.exp(-logit)))
        out.append(
            {
                "tenure_months": tenure,
                "monthly_charges": charges,
                "support_calls": "" if calls is None else calls,
                "plan": plan,
                "region": region,
                "churned": churned,
            }
        )
    return out


def write(path: Path, data: list[dict[str, object]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(data[0]))
        writer.writeheader()
        writer.writerows(data)


if __name__ == "__main__":
    here = Path(__file__).parent / "data"
    write(here / "train.csv", rows(4000, seed=1))
    write(here / "eval.csv", rows(1000, seed=2))
    write(here / "live.csv", rows(1000, seed=3, shift=True))
    write(here / "live-healthy.csv", rows(1000, seed=4))
