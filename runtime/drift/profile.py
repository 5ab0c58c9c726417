"""Reference profiles: per-feature binned summaries that can be built in shards and merged.

Format (JSON, ``format_version`` 1, keys sorted so files are byte-deterministic)::

    {"format_version": 1, "rows": N,
     "settings": {"bins": 100, "resolution_bits": 10, "max_categories": 10000},
     "features": {
       "<numeric>": {"kind": "numeric", "count": n, "null": .., "nan": .., "pos_inf": ..,
                     "neg_inf": .., "sketch": {"encoding": "zlib-base64-int64le",
                                               "key_deltas": "..", "counts": ".."},
                     "bins": {"edge_keys": [..], "edges": [..], "counts": [..]}},
       "<categorical>": {"kind": "categorical", "count": n, "null": .., "exact": true,
                         "categories": {"a": 10, ..}, "other": 0}}}

Numeric values are counted exactly on a fixed, data-independent grid (the *sketch*): each
float is mapped to an order-preserving 64-bit integer and truncated to ``resolution_bits``
mantissa bits (relative bucket width 2**-bits). Sketches of shards add exactly, and the
reference-quantile bins (``bins``: ``bins`` equal-mass bins whose edges are sketch bucket
boundaries, plus an underflow and an overflow bin) are a pure function of the sketch, so
``merge_profiles([profile(A), profile(B)]) == profile(A + B)``. Since each bin edge is an
exact float boundary, bin counts are exact counts of the raw values, which is what the KS
error bound relies on. Infinities are ordered values (they land in the outermost buckets);
NaN and nulls are missing values. Category counts are exact up to ``max_categories``
levels per feature; beyond that the rarest levels go to ``other`` and ``exact`` is false.
"""

from __future__ import annotations

import base64
import json
import os
import zlib
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mlc.runtime.drift.config import FeatureKind
from mlc.runtime.drift.data import DataError, feed_batches, open_dataset, schema_kinds
from mlc.runtime.errors import MlcRuntimeError

FORMAT_VERSION = 1
DEFAULT_BINS = 100
DEFAULT_RESOLUTION_BITS = 10
DEFAULT_MAX_CATEGORIES = 10_000
_SIGN_BIT = np.int64(-(1 << 63))
MAX_RESOLUTION_BITS = 19  # keeps keys below 2**31, so batch sorts run on int32
# Smallest number of pending sketch entries per feature worth a compaction.
_COMPACT_AT = 1 << 16
# Widest range of keys counted densely per numeric feature (a profile's magnitude keys, 1 MB of
# counts with both signs; a check's keys between the edges): 64 octaves at the default 10
# resolution bits. Wider ones are sorted (`NumericProfiler`) or looked up (`bin_table`).
MAX_DENSE_SPAN = 1 << 16
MAX_TABLE_SPAN = 1 << 22  # widest key range binned by lookup (`bin_table`); wider ones are sorted


class ProfileError(MlcRuntimeError):
    """A profile file that cannot be used (missing, malformed, wrong version, mismatched)."""


# ---------------------------------------------------------------- numeric grid
def grid_keys(values: np.ndarray, resolution_bits: int) -> np.ndarray:
    """Order-preserving int64 bucket keys of non-NaN float64 values (-0.0 shares 0.0's).

    The float's bits become an order-preserving unsigned integer (negatives: all bits
    flipped; positives: sign bit set), truncated to sign, exponent and `resolution_bits`
    mantissa bits, so keys are < 2**(12 + resolution_bits).
    """
    if not 0 <= resolution_bits <= MAX_RESOLUTION_BITS:
        raise ValueError(f"resolution_bits must be in 0..{MAX_RESOLUTION_BITS}")
    # In-place steps on one fresh buffer: temporaries of this size cost more than the math.
    signed = np.add(np.asarray(values, dtype=np.float64), 0.0).view(np.int64)
    flip = signed >> 63  # arithmetic shift: -1 (all ones) for negatives, 0 otherwise
    flip |= _SIGN_BIT  # always flip the sign bit
    signed ^= flip
    unsigned = signed.view(np.uint64)
    np.right_shift(unsigned, np.uint64(52 - resolution_bits), out=unsigned)  # logical shift
    return signed


