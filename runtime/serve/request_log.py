"""Records as JSON lines, written off the request path: the audit log (`access.py`).

Each request is sampled with probability `rate` (the audit log: 1, or 0 when off); a sampled
record is put on a bounded queue and a background thread writes it as one JSON line to the sink
(`-` for stdout, else a file appended to). A full queue drops the record and counts it (the
caller's counter): logging never delays or fails a response. Predictions themselves go to the
prediction log (`mlc.runtime.prediction_log`, Parquet), which the monitoring jobs read.
"""

from __future__ import annotations

import queue
import random
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

QUEUE_RECORDS = 4096  # records waiting for the writer; more are dropped


def _default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class RequestLog:
    """Sampled records, written by one daemon thread."""

    def __init__(
        self, rate: float, sink: str, on_drop: Callable[[], None] = lambda: None, capacity: int = QUEUE_RECORDS
    ) -> None:
        self.rate = max(0.0, min(1.0, rate))
        self.sink = sink
        self._on_drop = on_drop
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(capacity)
        self._thread: threading.Thread | None = None
        self._random = random.random

    def sampled(self) -> bool:
        """Whether to log this request (decided before building its record)."""
        return self.rate > 0.0 and self._random() < self.rate

    def submit(self, record: dict[str, Any]) -> None:
        """Queue a record for the writer, or drop it when the writer is behind."""
        if self._thread is None:
            return
        record.setdefault("time", time.time())
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self._on_drop()

    def start(self) -> None:
        """Start the writer thread (only when sampling is on)."""
        if self.rate > 0.0 and self._thread is None:
            self._thread = threading.Thread(target=self._write, name="mlc-request-log", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Write what is queued (for at most `timeout` seconds), then stop the writer."""
        if self._thread is None:
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)
        self._thread = None

    def _write(self) -> None:
        import orjson

        stream: IO[bytes] = sys.stdout.buffer if self.sink == "-" else open(self.sink, "ab")  # noqa: SIM115
        try:
            while True:
                record = self._queue.get()
                if record is None:
                    return
                lines = [record]
                while not self._queue.empty() and len(lines) < 256:  # write what piled up in one go
                    more = self._queue.get_nowait()
                    if more is None:
                        self._queue.put_nowait(None)
                        break
                    lines.append(more)
                stream.write(b"".join(orjson.dumps(line, default=_default) + b"\n" for line in lines))
                stream.flush()
        except OSError:
            return  # a closed or broken sink ends logging; requests go on
        finally:
            if stream is not sys.stdout.buffer:
                stream.close()
