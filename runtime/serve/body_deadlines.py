"""Deadlines for reading request bodies, kept by one sweep rather than a timer per request.

A request whose body has not arrived `seconds` after its headers is cancelled where it waits
for the body, and its handler answers 408. A timer per request (`asyncio.timeout`,
`loop.call_later`) costs 7-50 us on the event loop, as much as a prediction request's own work;
entering and leaving the table here costs well under a microsecond, and one task looks at the
table every `SWEEP_SECONDS` (so a deadline is kept within that much).
"""

from __future__ import annotations

import asyncio
import time

SWEEP_SECONDS = 0.25


class BodyDeadlines:
    """Tasks reading a body, each with its deadline; the sweep cancels the late ones."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._reading: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def enter(self) -> asyncio.Task[object]:
        """The current task starts reading a body: its deadline runs from now."""
        task = asyncio.current_task()
        assert task is not None
        self._reading[task] = time.monotonic() + self.seconds
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="mlc-body-deadlines")
        return task

    def leave(self, task: asyncio.Task[object]) -> None:
        """The task has its body (or gave up)."""
        self._reading.pop(task, None)
        self._expired.discard(task)

    def expired(self, task: asyncio.Task[object]) -> bool:
        """Whether the task's cancellation was this deadline (then it is taken back: the handler
        goes on to answer 408), rather than the server stopping or the client leaving."""
        if task not in self._expired:
            return False
        self._expired.discard(task)
        task.uncancel()
        return True

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            now = time.monotonic()
            for task, deadline in list(self._reading.items()):
                if deadline <= now and task not in self._expired:
                    self._expired.add(task)
                    task.cancel()

    def stop(self) -> None:
        """Stop the sweep (the server is shutting down)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