def key_floor(key: int, resolution_bits: int) -> float:
    """Smallest float in a grid bucket; the buckets of ±inf (shared with NaN bit patterns,
    which never reach the grid) report ±inf."""
    ordered = int(key) << (52 - resolution_bits)
    bits = ordered & ~(1 << 63) if ordered >> 63 else ~ordered & ((1 << 64) - 1)
    value = float(np.array([bits], dtype=np.uint64).view(np.float64)[0])
    if np.isnan(value):
        return float("inf") if ordered >> 63 else float("-inf")
    return value


def quantile_edge_keys(keys: np.ndarray, counts: np.ndarray, bins: int) -> np.ndarray:
    """Bin edges (grid keys) giving ~equal reference mass per bin; duplicates collapse."""
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    cum = np.cumsum(counts)
    targets = cum[-1] * np.arange(1, bins) / bins
    inner = keys[np.searchsorted(cum, targets, side="left")] + 1
    edges = np.concatenate([keys[:1], inner, keys[-1:] + 1])  # sorted: keys and targets ascend
    # Dropping repeats of sorted values by hand: np.unique would import numpy.ma (~15 ms a process).
    return edges[np.concatenate([[True], edges[1:] != edges[:-1]])]


def bin_counts(edge_keys: np.ndarray, keys: np.ndarray, counts: np.ndarray | None = None) -> np.ndarray:
    """Counts per bin [underflow, inner bins..., overflow] of grid keys.

    Without `counts`, `keys` are raw per-value keys; with it, sorted unique keys and their
    counts (a sketch). Sorting then locating the ~100 edges is ~2x faster than a binary
    search per value.
    """
    if counts is None:
        keys = np.sort(keys)
        cumulative = np.arange(len(keys) + 1)
    else:
        cumulative = np.concatenate([[0], np.cumsum(counts)])
    positions = np.searchsorted(keys, edge_keys, side="left")
    below = np.concatenate([[0], cumulative[positions], [cumulative[-1]]])
    return np.diff(below).astype(np.int64)


def bin_table(edge_keys: np.ndarray) -> np.ndarray:
    """The bin, numbered as `bin_counts` numbers them, of every grid key from `edge_keys[0] - 1`
    (underflow) to `edge_keys[-1]` (overflow): binning by lookup is O(n), ~5x faster than sorting.

    One entry per key between the first and last edge: callers keep that span at most
    `MAX_TABLE_SPAN` (4 MB as uint8, up to 255 edges; at the default 10 resolution bits every
    span is). `edge_keys` must be non-empty.
    """
    count = len(edge_keys)
    dtype = np.uint8 if count < 2**8 else np.uint16 if count < 2**16 else np.uint32
    inner = np.repeat(np.arange(1, count, dtype=dtype), np.diff(edge_keys))
    return np.concatenate([np.zeros(1, dtype), inner, np.full(1, count, dtype)])


def table_bin_counts(table: np.ndarray, first_edge: int, keys: np.ndarray) -> np.ndarray:
    """`bin_counts(edge_keys, keys)` through `bin_table(edge_keys)`; overwrites `keys`."""
    low = first_edge - 1
    np.clip(keys, low, low + len(table) - 1, out=keys)
    keys -= low
    return np.bincount(table[keys], minlength=int(table[-1]) + 1).astype(np.int64)


def count_keys(keys: np.ndarray, zero_key: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct grid keys and their counts, as `np.unique(keys, return_counts=True)`.

    Keys of one sign usually span a few octaves (a few thousand buckets), though negatives and
    positives lie far apart (between them: every tiny magnitude). So each sign's keys (split at
    `zero_key`, the key of 0.0) are counted directly, O(n), when their span is at most a few
    times their number, and sorted otherwise.
    """
    parts = []
    for side in (keys[keys < zero_key], keys[keys >= zero_key]):
        if len(side) == 0:
            continue
        low = int(side.min())
        span = int(side.max()) - low + 1
        if span <= 4 * len(side) + 4096:
            counts = np.bincount(side - low, minlength=span)
            present = np.flatnonzero(counts)
            parts.append((present + low, counts[present]))
        else:
            # int32 sorts ~2x faster than int64 and keys fit (MAX_RESOLUTION_BITS)
            unique, counts = np.unique(side.astype(np.int32), return_counts=True)
            parts.append((unique.astype(np.int64), counts))
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return (
        np.concatenate([k for k, _ in parts]).astype(np.int64),
        np.concatenate([c for _, c in parts]).astype(np.int64),
    )


def merge_sketches(parts: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Exact sum of (keys, counts) sketches, as sorted unique keys with counts."""
    parts = list(parts)
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    keys = np.concatenate([k for k, _ in parts])
    counts = np.concatenate([c for _, c in parts])
    if len(keys) and keys.max() < 2**31 and keys.min() >= 0:
        keys = keys.astype(np.int32)  # argsort of int32 is ~2x faster
    unique, inverse = np.unique(keys, return_inverse=True)
    unique = unique.astype(np.int64)
    summed = np.bincount(inverse, weights=counts.astype(np.float64), minlength=len(unique))
    return unique, np.rint(summed).astype(np.int64)


