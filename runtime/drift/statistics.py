"""Drift statistics on binned counts: PSI, binned KS, chi-square, Benjamini-Hochberg.

Everything here is a pure function of count vectors, so the check never needs raw reference
data and every test is computed once per feature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Pseudo-count per bin for PSI, so empty bins (e.g. the overflow bins, or a category unseen in
# the reference) give a large but finite contribution instead of an infinity.
PSI_PSEUDOCOUNT = 0.5
# Chi-square validity: pool levels whose smallest expected count is below this.
MIN_EXPECTED = 5.0


# The three distribution functions below are small closed-form/series evaluations; they
# replace scipy (whose import costs ~0.3 s, a third of a typical check) and are tested
# against scipy.special (relative 1e-9).
def kolmogorov_sf(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution (limit law of sqrt(n) * D)."""
    if x <= 0.0:
        return 1.0
    if x < 1.0:
        # Jacobi-theta form of the CDF converges fast for small x.
        terms = [math.exp(-((2 * k - 1) ** 2) * math.pi**2 / (8 * x * x)) for k in range(1, 8)]
        return max(0.0, 1.0 - math.sqrt(2 * math.pi) / x * math.fsum(terms))
    terms = [(-1) ** (k - 1) * math.exp(-2 * k * k * x * x) for k in range(1, 101)]
    return min(1.0, max(0.0, 2.0 * math.fsum(terms)))


def _gamma_q(a: float, x: float) -> float:
    """Regularized upper incomplete gamma Q(a, x) (series below a+1, continued fraction above)."""
    if x <= 0.0:
        return 1.0
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        n = a
        while abs(term) > abs(total) * 1e-16:
            n += 1.0
            term *= x / n
            total += term
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    # Lentz's method for the continued fraction.
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return math.exp(log_prefix) * h


def chi2_sf(x: float, dof: int) -> float:
    """Survival function of the chi-square distribution."""
    return _gamma_q(dof / 2.0, x / 2.0)


