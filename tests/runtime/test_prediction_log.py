"""The prediction log on disk: hour partitions, the window a reader reads, a store that refuses."""

from __future__ import annotations

import math
import time

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from mlc.runtime.datasets import DataError
from mlc.runtime.prediction_log import reader
from mlc.runtime.prediction_log.reader import read_window, window_files
from mlc.runtime.prediction_log.records import LoggedRequest, log_table
from mlc.runtime.prediction_log.writer import LogFiles, PredictionLogWriter

TYPES = {"x": pa.float64(), "plan": pa.string()}
HOUR = 3600


def request(index: int, timestamp: float, rows: int = 1) -> LoggedRequest:
    return LoggedRequest(
        request_id=f"r{index}",
        source="/invocations",
        model="churn",
        model_version="3",
        rows=rows,
        inputs={"x": [float(index)] * rows, "plan": [index % 3] * rows},  # an int category is logged as text
        outputs={"prediction": [index % 2] * rows, "probability": [0.5] * rows},
        timestamp=timestamp,
    )


def test_a_logged_row_has_the_contracts_columns_typed() -> None:
    table = log_table([request(1, 1_800_000_000.25, rows=2), request(2, 1_800_000_001)], TYPES)
    assert table.column_names == [
        "request_id", "row", "timestamp", "model", "model_version", "source", "inputs", "outputs"
    ]  # fmt: skip
    assert table.schema.field("timestamp").type == pa.timestamp("ms", tz="UTC")
    assert table.schema.field("inputs").type == pa.struct([("x", pa.float64()), ("plan", pa.string())])
    rows = table.to_pylist()
    assert [(r["request_id"], r["row"], r["inputs"]["plan"]) for r in rows] == [
        ("r1", 0, "1"),
        ("r1", 1, "1"),
        ("r2", 0, "2"),
    ]
    assert rows[0]["timestamp"].timestamp() == 1_800_000_000.25


def test_files_land_in_the_hour_of_their_rows_and_a_window_reads_only_its_hours(tmp_path) -> None:
    now = time.time()
    # Ten days of history, one request every 30 minutes.
    history = [request(i, now - i * 1800) for i in range(480)]
    LogFiles(str(tmp_path / "log")).write(history, TYPES)
    days = sorted(path.name for path in (tmp_path / "log").iterdir())
    assert len(days) >= 10 and all(day.startswith("date=") for day in days)
    hours = {path.parent.name for path in (tmp_path / "log").rglob("*.parquet")}
    assert hours <= {f"hour={h:02d}" for h in range(24)}

    files = window_files(str(tmp_path / "log"), now - 24 * HOUR, now)
    assert len(files.paths) in (24, 25)  # the window's hours only, not the 240 of the history
    for path in files.paths:
        stamps = pq.read_table(path, columns=["timestamp"]).column(0).to_pylist()
        assert all(now - 25 * HOUR <= stamp.timestamp() <= now + 1 for stamp in stamps)
    table = read_window(files, ["request_id", "inputs.x", "outputs.probability"], now - 24 * HOUR, now)
    # The first hour's file also holds rows from before the window: the timestamp filter drops them.
    assert sorted(table.column("request_id").to_pylist(), key=lambda r: int(r[1:])) == [f"r{i}" for i in range(49)]


def test_an_empty_window_says_where_it_looked(tmp_path) -> None:
    LogFiles(str(tmp_path / "log")).write([request(0, time.time() - 10 * 24 * HOUR)], TYPES)
    with pytest.raises(DataError, match=r"log: no predictions logged between .*monitor.prediction_log.sample_rate"):
        window_files(str(tmp_path / "log"), time.time() - 24 * HOUR)


