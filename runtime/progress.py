"""Training progress people read: epochs, the last logged metrics, rows per second, time left.

On a terminal one line is rewritten in place (as tqdm does); anywhere else, as in a pod's log,
plain lines: the first epoch, then at most one every `MLC_PROGRESS_SECONDS` (default 10), and
the last. The entrypoint drives it through `ctx.epochs()` and `ctx.batches()`; metrics come from
`ctx.log_metric`. Formatting is pure (`progress_line`); only `TrainingProgress` writes.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

PROGRESS_SECONDS_VARIABLE = "MLC_PROGRESS_SECONDS"
DEFAULT_PROGRESS_SECONDS = 10.0
BAR_WIDTH = 20
METRICS_SHOWN = 3


@dataclass(frozen=True)
class ProgressState:
    """Where training stands: what `progress_line` renders."""

    epoch: int  # epochs completed, or the one running (1-based)
    epochs: int
    epoch_fraction: float  # how much of the running epoch is done, 0..1 (1 at its end)
    rows: int  # rows processed since this process started training
    elapsed: float  # seconds since then
    remaining: float | None  # estimated seconds left; None before anything is measured
    metrics: tuple[tuple[str, float], ...]


def clock(seconds: float) -> str:
    """`0:07`, `12:30`, `1:02:03`: a duration as people read one."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def rate(rows: int, elapsed: float) -> str:
    """Rows per second, short: `850 rows/s`, `52.3k rows/s`, `1.2M rows/s`."""
    per_second = rows / elapsed if elapsed > 0 else 0.0
    if per_second >= 1e6:
        return f"{per_second / 1e6:.1f}M rows/s"
    if per_second >= 1e4:
        return f"{per_second / 1e3:.1f}k rows/s"
    return f"{per_second:,.0f} rows/s"


def progress_line(state: ProgressState, bar: bool) -> str:
    """One line: `epoch 3/20 [###...] train_loss 0.4123, 52.3k rows/s, 0:05 elapsed, about 0:28 left`."""
    width = len(str(state.epochs))
    parts = [f"epoch {state.epoch:>{width}}/{state.epochs}"]
    if bar:
        done = (state.epoch - 1 + state.epoch_fraction) / max(state.epochs, 1)
        filled = min(BAR_WIDTH, int(done * BAR_WIDTH))
        parts.append("[" + "#" * filled + "." * (BAR_WIDTH - filled) + "]")
    facts = [f"{name} {value:.4g}" for name, value in state.metrics[-METRICS_SHOWN:]]
    facts.append(rate(state.rows, state.elapsed))
    facts.append(f"{clock(state.elapsed)} elapsed")
    if state.epoch >= state.epochs and state.epoch_fraction >= 1:
        facts.append("done")
    elif state.remaining is not None:
        facts.append(f"about {clock(state.remaining)} left")
    return " ".join(parts) + "  " + ", ".join(facts)


def progress_interval(environ: dict[str, str] | os._Environ[str]) -> float:
    """Seconds between plain progress lines (`MLC_PROGRESS_SECONDS`, default 10)."""
    try:
        return max(0.0, float(environ.get(PROGRESS_SECONDS_VARIABLE, DEFAULT_PROGRESS_SECONDS)))
    except ValueError:
        return DEFAULT_PROGRESS_SECONDS


class TrainingProgress:
    """Counts epochs and rows and writes progress lines to `stream` (stderr by default)."""

    def __init__(
        self,
        epochs: int,
        start: int = 0,
        stream: TextIO | None = None,
        interval: float | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.epochs = epochs
        self.epoch = start  # completed epochs
        self._start_epoch = start
        self._stream = stream if stream is not None else sys.stderr
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._interval = progress_interval(os.environ) if interval is None else interval
        self._now = now
        self._started = now()
        self._last_written: float | None = None
        self._rows = 0
        self._epoch_rows = 0
        self._rows_per_epoch: int | None = None
        self._metrics: dict[str, float] = {}

    def metric(self, name: str, value: float) -> None:
        """Remember the latest value of a logged metric (shown on the next line)."""
        self._metrics.pop(name, None)
        self._metrics[name] = value

    def rows(self, count: int) -> None:
        """`count` more rows of the running epoch were processed (a terminal line is refreshed)."""
        self._rows += count
        self._epoch_rows += count
        if self._tty and self._due(self._now(), 0.2):
            self._write(self._state(), final=False)

    def epoch_done(self, rows_per_epoch: int | None = None) -> None:
        """The running epoch ended; `rows_per_epoch` counts its rows when `rows()` was not called."""
        if self._epoch_rows == 0 and rows_per_epoch:
            self._rows += rows_per_epoch
            self._epoch_rows = rows_per_epoch
        self._rows_per_epoch = self._epoch_rows or self._rows_per_epoch
        self.epoch += 1
        self._epoch_rows = 0
        last = self.epoch >= self.epochs
        now = self._now()
        if self._tty or last or self.epoch == self._start_epoch + 1 or self._due(now, self._interval):
            self._write(self._state(finished_epoch=True), final=last)

    def _due(self, now: float, interval: float) -> bool:
        return self._last_written is None or now - self._last_written >= interval

    def _state(self, finished_epoch: bool = False) -> ProgressState:
        elapsed = self._now() - self._started
        done = self.epoch - self._start_epoch  # whole epochs this process trained
        fraction = 1.0 if finished_epoch else 0.0
        if not finished_epoch and self._rows_per_epoch:
            fraction = min(0.99, self._epoch_rows / self._rows_per_epoch)  # done only at its end
        progressed = done + (0.0 if finished_epoch else fraction)
        remaining = None
        if progressed > 0:
            remaining = elapsed / progressed * (self.epochs - self._start_epoch - progressed)
        shown = self.epoch if finished_epoch else self.epoch + 1
        return ProgressState(
            epoch=max(shown, 1),
            epochs=self.epochs,
            epoch_fraction=fraction,
            rows=self._rows,
            elapsed=elapsed,
            remaining=remaining,
            metrics=tuple(self._metrics.items()),
        )

    def _write(self, state: ProgressState, final: bool) -> None:
        self._last_written = self._now()
        if self._tty:
            end = "\n" if final else ""
            self._stream.write("\r" + progress_line(state, bar=True) + "\x1b[K" + end)
        else:
            self._stream.write(progress_line(state, bar=False) + "\n")
        self._stream.flush()

    def close(self) -> None:
        """End a terminal line left open (training stopped early)."""
        if self._tty and self._last_written is not None and self.epoch < self.epochs:
            self._stream.write("\n")
            self._stream.flush()