SKETCH_ENCODING = "zlib-base64-int64le"


def _pack(values: np.ndarray) -> str:
    # Level 1: ~8x faster than 6 on sketches (6 ms a feature at 6, the profile's largest cost)
    # for ~25% more bytes; any level decodes the same.
    return base64.b64encode(zlib.compress(values.astype("<i8").tobytes(), 1)).decode("ascii")


def _unpack(text: str) -> np.ndarray:
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype="<i8").astype(np.int64)


def encode_sketch(keys: np.ndarray, counts: np.ndarray) -> dict[str, str]:
    """Sketch as compressed int64 arrays (keys delta-encoded): ~10x smaller than JSON lists
    and decoded without building Python ints, which matters at 1e9-row references."""
    deltas = np.diff(keys, prepend=np.int64(0))
    return {"encoding": SKETCH_ENCODING, "key_deltas": _pack(deltas), "counts": _pack(counts)}


def decode_sketch(sketch: Mapping[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """(keys, counts) of an encoded sketch."""
    if sketch.get("encoding") != SKETCH_ENCODING:
        raise ProfileError(f"unknown sketch encoding {sketch.get('encoding')!r}")
    try:
        return np.cumsum(_unpack(sketch["key_deltas"])), _unpack(sketch["counts"])
    except (KeyError, ValueError, zlib.error) as exc:
        raise ProfileError(f"corrupt sketch in profile: {exc}") from exc


# ---------------------------------------------------------------- accumulators
@dataclass
class MissingCounts:
    """Row and missing-value counters shared by both feature kinds."""

    count: int = 0
    null: int = 0
    nan: int = 0
    pos_inf: int = 0
    neg_inf: int = 0


# Arrow types whose values buffer numpy reads as it is (Array.to_numpy would import pandas).
_NUMPY_TYPES = {
    pa.float64(): np.float64,
    pa.float32(): np.float32,
    pa.int64(): np.int64,
    pa.int32(): np.int32,
    pa.int16(): np.int16,
    pa.int8(): np.int8,
    pa.uint64(): np.uint64,
    pa.uint32(): np.uint32,
    pa.uint16(): np.uint16,
    pa.uint8(): np.uint8,
}


def valid_mask(array: pa.Array) -> np.ndarray | None:
    """Which slots of an Arrow array hold a value (from its validity bitmap); None when all do."""
    if array.null_count == 0:
        return None
    bits = np.unpackbits(np.frombuffer(array.buffers()[0], dtype=np.uint8), bitorder="little")
    return bits[array.offset : array.offset + len(array)].view(bool)


def _as_numpy(array: pa.Array) -> np.ndarray:
    """The values buffer of a primitive numeric array, zero-copy (null slots hold junk)."""
    dtype = np.dtype(_NUMPY_TYPES[array.type])
    return np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)


def numeric_values(array: pa.Array, counts: MissingCounts) -> np.ndarray:
    """Non-missing float64 values of an Arrow array, updating the missing/non-finite counters.

    Primitive types are read straight from the Arrow buffers (no pyarrow.compute import, ~0.1 s
    a process); others (decimals) are cast by Arrow first.
    """
    if isinstance(array, pa.ChunkedArray):
        array = pa.concat_arrays(array.chunks)
    counts.count += len(array)
    counts.null += array.null_count
    if array.type not in _NUMPY_TYPES:
        import pyarrow.compute as pc

        array = pc.cast(array, pa.float64(), safe=False)
    values = _as_numpy(array)
    valid = valid_mask(array)
    if valid is not None:
        values = values[valid]
    if values.dtype.kind in "iu":
        return values.astype(np.float64)  # integers are never NaN or infinite
    values = values.astype(np.float64, copy=False)  # float32
    if np.isfinite(values).all():  # the common case: one pass instead of two
        return values
    nan = np.isnan(values)
    n_nan = int(nan.sum())
    if n_nan:
        counts.nan += n_nan
        values = values[~nan]
    inf = np.isinf(values)
    if inf.any():
        counts.pos_inf += int((values[inf] > 0).sum())
        counts.neg_inf += int((values[inf] < 0).sum())
    return values


def category_counts(array: pa.Array, counts: MissingCounts) -> dict[str, int]:
    """Exact counts of the non-null values of an Arrow array, as strings.

    Dictionary arrays (how drift reads Parquet string columns) are counted on their indices
    with bincount, never materializing a string per row; other arrays through Arrow's
    value_counts.
    """
    counts.count += len(array)
    counts.null += array.null_count
    if pa.types.is_dictionary(array.type) and (
        pa.types.is_string(array.type.value_type) or pa.types.is_large_string(array.type.value_type)
    ):
        indices = _as_numpy(array.indices)
        valid = valid_mask(array)
        if valid is not None:
            indices = indices[valid]
        tally = np.bincount(indices, minlength=len(array.dictionary))
        present = np.flatnonzero(tally)
        levels = array.dictionary.to_pylist()
        result: dict[str, int] = {}
        # A dictionary may repeat a value (Parquet falls back from dictionary pages mid-chunk).
        for index, n in zip(present.tolist(), tally[present].tolist(), strict=True):
            if levels[index] is not None:  # a null in the dictionary itself, as value_counts skips it
                result[levels[index]] = result.get(levels[index], 0) + n
        return result
    import pyarrow.compute as pc

    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        array = array.cast(pa.string())
    result = {}
    for item in pc.value_counts(array).to_pylist():
        if item["values"] is not None:
            result[item["values"]] = int(item["counts"])
    return result


def magnitude_keys(values: np.ndarray, resolution_bits: int) -> np.ndarray:
    """Grid keys of the values' magnitudes: `grid_keys(abs(values)) - zero key`, in 2 passes.

    Shifting the sign bit out of the float's bits leaves the magnitude's exponent and mantissa,
    whose top `resolution_bits` mantissa bits are the bucket. A value's grid key is the zero key
    plus this for positives, and the zero key minus one minus this for negatives
    (`signed_keys`), so one sign bit and this key say exactly which bucket a value is in.
    """
    magnitude = np.left_shift(values.view(np.uint64), np.uint64(1))
    np.right_shift(magnitude, np.uint64(53 - resolution_bits), out=magnitude)
    return magnitude.view(np.int64)


def signed_keys(magnitudes: np.ndarray, negative: np.ndarray, zero_key: int) -> np.ndarray:
    """Grid keys of buckets given as magnitude keys and signs (inverse of `magnitude_keys`)."""
    return np.where(negative, zero_key - 1 - magnitudes, zero_key + magnitudes)


@dataclass
class MagnitudeTally:
    """Exact counts of nonzero values by bucket, as (magnitude key, sign) pairs, in one dense
    window of magnitude keys, `low` to `low + len(counts) // 2 - 1`.

    A feature's magnitudes usually span a few octaves (1024 keys each at 10 resolution bits)
    whatever their signs, so counting pair `2 * (key - low) + sign` with one bincount a batch
    is O(n) and needs neither a sort nor a split by sign (a boolean mask on mixed signs costs
    3-4x the rest of the count); the window's nonzero entries are the sketch.
    """

    low: int = 0
    counts: np.ndarray | None = None

    def add(self, magnitudes: np.ndarray, negative: np.ndarray, low: int, high: int) -> bool:
        """Count values by their `magnitudes` (all within `low`..`high`, overwritten) and sign
        bits (`negative`, 0 or 1); False, counting nothing, when the window would have to
        outgrow `MAX_DENSE_SPAN` magnitude keys."""
        if self.counts is None:
            new_low, new_high = low, high
        else:
            new_low, new_high = min(self.low, low), max(self.low + len(self.counts) // 2 - 1, high)
        if new_high - new_low + 1 > MAX_DENSE_SPAN:
            return False
        if self.counts is None or new_low < self.low or new_high >= self.low + len(self.counts) // 2:
            grown = np.zeros(2 * (new_high - new_low + 1), dtype=np.int64)
            if self.counts is not None:
                start = 2 * (self.low - new_low)
                grown[start : start + len(self.counts)] = self.counts
            self.low, self.counts = new_low, grown
        magnitudes -= low
        magnitudes <<= 1
        magnitudes |= negative
        start = 2 * (low - self.low)
        self.counts[start : start + 2 * (high - low + 1)] += np.bincount(magnitudes, minlength=2 * (high - low + 1))
        return True

    def sketch(self, zero_key: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """The counted buckets as two sketches, negatives' and positives' (keys ascending)."""
        empty = np.zeros(0, dtype=np.int64)
        if self.counts is None:
            return (empty, empty), (empty, empty)
        present = np.flatnonzero(self.counts)
        counts = self.counts[present]
        negative = (present & 1).astype(bool)
        keys = signed_keys(present // 2 + self.low, negative, zero_key)
        # Negatives' keys descend as their magnitudes ascend.
        return (keys[negative][::-1], counts[negative][::-1]), (keys[~negative], counts[~negative])


@dataclass
class NumericProfiler:
    """Accumulates one numeric feature's exact grid sketch, batch by batch.

    Nonzero values are tallied densely by magnitude and sign (`MagnitudeTally`); a batch whose
    magnitudes would stretch the window past `MAX_DENSE_SPAN` (values spanning hundreds of
    octaves, or subnormals) is counted into sorted sketch parts instead, compacted as they
    grow. Both are exact, so the sketch is the same either way. Exact zeros are counted on
    their own: 0.0's magnitude lies ~1000 octaves below 1.0's, so counts and flags
    (0, 1, 2, ...) would otherwise stretch the window past its limit and be sorted.
    """

    resolution_bits: int
    missing: MissingCounts = field(default_factory=MissingCounts)
    parts: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    tally: MagnitudeTally = field(default_factory=MagnitudeTally)
    zeros: int = 0  # values that are exactly 0.0 (or -0.0)
    _size: int = 0
    _compacted: int = 0

    def add(self, array: pa.Array) -> None:
        values = numeric_values(array, self.missing)
        if len(values) == 0:
            return
        magnitudes = magnitude_keys(values, self.resolution_bits)
        low, high = int(magnitudes.min()), int(magnitudes.max())
        if low == 0:  # zeros (or subnormals, which share the lowest buckets with them)
            is_zero = values == 0.0
            zeros = int(np.count_nonzero(is_zero))
            if zeros:
                self.zeros += zeros
                values = values[~is_zero]
                if len(values) == 0:
                    return
                magnitudes = magnitude_keys(values, self.resolution_bits)
                low, high = int(magnitudes.min()), int(magnitudes.max())
        if low > 0:  # else subnormals share zero's magnitude key, not its bucket: sorted below
            negative = (values.view(np.uint64) >> np.uint64(63)).view(np.int64)
            if self.tally.add(magnitudes, negative, low, high):
                return
        self._add_sorted(grid_keys(values, self.resolution_bits))

    def _add_sorted(self, keys: np.ndarray) -> None:
        keys, counts = count_keys(keys, self.zero_key)
        self.parts.append((keys, counts))
        self._size += len(keys)
        # Compact once the pending parts outgrow the compacted sketch: memory stays
        # O(distinct buckets), not O(rows), at amortized O(1) merges per entry.
        if self._size > max(2 * self._compacted, _COMPACT_AT):
            self.parts = [merge_sketches(self.parts)]
            self._size = self._compacted = len(self.parts[0][0])

    @property
    def zero_key(self) -> int:
        """The grid key of 0.0: negatives' keys lie below it."""
        return 1 << (11 + self.resolution_bits)

    def sketch(self) -> tuple[np.ndarray, np.ndarray]:
        negative, positive = self.tally.sketch(self.zero_key)
        zero = (
            np.array([self.zero_key] if self.zeros else [], np.int64),
            np.array([self.zeros] if self.zeros else [], np.int64),
        )
        if not self.parts:  # negatives' keys all lie below zero's, zero's below positives': in order
            return np.concatenate([negative[0], zero[0], positive[0]]), np.concatenate(
                [negative[1], zero[1], positive[1]]
            )
        return merge_sketches([*self.parts, negative, zero, positive])


@dataclass
class CategoryProfiler:
    """Accumulates one categorical feature's exact level counts."""

    max_categories: int
    missing: MissingCounts = field(default_factory=MissingCounts)
    categories: dict[str, int] = field(default_factory=dict)
    other: int = 0
    exact: bool = True

    def add(self, array: pa.Array) -> None:
        for level, n in category_counts(array, self.missing).items():
            self.categories[level] = self.categories.get(level, 0) + n
        if len(self.categories) > 4 * self.max_categories:  # bound memory on ID-like columns
            self.categories, dropped = cap_categories(self.categories, self.max_categories)
            self.other += dropped
            self.exact = False


def cap_categories(categories: Mapping[str, int], max_categories: int) -> tuple[dict[str, int], int]:
    """Keep the `max_categories` most frequent levels (ties by name); return the rest's sum."""
    if len(categories) <= max_categories:
        return dict(categories), 0
    ranked = sorted(categories.items(), key=lambda item: (-item[1], item[0]))
    kept = dict(ranked[:max_categories])
    return kept, sum(n for _, n in ranked[max_categories:])


# ---------------------------------------------------------------- profile documents
def _missing_dict(missing: MissingCounts) -> dict[str, int]:
    return {
        "count": missing.count,
        "null": missing.null,
        "nan": missing.nan,
        "pos_inf": missing.pos_inf,
        "neg_inf": missing.neg_inf,
    }


def _json_float(value: float) -> float | str:
    """Finite floats stay numbers; infinities become strings, as JSON has no infinity."""
    if np.isfinite(value):
        return float(value)
    return "inf" if value > 0 else "-inf"


def numeric_feature(
    missing: MissingCounts, keys: np.ndarray, counts: np.ndarray, bins: int, resolution_bits: int
) -> dict[str, Any]:
    """Numeric feature entry: counters, sketch, and reference-quantile bins derived from it."""
    edge_keys = quantile_edge_keys(keys, counts, bins)
    return {
        "kind": "numeric",
        **_missing_dict(missing),
        "sketch": encode_sketch(keys, counts),
        "bins": {
            "edge_keys": edge_keys.tolist(),
            "edges": [_json_float(key_floor(int(k), resolution_bits)) for k in edge_keys],
            "counts": bin_counts(edge_keys, keys, counts).tolist() if len(keys) else [],
        },
    }


def categorical_feature(
    missing: MissingCounts, categories: Mapping[str, int], other: int, exact: bool, max_categories: int
) -> dict[str, Any]:
    """Categorical feature entry: counters and level counts (rarest beyond the cap pooled)."""
    kept, dropped = cap_categories(categories, max_categories)
    return {
        "kind": "categorical",
        "count": missing.count,
        "null": missing.null,
        "categories": kept,
        "other": other + dropped,
        "exact": exact and dropped == 0,
    }


def build_profile(
    data: str | Path,
    features: Mapping[str, FeatureKind] | None = None,
    *,
    bins: int = DEFAULT_BINS,
    resolution_bits: int = DEFAULT_RESOLUTION_BITS,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
) -> dict[str, Any]:
    """Profile a Parquet/CSV reference dataset (file, directory, glob or remote URI such as
    s3://bucket/prefix/) in record batches (memory independent of rows).

    `features` maps column -> "numeric" | "categorical" (from the contract); without it the
    kinds come from the file schema. Training calls this and logs the result with
    :func:`mlc.runtime.drift.mlflow_profile.log_reference_profile`.
    """
    if bins < 2:
        raise ValueError("bins must be at least 2")
    dataset = open_dataset(data)
    kinds = dict(features) if features is not None else schema_kinds(dataset)
    if not kinds:
        raise DataError("no numeric or categorical columns to profile")
    profilers: dict[str, NumericProfiler | CategoryProfiler] = {
        name: NumericProfiler(resolution_bits) if kind == "numeric" else CategoryProfiler(max_categories)
        for name, kind in kinds.items()
    }
    rows = feed_batches(dataset, profilers)
    if rows == 0:
        raise DataError(f"reference data is empty: {data}")

    def finish(profiler: NumericProfiler | CategoryProfiler) -> dict[str, Any]:
        if isinstance(profiler, NumericProfiler):
            keys, counts = profiler.sketch()
            return numeric_feature(profiler.missing, keys, counts, bins, resolution_bits)
        return categorical_feature(
            profiler.missing, profiler.categories, profiler.other, profiler.exact, max_categories
        )

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # sorts release the GIL
        result = dict(zip(profilers, pool.map(finish, profilers.values()), strict=True))
    return {
        "format_version": FORMAT_VERSION,
        "rows": rows,
        "settings": {"bins": bins, "resolution_bits": resolution_bits, "max_categories": max_categories},
        "features": result,
    }


def _missing_of(entry: Mapping[str, Any]) -> MissingCounts:
    return MissingCounts(**{k: int(entry.get(k, 0)) for k in ("count", "null", "nan", "pos_inf", "neg_inf")})


def _sum_missing(entries: list[Mapping[str, Any]]) -> MissingCounts:
    total = MissingCounts()
    for entry in entries:
        part = _missing_of(entry)
        for name in vars(total):
            setattr(total, name, getattr(total, name) + getattr(part, name))
    return total


def merge_profiles(profiles: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Merge profiles of disjoint shards; equal to profiling the concatenated data.

    Exact as long as no shard (and no merged feature) exceeds `max_categories` levels.
    """
    if not profiles:
        raise ProfileError("nothing to merge")
    for profile in profiles:
        check_format(profile)
    settings = profiles[0]["settings"]
    names = list(profiles[0]["features"])
    for profile in profiles[1:]:
        if profile["settings"] != settings:
            raise ProfileError("profiles were built with different settings")
        if sorted(profile["features"]) != sorted(names) or any(
            profile["features"][n]["kind"] != profiles[0]["features"][n]["kind"] for n in names
        ):
            raise ProfileError("profiles have different features or feature kinds")
    merged: dict[str, Any] = {}
    for name in names:
        entries = [p["features"][name] for p in profiles]
        missing = _sum_missing(entries)
        if entries[0]["kind"] == "numeric":
            keys, counts = merge_sketches(decode_sketch(e["sketch"]) for e in entries)
            merged[name] = numeric_feature(missing, keys, counts, settings["bins"], settings["resolution_bits"])
        else:
            categories: dict[str, int] = {}
            for entry in entries:
                for level, n in entry["categories"].items():
                    categories[level] = categories.get(level, 0) + int(n)
            merged[name] = categorical_feature(
                missing,
                categories,
                sum(int(e["other"]) for e in entries),
                all(e["exact"] for e in entries),
                settings["max_categories"],
            )
    return {
        "format_version": FORMAT_VERSION,
        "rows": sum(int(p["rows"]) for p in profiles),
        "settings": dict(settings),
        "features": merged,
    }


def check_format(profile: Mapping[str, Any]) -> None:
    """Raise ProfileError unless `profile` is a version-1 profile document."""
    if not isinstance(profile, Mapping) or "format_version" not in profile:
        raise ProfileError("not a drift profile (no format_version)")
    if profile["format_version"] != FORMAT_VERSION:
        raise ProfileError(
            f"unsupported profile format_version {profile['format_version']} (this runtime reads {FORMAT_VERSION})"
        )
    if not isinstance(profile.get("features"), Mapping) or "settings" not in profile:
        raise ProfileError("malformed profile: missing features or settings")


def dumps_profile(profile: Mapping[str, Any]) -> str:
    """Deterministic JSON text (sorted keys, no NaN) so profiles can be committed or logged."""
    return json.dumps(profile, sort_keys=True, separators=(",", ":"), allow_nan=False) + "\n"


def write_profile(profile: Mapping[str, Any], path: str | Path) -> None:
    """Write a profile as deterministic JSON."""
    Path(path).write_text(dumps_profile(profile))


def read_profile(path: str | Path) -> dict[str, Any]:
    """Read and validate a profile JSON file."""
    try:
        profile = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ProfileError(f"cannot read profile {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ProfileError(f"profile {path} is not valid JSON") from exc
    check_format(profile)
    return profile
