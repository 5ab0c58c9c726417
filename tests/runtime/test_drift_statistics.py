"""Drift statistics against scipy on small data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from scipy import stats

from mlc.runtime.drift import statistics as st
from mlc.runtime.drift.check import _NumericCurrent
from mlc.runtime.drift.profile import (
    NumericProfiler,
    bin_counts,
    bin_table,
    count_keys,
    grid_keys,
    merge_sketches,
    quantile_edge_keys,
    table_bin_counts,
)

BITS = 10


def binned(ref: np.ndarray, cur: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference/current counts on reference-quantile bins, as the check computes them."""
    ref_keys, ref_counts = merge_sketches([np.unique(grid_keys(ref, BITS), return_counts=True)])
    edges = quantile_edge_keys(ref_keys, ref_counts, bins)
    return (bin_counts(edges, ref_keys, ref_counts), bin_counts(edges, grid_keys(cur, BITS)))


samples = hs.lists(hs.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=200)
int_samples = hs.lists(hs.integers(-5, 5).map(float), min_size=1, max_size=200)


finite_or_not = hs.floats(allow_nan=False)  # infinities and extremes reach the outermost buckets


def test_counts_with_zeros_are_tallied_not_sorted():
    import pyarrow as pa

    # Counts (0, 1, 2, ...): 0.0's key lies ~1000 octaves below 1.0's, past one dense window.
    values = np.random.default_rng(0).poisson(2, 100_000).astype(np.float64)
    values[:10] = -0.0  # shares 0.0's key
    profiler = NumericProfiler(BITS)
    profiler.add(pa.array(values))
    assert profiler.parts == [] and profiler.zeros == int(np.count_nonzero(values == 0))
    keys, counts = profiler.sketch()
    expected = np.unique(grid_keys(values, BITS), return_counts=True)
    assert keys.tolist() == expected[0].tolist() and counts.tolist() == expected[1].tolist()


def test_values_of_both_signs_are_tallied_in_one_window_not_sorted():
    import pyarrow as pa

    # Normal data: negatives' and positives' keys lie ~2M keys apart, their magnitudes close.
    values = np.random.default_rng(1).normal(size=100_000)
    profiler = NumericProfiler(BITS)
    profiler.add(pa.array(values))
    assert profiler.parts == [] and profiler.tally.counts is not None
    keys, counts = profiler.sketch()
    expected = np.unique(grid_keys(values, BITS), return_counts=True)
    assert keys.tolist() == expected[0].tolist() and counts.tolist() == expected[1].tolist()


@settings(max_examples=200, deadline=None)
@given(
    ref=hs.lists(finite_or_not, min_size=1, max_size=100),
    cur=hs.lists(finite_or_not, max_size=200),
    bins=hs.integers(1, 300),
)
def test_binning_by_lookup_counts_exactly_what_sorting_counts(ref, cur, bins):
    ref_keys, ref_counts = np.unique(grid_keys(np.array(ref), BITS), return_counts=True)
    edges = quantile_edge_keys(ref_keys, ref_counts, bins)
    keys = grid_keys(np.array(cur, dtype=np.float64), BITS)
    expected = bin_counts(edges, keys.copy())
    assert table_bin_counts(bin_table(edges), int(edges[0]), keys).tolist() == expected.tolist()


@settings(max_examples=200, deadline=None)
@given(
    values=hs.one_of(
        hs.lists(finite_or_not, max_size=300),
        hs.lists(hs.floats(-3, 3), max_size=300),  # narrow spans: counted directly
        hs.lists(hs.integers(0, 40).map(float), max_size=300),
    ),
    bits=hs.sampled_from([0, 4, 10, 19]),
)
def test_counting_keys_directly_equals_sorting_them(values, bits):
    keys = grid_keys(np.array(values, dtype=np.float64), bits)
    expected = np.unique(keys, return_counts=True)
    got = count_keys(keys, 1 << (11 + bits))
    assert got[0].tolist() == expected[0].tolist() and got[1].tolist() == expected[1].tolist()
    assert got[0].dtype == np.int64