def test_a_store_that_refuses_writes_drops_and_counts_the_rows_and_keeps_going(tmp_path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the log's folder should be")
    dropped, written = [], []
    log = PredictionLogWriter(
        LogFiles(str(blocked)), 1.0, TYPES, on_drop=dropped.append, on_written=written.append, flush_seconds=0.05
    )
    log.start()
    for index in range(5):
        log.submit(request(index, time.time(), rows=3))
        time.sleep(0.06)
    log.stop()
    assert sum(dropped) == 15 and written == []
    assert blocked.read_text() == "a file where the log's folder should be"


class CountedWrites(LogFiles):
    """The real files, counting the writes tried (each one encodes Parquet)."""

    tries = 0

    def write(self, requests, types):
        self.tries += 1
        return super().write(requests, types)


def test_a_failing_store_is_backed_off_then_written_to_once_it_recovers(tmp_path) -> None:
    folder = tmp_path / "log"
    folder.write_text("a file where the log's folder should be")
    files = CountedWrites(str(folder))
    dropped, written = [], []
    log = PredictionLogWriter(files, 1.0, TYPES, on_drop=dropped.append, on_written=written.append, flush_seconds=0.05)
    log.start()
    started = time.monotonic()
    for index in range(50):  # >= 1 s of requests: a flush every 0.05 s would try ~20 writes
        log.submit(request(index, time.time()))
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    deadline = time.monotonic() + 10
    while sum(dropped) < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sum(dropped) == 50 and written == []
    # Backing off (0.05 s, doubling): one try, then one per doubling of the time elapsed.
    assert files.tries <= 2 + math.log2(elapsed / 0.05), (files.tries, elapsed)
    folder.unlink()  # the store recovers: written to at the next try
    deadline = time.monotonic() + 30
    while not written and time.monotonic() < deadline:
        log.submit(request(99, time.time(), rows=2))
        time.sleep(0.05)
    log.stop()
    assert written, "nothing written after the store recovered"
    assert pq.read_table(str(folder)).num_rows == sum(written)


class PrefixOnlyFolders(pafs.FileSystemHandler):
    """The local filesystem listed as Google Cloud Storage lists the log: folders that exist only
    as the prefix of their files are not entries (a non-recursive listing of the log finds no
    day; a recursive one finds the files)."""

    def __init__(self) -> None:
        self.local = pafs.LocalFileSystem()

    def get_type_name(self) -> str:
        return "gcs-like"

    def equals(self, other) -> bool:
        return self is other

    def get_file_info(self, paths):
        return self.local.get_file_info(paths)

    def get_file_info_selector(self, selector):
        return [info for info in self.local.get_file_info(selector) if info.type == pafs.FileType.File]

    def open_input_file(self, path):
        return self.local.open_input_file(path)

    def open_input_stream(self, path):
        return self.local.open_input_stream(path)

    def normalize_path(self, path):
        return path

    def _read_only(self, *args):
        raise NotImplementedError("the reader only reads")

    copy_file = create_dir = delete_dir = delete_dir_contents = delete_file = _read_only
    delete_root_dir_contents = move = open_append_stream = open_output_stream = _read_only


@pytest.mark.parametrize("days", [3, 100])
def test_windows_short_and_long_find_their_files_where_folders_are_only_prefixes(tmp_path, monkeypatch, days) -> None:
    now = time.time()
    # Seventy days of history, one request every 12 hours.
    LogFiles(str(tmp_path / "log")).write([request(i, now - i * 12 * HOUR) for i in range(140)], TYPES)
    gcs_like = pafs.PyFileSystem(PrefixOnlyFolders())
    monkeypatch.setattr(reader, "open_filesystem", lambda uri: (gcs_like, str(tmp_path / "log")))

    files = window_files("gs://bucket/log", now - days * 24 * HOUR, now)
    table = read_window(files, ["request_id"], now - days * 24 * HOUR, now)
    expected = min(2 * days + 1, 140)  # every request of the window, both ends (the long one: all)
    assert sorted(table.column("request_id").to_pylist(), key=lambda r: int(r[1:])) == [
        f"r{i}" for i in range(expected)
    ]
    assert days > reader.NAMED_DAYS or len(files.paths) <= 2 * days + 1  # a short window: its days only