def chi2_isf(alpha: float, dof: int) -> float:
    """Inverse survival function of chi-square (x with chi2_sf(x, dof) == alpha), by bisection."""
    lo, hi = 0.0, max(1.0, 2.0 * dof)
    while chi2_sf(hi, dof) > alpha:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if chi2_sf(mid, dof) > alpha:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return 0.5 * (lo + hi)


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Population stability index sum((q - p) * ln(q / p)) over bins, with pseudo-counts.

    Bins empty in both samples are dropped first: a pseudo-count there would add a
    positive bias (e.g. the two overflow bins) without any evidence of change.
    """
    ref = np.asarray(ref_counts, dtype=float)
    cur = np.asarray(cur_counts, dtype=float)
    occupied = (ref + cur) > 0
    ref = ref[occupied] + PSI_PSEUDOCOUNT
    cur = cur[occupied] + PSI_PSEUDOCOUNT
    p = ref / ref.sum()
    q = cur / cur.sum()
    return float(np.sum((q - p) * np.log(q / p)))


def psi_null_threshold(n_ref: int, n_cur: int, bins: int, alpha: float) -> float:
    """PSI value exceeded with probability ~alpha when both samples share one distribution.

    For small differences PSI ~ sum((q - p)^2 / p), and with multinomial sampling in both
    samples each term is scaled by (1/n_ref + 1/n_cur), so
    PSI ~ (1/n_ref + 1/n_cur) * chi2(bins - 1). A fixed PSI threshold (0.1, 0.2) therefore
    fires on identical distributions once n_cur is small (at n_cur=1000, 100 bins the
    99.9% null quantile is ~0.15); using the larger of the configured threshold and this
    quantile keeps the false-alarm rate at alpha at any sample size, while at large samples
    the configured (practical-significance) threshold decides.
    """
    if n_ref <= 0 or n_cur <= 0 or bins < 2:
        return math.inf
    return float(chi2_isf(alpha, bins - 1) * (1.0 / n_ref + 1.0 / n_cur))


@dataclass(frozen=True)
class KSResult:
    """Binned two-sample KS distance, its exact error bound and asymptotic p-value."""

    statistic: float  # max |F_ref - F_cur| over bin edges: a lower bound of the true D
    bound: float  # true D <= statistic + bound (largest bin mass in either sample)
    p_value: float
    n_effective: float


def ks_binned(ref_counts: np.ndarray, cur_counts: np.ndarray) -> KSResult:
    """KS distance on a shared bin grid, with p-value at n_e = n_ref*n_cur/(n_ref+n_cur).

    Both empirical CDFs are known exactly at the bin edges, so the grid maximum is a lower
    bound on the true KS distance; inside a bin each CDF rises by at most that bin's mass,
    so the true distance exceeds the grid one by at most the largest bin mass. The p-value
    uses the asymptotic Kolmogorov distribution, sf(sqrt(n_e) * D), on the grid D (slightly
    conservative).
    """
    ref = np.asarray(ref_counts, dtype=float)
    cur = np.asarray(cur_counts, dtype=float)
    n_ref, n_cur = ref.sum(), cur.sum()
    if n_ref <= 0 or n_cur <= 0:
        return KSResult(statistic=math.nan, bound=math.nan, p_value=math.nan, n_effective=0.0)
    p, q = ref / n_ref, cur / n_cur
    d = float(np.max(np.abs(np.cumsum(p) - np.cumsum(q))))
    n_eff = n_ref * n_cur / (n_ref + n_cur)
    p_value = kolmogorov_sf(math.sqrt(n_eff) * d) if d > 0 else 1.0
    return KSResult(statistic=d, bound=float(max(p.max(), q.max())), p_value=p_value, n_effective=float(n_eff))


def pool_sparse_columns(table: np.ndarray, min_expected: float = MIN_EXPECTED) -> np.ndarray:
    """Pool columns of a 2xK table whose smallest expected count is below `min_expected`.

    Sparse columns are summed into one pooled column; if that is still sparse, it is folded
    into the smallest remaining column. All-zero columns are dropped.
    """
    table = np.asarray(table, dtype=float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] == 0:
        return table
    rows = table.sum(axis=1)
    expected_min = rows.min() * table.sum(axis=0) / table.sum()
    sparse = expected_min < min_expected
    if not sparse.any():
        return table
    dense = table[:, ~sparse]
    pooled = table[:, sparse].sum(axis=1, keepdims=True)
    pooled_expected = rows.min() * pooled.sum() / table.sum()
    if pooled_expected >= min_expected or dense.shape[1] == 0:
        return np.hstack([dense, pooled])
    smallest = int(np.argmin(dense.sum(axis=0)))
    dense = dense.copy()
    dense[:, smallest] += pooled[:, 0]
    return dense


@dataclass(frozen=True)
class Chi2Result:
    """Chi-square test of independence on a (pooled) 2xK table."""

    statistic: float
    p_value: float
    dof: int
    table: np.ndarray


def chi2_independence(ref_counts: np.ndarray, cur_counts: np.ndarray) -> Chi2Result:
    """Pearson chi-square of the 2xK table [ref; cur] after pooling sparse columns.

    Equal to `scipy.stats.chi2_contingency(table, correction=False)` on the pooled table.
    """
    table = pool_sparse_columns(np.vstack([ref_counts, cur_counts]))
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return Chi2Result(statistic=0.0, p_value=1.0, dof=0, table=table)
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    dof = table.shape[1] - 1
    return Chi2Result(statistic=statistic, p_value=chi2_sf(statistic, dof), dof=dof, table=table)


def benjamini_hochberg(p_values: list[float], fdr: float) -> list[bool]:
    """Reject flags controlling the false discovery rate at `fdr`; NaN p-values never reject."""
    p = np.asarray(p_values, dtype=float)
    valid = np.flatnonzero(~np.isnan(p))
    rejected = np.zeros(len(p), dtype=bool)
    m = len(valid)
    if m == 0:
        return rejected.tolist()
    order = valid[np.argsort(p[valid], kind="stable")]
    passing = p[order] <= fdr * np.arange(1, m + 1) / m
    if passing.any():
        k = int(np.flatnonzero(passing).max())
        rejected[order[: k + 1]] = True
    return rejected.tolist()
