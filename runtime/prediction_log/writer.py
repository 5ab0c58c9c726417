"""Writing the prediction log from a background thread, never from the request path.

`submit` puts a logged request on a bounded queue and returns: when the rows waiting exceed
`max_pending_rows` (the store is slow, failing or unreachable), the request is dropped and its
rows counted (`on_drop`), so memory stays bounded and a response never waits for the store. The
writer thread collects what arrives and writes one Parquet file per UTC hour of its rows every
`flush_seconds` (or sooner, at `flush_rows`), under `<uri>/date=YYYY-MM-DD/hour=HH/`. A write that
fails drops those rows (counted, a warning logged at most once a minute) and the thread goes on,
backing off: until the next try (`flush_seconds`, doubling with each failure up to
`MAX_BACKOFF_SECONDS`) what arrives is dropped and counted as it is taken, never encoded, so a
refusing store costs the server's threads no Parquet encoding (which holds the GIL) at all.

Local files are written under a hidden name and renamed (a reader never sees half a file); an
object store's upload becomes visible only once complete. The filesystem is opened by the writer
thread on its first write: an object store's region lookup or an unreachable endpoint never
delays the server's start.
"""

from __future__ import annotations

import logging
import os
import posixpath
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from mlc.runtime.prediction_log.records import LoggedRequest, group_by_hour, log_table, partition_folder

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs

log = logging.getLogger("mlc.runtime.prediction_log")

MAX_PENDING_ROWS = 100_000  # rows queued for the writer; more are dropped
FLUSH_ROWS = 20_000
FLUSH_SECONDS = 30.0
_WARN_EVERY_SECONDS = 60.0
MAX_BACKOFF_SECONDS = 60.0  # longest wait between tries to write to a failing store


def part_name(first_timestamp: float, writer_id: str, sequence: int) -> str:
    """`part-<first row's ms>-<writer>-<sequence>.parquet`: sorts by time, unique across pods."""
    return f"part-{int(first_timestamp * 1000):013d}-{writer_id}-{sequence:06d}.parquet"


class LogFiles:
    """Writes log tables as files under the log's URI (opened on first use)."""

    def __init__(self, uri: str, writer_id: str | None = None) -> None:
        self.uri = uri
        self.writer_id = writer_id or os.urandom(4).hex()
        self._sequence = 0
        self._filesystem: pafs.FileSystem | None = None
        self._root = ""
        self._local = "://" not in uri or uri.startswith("file://")

    def _open(self) -> tuple[pafs.FileSystem, str]:
        if self._filesystem is None:
            from mlc.runtime.datasets import open_filesystem

            self._filesystem, self._root = open_filesystem(self.uri)
        return self._filesystem, self._root

    def write(self, requests: list[LoggedRequest], types: Mapping[str, pa.DataType]) -> list[str]:
        """Write the requests, one file per UTC hour of their timestamps; the paths written."""
        import pyarrow.parquet as pq

        filesystem, root = self._open()
        written = []
        for hour, part in sorted(group_by_hour(requests).items()):
            folder = posixpath.join(root, partition_folder(hour))
            self._sequence += 1
            name = part_name(part[0].timestamp, self.writer_id, self._sequence)
            final = posixpath.join(folder, name)
            target = posixpath.join(folder, f".{name}.tmp") if self._local else final
            if self._local:  # an object store has no folders (pyarrow would write empty marker objects)
                filesystem.create_dir(folder, recursive=True)
            pq.write_table(log_table(part, types), target, filesystem=filesystem, compression="zstd")
            if target != final:
                filesystem.move(target, final)
            written.append(final)
        return written


class PredictionLogWriter:
    """A sample of answered requests, written by one daemon thread (see the module docstring)."""

    def __init__(
        self,
        files: LogFiles,
        sample_rate: float,
        input_types: Mapping[str, pa.DataType],
        on_drop: Callable[[int], None] = lambda rows: None,
        on_written: Callable[[int], None] = lambda rows: None,
        max_pending_rows: int = MAX_PENDING_ROWS,
        flush_rows: int = FLUSH_ROWS,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self.files = files
        self.sample_rate = max(0.0, min(1.0, sample_rate))
        self.input_types = dict(input_types)
        self._on_drop, self._on_written = on_drop, on_written
        self.max_pending_rows, self.flush_rows, self.flush_seconds = max_pending_rows, flush_rows, flush_seconds
        self._queue: queue.SimpleQueue[LoggedRequest | None] = queue.SimpleQueue()
        self._pending = 0  # rows queued, not yet taken by the writer
        self._pending_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._random = random.random
        self._last_warning = -_WARN_EVERY_SECONDS
        self._failures = 0  # consecutive failed writes
        self._retry_at = 0.0  # monotonic time before which rows are dropped unwritten (back-off)

    @property
    def running(self) -> bool:
        return self._thread is not None

    def sampled(self) -> bool:
        """Whether to log this request (decided before building its record)."""
        return self._thread is not None and self.sample_rate > 0.0 and self._random() < self.sample_rate

    def submit(self, request: LoggedRequest) -> None:
        """Queue a request for the writer, or drop it (counted) when the writer is behind."""
        if self._thread is None:
            return
        with self._pending_lock:
            full = self._pending + request.rows > self.max_pending_rows
            if not full:
                self._pending += request.rows
        if full:
            self._on_drop(request.rows)
            return
        self._queue.put(request)

    def start(self) -> None:
        """Start the writer thread (only when sampling is on)."""
        if self.sample_rate > 0.0 and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mlc-prediction-log", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued (waiting at most `timeout` seconds for the store), then stop."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(None)
        thread.join(timeout)

    def _run(self) -> None:
        buffered: list[LoggedRequest] = []
        rows = 0
        deadline = time.monotonic() + self.flush_seconds
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                item = ...  # the flush interval ended
            if isinstance(item, LoggedRequest):
                with self._pending_lock:
                    self._pending -= item.rows
                if time.monotonic() < self._retry_at:  # backing off a failing store
                    self._on_drop(item.rows)
                    continue
                buffered.append(item)
                rows += item.rows
                if rows < self.flush_rows:
                    continue
            if buffered:
                self._flush(buffered, rows)
                buffered, rows = [], 0
            if item is None:
                return
            deadline = time.monotonic() + self.flush_seconds

    def _flush(self, requests: list[LoggedRequest], rows: int) -> None:
        try:
            self.files.write(requests, self.input_types)
        except Exception as error:  # the store's errors (pyarrow's OSErrors and more): log, count, go on
            self._on_drop(rows)
            now = time.monotonic()
            self._failures += 1
            self._retry_at = now + min(MAX_BACKOFF_SECONDS, self.flush_seconds * 2 ** (self._failures - 1))
            if now - self._last_warning >= _WARN_EVERY_SECONDS:
                self._last_warning = now
                line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                log.warning("prediction log: dropped %d row(s): cannot write to %s: %s", rows, self.files.uri, line)
            return
        self._failures = 0
        self._on_written(rows)


def write_now(files: LogFiles, requests: list[LoggedRequest], types: Mapping[str, Any]) -> list[str]:
    """Write requests at once, in the caller's thread (`batch`, which has no one waiting on it)."""
    return files.write(requests, types) if requests else []
