"""Micro-batching: concurrent requests' rows predicted together in one model call.

Requests queue their (validated) frames; one worker takes the oldest, adds queued frames while
the batch stays within `max_batch_rows`, and calls the model. It waits for more frames only
while other requests are still being read and parsed (`announce`/`settle`), and never past
`max_wait_ms` after the oldest frame arrived: an idle server adds no latency, a busy one fills
batches. A request larger than `max_batch_rows` is predicted alone, never split.

How a call runs is the caller's `run_blocking`: on the model thread (the event loop keeps
reading requests meanwhile, and frames queue up behind a running call to form the next batch)
or, for a model whose calls take microseconds, on the loop itself (`app.py` decides).
If a batched call fails, each request is retried alone: one bad request does not fail the others.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PredictBatch = Callable[[list[Any]], list[Any]]  # frames -> one output per frame (blocking)
BatchObserver = Callable[[int, list[float]], None]  # (rows, each request's seconds in the queue)


@dataclass
class _Pending:
    frame: Any
    rows: int
    arrived: float
    future: asyncio.Future[Any] = field(repr=False)


class MicroBatcher:
    """Queue frames from many requests; predict them in batches on one worker thread."""

    def __init__(
        self,
        predict_batch: PredictBatch,
        run_blocking: Callable[..., asyncio.Future[Any]],
        max_batch_rows: int,
        max_wait_ms: float,
        on_batch: BatchObserver | None = None,
    ) -> None:
        self._predict_batch = predict_batch
        self._run_blocking = run_blocking  # e.g. loop.run_in_executor(model_thread, ...)
        self._on_batch = on_batch
        self.max_batch_rows = max_batch_rows
        self.max_wait = max_wait_ms / 1000.0
        self._queue: deque[_Pending] = deque()
        self._arrived = asyncio.Event()
        self._announced = 0
        self._worker: asyncio.Task[None] | None = None

    def announce(self) -> None:
        """A request is on its way (being read and parsed): worth waiting a little for."""
        self._announced += 1

    def settle(self) -> None:
        """That request is parsed (and about to `submit`) or gave up (a 400)."""
        self._announced -= 1

    async def submit(self, frame: Any, rows: int) -> Any:
        """Predict one request's frame with whatever else is queued; its output (or its error)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(frame, rows, time.monotonic(), future))
        self._arrived.set()
        return await future

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="mlc-micro-batcher")

    async def stop(self) -> None:
        """Stop after the queue is empty: in-flight requests get their answers."""
        while self._queue:
            await asyncio.sleep(0.01)
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            while not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
            batch = await self._collect()
            await self._predict(batch)

    async def _collect(self) -> list[_Pending]:
        # One turn of the event loop first: requests whose bytes arrived with this one's are
        # parsed and queued, so a busy server fills its batches at the cost of one loop turn.
        await asyncio.sleep(0)
        batch = [self._queue.popleft()]
        rows = batch[0].rows
        deadline = batch[0].arrived + self.max_wait
        while rows < self.max_batch_rows:
            if self._queue:
                if rows + self._queue[0].rows > self.max_batch_rows:
                    break
                item = self._queue.popleft()
                batch.append(item)
                rows += item.rows
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._announced <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                break
        return batch

    async def _predict(self, batch: list[_Pending]) -> None:
        if self._on_batch is not None:
            now = time.monotonic()
            self._on_batch(sum(item.rows for item in batch), [now - item.arrived for item in batch])
        try:
            outputs = await self._run_blocking(self._predict_batch, [item.frame for item in batch])
        except Exception as error:
            if len(batch) == 1:
                _resolve(batch[0].future, error=error)
                return
            for item in batch:  # find the request that fails; the others still get answers
                await self._predict([item])
            return
        for item, output in zip(batch, outputs, strict=True):
            _resolve(item.future, output)


def _resolve(future: asyncio.Future[Any], output: Any = None, error: BaseException | None = None) -> None:
    if future.done():  # the client went away and the request was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(output)