batches_of_values = hs.lists(
    hs.one_of(
        hs.lists(finite_or_not, max_size=100),  # wide spans: the sorted fallback
        hs.lists(hs.floats(-3, 3), max_size=100),  # both signs, each tallied densely
        hs.lists(hs.floats(1, 1e3), max_size=100),
        hs.lists(hs.integers(0, 40).map(float), max_size=100),
        hs.lists(hs.integers(-40, 40).map(float), max_size=100),  # zeros amid both signs
        # Signed zeros and subnormals: -0.0 is 0.0's bucket; the smallest subnormals share the
        # lowest magnitude key with zero, but not its bucket when negative.
        hs.lists(hs.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1e-310, -1e-310, 1.5, -1.5]), max_size=100),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=200, deadline=None)
@given(batches=batches_of_values, bits=hs.sampled_from([0, 10, 19]))
def test_profiler_tallies_batches_into_the_sketch_sorting_gives(batches, bits):
    import pyarrow as pa

    profiler = NumericProfiler(bits)
    for batch in batches:
        profiler.add(pa.array(batch, pa.float64()))
    everything = np.array([v for batch in batches for v in batch], dtype=np.float64)
    expected = np.unique(grid_keys(everything, bits), return_counts=True)
    keys, counts = profiler.sketch()
    assert keys.tolist() == expected[0].tolist() and counts.tolist() == expected[1].tolist()


@settings(max_examples=200, deadline=None)
@given(
    ref=hs.lists(hs.one_of(finite_or_not, hs.floats(-3, 3), hs.floats(1, 1e3)), min_size=1, max_size=100),
    batches=batches_of_values,
    bins=hs.integers(1, 300),
)
def test_check_counts_each_bin_exactly_whichever_way_it_counts(ref, batches, bins):
    import pyarrow as pa

    ref_keys, ref_counts = np.unique(grid_keys(np.array(ref), BITS), return_counts=True)
    edges = quantile_edge_keys(ref_keys, ref_counts, bins)
    current = _NumericCurrent(edges, BITS)
    for batch in batches:
        current.add(pa.array(batch, pa.float64()))
    everything = np.array([v for batch in batches for v in batch], dtype=np.float64)
    assert current.binned().tolist() == bin_counts(edges, grid_keys(everything, BITS)).tolist()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # scipy's own asymp branch, n=1
@settings(max_examples=150, deadline=None)
@given(ref=hs.one_of(samples, int_samples), cur=hs.one_of(samples, int_samples), bins=hs.integers(2, 30))
def test_binned_ks_is_within_one_bin_mass_of_scipy(ref, cur, bins):
    ref, cur = np.array(ref), np.array(cur)
    ref_counts, cur_counts = binned(ref, cur, bins)
    assert ref_counts.sum() == len(ref) and cur_counts.sum() == len(cur)
    result = st.ks_binned(ref_counts, cur_counts)
    exact = stats.ks_2samp(ref, cur, method="asymp").statistic
    assert result.statistic <= exact + 1e-12
    assert exact <= result.statistic + result.bound + 1e-12


def test_binned_ks_p_value_matches_scipy_asymptotic_on_fine_grid():
    rng = np.random.default_rng(0)
    ref, cur = rng.normal(size=3000), rng.normal(0.1, 1, size=2000)
    ref_counts, cur_counts = binned(ref, cur, 1000)
    result = st.ks_binned(ref_counts, cur_counts)
    exact = stats.ks_2samp(ref, cur, method="asymp")
    assert abs(result.statistic - exact.statistic) <= result.bound
    assert result.p_value == pytest.approx(exact.pvalue, rel=0.5)


tables = hs.lists(hs.tuples(hs.integers(0, 60), hs.integers(0, 60)), min_size=2, max_size=12)


@settings(max_examples=150, deadline=None)
@given(columns=tables)
def test_chi2_equals_scipy_chi2_contingency_on_the_pooled_table(columns):
    ref = np.array([c[0] for c in columns])
    cur = np.array([c[1] for c in columns])
    result = st.chi2_independence(ref, cur)
    assert result.table.sum() == ref.sum() + cur.sum()  # pooling never loses counts
    if result.dof == 0:
        return
    expected = stats.chi2_contingency(result.table, correction=False)
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-9, abs=1e-12)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-12)
    assert result.dof == expected.dof


