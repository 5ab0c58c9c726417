"""Reference profiles: exact merging, determinism, non-finite values, schema inference."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from mlc.runtime.drift.data import DataError
from mlc.runtime.drift.profile import (
    MissingCounts,
    ProfileError,
    build_profile,
    category_counts,
    dumps_profile,
    grid_keys,
    key_floor,
    merge_profiles,
    read_profile,
    write_profile,
)

FEATURES = {"x": "numeric", "c": "categorical"}
values = hs.one_of(hs.floats(allow_nan=True, allow_infinity=True), hs.none(), hs.integers(-3, 3).map(float))
rows = hs.lists(hs.tuples(values, hs.one_of(hs.none(), hs.sampled_from("abcde"))), min_size=1, max_size=60)


def _write(tmp_path, name, part):
    path = tmp_path / name
    table = pa.table(
        {"x": pa.array([r[0] for r in part], pa.float64()), "c": pa.array([r[1] for r in part], pa.string())}
    )
    import pyarrow.parquet as pq

    pq.write_table(table, path)
    return path


@settings(max_examples=60, deadline=None)
@given(data=rows, cut=hs.integers(1, 59), bins=hs.integers(2, 12))
def test_merged_shards_equal_the_profile_of_all_rows(tmp_path_factory, data, cut, bins):
    tmp = tmp_path_factory.mktemp("merge")
    cut = min(cut, len(data) - 1) if len(data) > 1 else 1
    whole = build_profile(_write(tmp, "all.parquet", data), FEATURES, bins=bins)
    shards = [
        build_profile(_write(tmp, f"s{i}.parquet", part), FEATURES, bins=bins)
        for i, part in enumerate([data[:cut], data[cut:]])
        if part
    ]
    assert dumps_profile(merge_profiles(shards)) == dumps_profile(whole)


def test_grid_keys_preserve_order_and_edges_bound_their_buckets():
    x = np.array([-np.inf, -1e300, -2.5, -1e-310, -0.0, 0.0, 1e-310, 1.0, 3.7, 1e308, np.inf])
    keys = grid_keys(x, 10)
    assert np.all(np.diff(keys.astype(np.int64)) >= 0)
    assert keys[4] == keys[5]  # -0.0 and 0.0 share a bucket
    for value, key in zip(x, keys, strict=True):
        assert key_floor(int(key), 10) <= value < key_floor(int(key) + 1, 10) or np.isinf(value)


def test_profile_counts_nulls_nan_and_infinities(write_parquet):
    path = write_parquet({"x": pa.array([1.0, None, np.nan, np.inf, -np.inf, 2.0, 3.0])})
    feature = build_profile(path, {"x": "numeric"}, bins=4)["features"]["x"]
    assert (feature["count"], feature["null"], feature["nan"]) == (7, 1, 1)
    assert (feature["pos_inf"], feature["neg_inf"]) == (1, 1)
    assert sum(feature["bins"]["counts"]) == 5  # infinities are ordered values
    assert feature["bins"]["edges"][0] == "-inf" and feature["bins"]["edges"][-1] == "inf"
    json.loads(dumps_profile(build_profile(path, {"x": "numeric"})))  # strict JSON


def test_profile_is_deterministic_and_round_trips(write_parquet, columns, tmp_path):
    path = write_parquet(columns(2000, seed=1))
    first, second = build_profile(path), build_profile(path)
    assert dumps_profile(first) == dumps_profile(second)
    write_profile(first, tmp_path / "p.json")
    assert read_profile(tmp_path / "p.json") == json.loads(dumps_profile(first))
    assert first["format_version"] == 1


def test_kinds_come_from_the_schema_without_a_spec(write_parquet):
    path = write_parquet(
        {"f": [1.5, 2.5], "i": [1, 2], "s": ["a", "b"], "b": [True, False], "raw": pa.array([b"x", b"y"], pa.binary())}
    )
    kinds = {k: v["kind"] for k, v in build_profile(path)["features"].items()}
    assert kinds == {"f": "numeric", "i": "numeric", "s": "categorical", "b": "categorical"}


def test_reference_bins_hold_about_equal_mass(write_parquet):
    path = write_parquet({"x": np.random.default_rng(0).normal(size=20_000)})
    counts = build_profile(path, {"x": "numeric"}, bins=10)["features"]["x"]["bins"]["counts"]
    assert counts[0] == counts[-1] == 0  # overflow bins are empty in the reference
    assert all(abs(c - 2000) < 100 for c in counts[1:-1])


def test_csv_is_read_in_batches(tmp_path):
    path = tmp_path / "ref.csv"
    pacsv.write_csv(pa.table({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]}), path)
    profile = build_profile(path)
    assert profile["rows"] == 3
    assert profile["features"]["c"]["categories"] == {"a": 2, "b": 1}


def test_category_cap_pools_rare_levels_into_other(write_parquet):
    path = write_parquet({"c": ["a"] * 5 + ["b"] * 3 + ["c", "d"]})
    profile = build_profile(path, {"c": "categorical"}, max_categories=2)
    feature = profile["features"]["c"]
    assert feature["categories"] == {"a": 5, "b": 3}
    assert feature["other"] == 2 and feature["exact"] is False


def test_empty_and_unreadable_data_raise_clear_errors(write_parquet, tmp_path):
    empty = write_parquet({"x": pa.array([], pa.float64())})
    with pytest.raises(DataError, match="empty"):
        build_profile(empty)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="cannot read"):
        build_profile(broken)
    with pytest.raises(DataError, match="no such file or directory"):
        build_profile(tmp_path / "missing.parquet")
    with pytest.raises(DataError, match="missing"):
        build_profile(empty, {"nope": "numeric"})


def test_merge_rejects_mismatched_profiles(write_parquet):
    a = build_profile(write_parquet({"x": [1.0, 2.0]}), bins=10)
    b = build_profile(write_parquet({"x": [1.0, 2.0]}), bins=20)
    with pytest.raises(ProfileError, match="settings"):
        merge_profiles([a, b])
    with pytest.raises(ProfileError, match="format_version"):
        merge_profiles([a, {**a, "format_version": 99}])


def test_sketch_encoding_round_trips_and_rejects_garbage():
    from mlc.runtime.drift.profile import decode_sketch, encode_sketch

    keys = np.array([3, 10, 2**22 - 1], dtype=np.int64)
    counts = np.array([5, 1, 7], dtype=np.int64)
    decoded = decode_sketch(json.loads(json.dumps(encode_sketch(keys, counts))))
    assert decoded[0].tolist() == keys.tolist() and decoded[1].tolist() == counts.tolist()
    with pytest.raises(ProfileError, match="encoding"):
        decode_sketch({"encoding": "v0"})
    with pytest.raises(ProfileError, match="corrupt"):
        decode_sketch({"encoding": "zlib-base64-int64le", "key_deltas": "AAAA", "counts": ""})


def test_prefetch_stops_and_closes_its_source_when_the_consumer_stops_early():
    """Otherwise a daemon thread would keep a remote file open while the process exits."""
    import threading

    from mlc.runtime.drift.data import prefetch

    closed = threading.Event()

    def source():
        try:
            yield from range(1000)
        finally:
            closed.set()

    reader = prefetch(source())
    assert next(reader) == 0
    reader.close()
    assert closed.is_set()  # before close() returned: the producer was joined


@settings(max_examples=100, deadline=None)
@given(
    levels=hs.lists(hs.one_of(hs.none(), hs.sampled_from("abcde")), min_size=1, max_size=60),
    offset=hs.integers(0, 5),
)
def test_dictionary_codes_are_counted_as_the_strings_they_stand_for(levels, offset):
    """How drift reads Parquet strings (dictionary-encoded, counted on their codes) against the
    plain strings; a slice (offset) and a dictionary that repeats a level or holds a null too."""
    plain = pa.array(levels, pa.string()).slice(min(offset, len(levels) - 1))
    encoded = plain.dictionary_encode()
    # Every other "a" points at a second "a" appended to the dictionary, after a null entry.
    size = len(encoded.dictionary)
    indices = [
        size + 1 if value == "a" and position % 2 else index
        for position, (value, index) in enumerate(zip(plain.to_pylist(), encoded.indices.to_pylist(), strict=True))
    ]
    doubled = pa.DictionaryArray.from_arrays(
        pa.array(indices, pa.int32()), pa.concat_arrays([encoded.dictionary, pa.array([None, "a"], pa.string())])
    )
    expected = MissingCounts()
    want = category_counts(plain, expected)
    for array in (encoded, doubled):
        counts = MissingCounts()
        assert category_counts(array, counts) == want
        assert (counts.count, counts.null) == (expected.count, expected.null)


@pytest.mark.parametrize("cores", [1, 2, 3, 8])
def test_the_profile_is_the_same_however_many_readers_split_the_columns(tmp_path, monkeypatch, cores):
    """Columns are split into one reader per core (`feed_batches`); every split counts the same
    rows into the same features, across files and batches, nulls and strings included."""
    import pyarrow.parquet as pq

    from mlc.runtime.drift import data

    rng = np.random.default_rng(7)
    folder = tmp_path / "ref"
    folder.mkdir()
    for part in range(2):
        n = 70_000 + part  # past one 65,536-row batch, and files of different lengths
        x = rng.normal(size=n)
        x[::97] = np.nan
        table = pa.table(
            {
                "x": x,
                "big": rng.lognormal(size=n) * 1e6,
                "n": pa.array(rng.integers(0, 5, n).astype(float), mask=rng.random(n) < 0.1),
                "c": pa.array(rng.choice(["a", "b", "c"], n)),
                "flag": pa.array(rng.random(n) < 0.3),
            }
        )
        pq.write_table(table, folder / f"part-{part}.parquet", row_group_size=40_000)
    monkeypatch.setattr(data.os, "cpu_count", lambda: 1)
    expected = dumps_profile(build_profile(folder))
    monkeypatch.setattr(data.os, "cpu_count", lambda: cores)
    groups = data.column_groups(data.open_dataset(folder), ["x", "big", "n", "c", "flag"], cores)
    assert len(groups) == min(cores, 5) and sorted(name for group in groups for name in group) == [
        "big",
        "c",
        "flag",
        "n",
        "x",
    ]
    assert dumps_profile(build_profile(folder)) == expected


def test_readers_are_balanced_by_the_bytes_their_columns_decode(write_parquet):
    from mlc.runtime.drift import data

    wide = {f"s{i}": pa.array([f"{n:050d}" for n in range(1000)]) for i in range(2)}  # 50 KB each
    # ... and 4 bool columns of a few hundred bytes each.
    narrow = {f"b{i}": pa.array([True] * 1000) for i in range(4)}
    # Ordered so that dealing columns out in turn would give both string columns to one reader.
    source = data.open_dataset(write_parquet({"s0": wide["s0"], "b0": narrow["b0"], "s1": wide["s1"], **narrow}))
    groups = data.column_groups(source, list(source.schema.names), 2)
    # Each string column leads its own group; the small ones spread over both.
    assert sorted(group[0] for group in groups) == ["s0", "s1"]
    assert sorted(len(group) for group in groups) == [3, 3]
    csv_like = data.Source(files=source.files, schema=source.schema, column_sizes=None)
    assert len(data.column_groups(csv_like, list(source.schema.names), 2)) == 2  # no sizes: even split