def test_chi2_unpooled_table_is_exactly_scipys():
    ref, cur = np.array([500, 300, 200]), np.array([90, 70, 40])
    result = st.chi2_independence(ref, cur)
    expected = stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert result.table.shape == (2, 3)
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)


def test_unseen_category_gives_finite_chi2_and_psi():
    ref = np.array([1000, 500, 0])  # third level never seen in the reference
    cur = np.array([100, 50, 60])
    result = st.chi2_independence(ref, cur)
    assert np.isfinite(result.statistic) and result.p_value < 1e-6
    assert np.isfinite(st.psi(ref, cur)) and st.psi(ref, cur) > 0.2


def test_sparse_levels_are_pooled():
    table = st.pool_sparse_columns(np.array([[1000, 1000, 30, 30, 20], [100, 100, 3, 2, 1]]))
    assert table.shape == (2, 3)
    assert table[:, 2].tolist() == [80, 6]


def test_a_still_sparse_pool_is_folded_into_the_smallest_level():
    table = st.pool_sparse_columns(np.array([[1000, 900, 2, 1], [100, 90, 0, 1]]))
    assert table.tolist() == [[1000, 903], [100, 91]]


@settings(max_examples=100, deadline=None)
@given(p=hs.lists(hs.floats(0, 1), min_size=1, max_size=40), fdr=hs.sampled_from([0.01, 0.05, 0.2]))
def test_benjamini_hochberg_matches_scipy(p, fdr):
    expected = stats.false_discovery_control(p, method="bh") <= fdr
    assert st.benjamini_hochberg(p, fdr) == expected.tolist()


def test_benjamini_hochberg_ignores_nan():
    assert st.benjamini_hochberg([float("nan"), 0.001, 0.9], 0.05) == [False, True, False]


def test_sample_size_aware_psi_threshold_keeps_false_alarms_at_nominal_level():
    rng = np.random.default_rng(1)
    ref_values = rng.normal(size=50_000)
    n_cur, bins, alpha = 300, 20, 0.05
    alarms_fixed = alarms_aware = 0
    runs = 300
    for _ in range(runs):
        ref_counts, cur_counts = binned(ref_values, rng.normal(size=n_cur), bins)
        value = st.psi(ref_counts, cur_counts)
        occupied = int(((ref_counts + cur_counts) > 0).sum())
        threshold = max(0.1, st.psi_null_threshold(len(ref_values), n_cur, occupied, alpha))
        alarms_fixed += value > 0.05  # a fixed threshold fires on identical distributions
        alarms_aware += value > threshold
    assert alarms_aware / runs <= 2 * alpha
    assert alarms_fixed / runs > 0.3


def test_psi_null_threshold_shrinks_with_sample_size():
    small = st.psi_null_threshold(10_000, 100, 100, 0.01)
    large = st.psi_null_threshold(10_000, 100_000, 100, 0.01)
    assert small > 1.0 > large


def test_distribution_functions_match_scipy():
    from scipy import special

    for x in [0.0, 0.01, 0.2, 0.5, 0.83, 0.99, 1.0, 1.36, 2.0, 4.0, 8.0]:
        assert st.kolmogorov_sf(x) == pytest.approx(special.kolmogorov(x), rel=1e-10, abs=1e-300)
    for dof in [1, 2, 3, 7, 19, 99, 101, 1000]:
        for x in [0.0, 0.001, 0.5, 1.0, dof * 0.5, dof, dof + 10, dof * 3.0 + 50]:
            assert st.chi2_sf(x, dof) == pytest.approx(special.chdtrc(dof, x), rel=1e-9, abs=1e-300)
        for alpha in [0.5, 0.05, 1e-3, 1e-6]:
            assert st.chi2_isf(alpha, dof) == pytest.approx(special.chdtri(dof, alpha), rel=1e-9)
