"""`train.checkpoint.every` decides when `ctx.save_checkpoint` writes (it was accepted and ignored)."""

from __future__ import annotations

from typing import Any

import pytest
from served_project import CONFIG

from mlc.runtime.context import TrainingContext
from mlc.runtime.contract import checkpoint_cadence
from mlc.runtime.contract.config import RuntimeConfig


class CountingStore:
    """Stands in for the checkpoint store's I/O (tested on its own): what would have been written."""

    def __init__(self) -> None:
        self.saved: list[Any] = []

    def save(self, state: Any) -> None:
        self.saved.append(state)


def context(every: str, store: CountingStore, rank: int = 0) -> TrainingContext:
    config = RuntimeConfig.model_validate(
        {**CONFIG, "train": {**CONFIG["train"], "checkpoint": {"uri": "unused", "every": every}}}
    )
    return TrainingContext(config, params={}, smoke=False, device=None, checkpoints=store, rank=rank, world_size=2)  # type: ignore[arg-type]


def test_per_epoch_writes_at_each_epoch_end_only() -> None:
    store = CountingStore()
    ctx = context("epoch", store)
    written = [ctx.save_checkpoint({"step": s}, step=s, epoch_end=s % 10 == 9) for s in range(30)]
    assert [state["step"] for state in store.saved] == [9, 19, 29]
    assert written.count(True) == 3


def test_every_n_steps_and_a_lazy_state() -> None:
    store, built = CountingStore(), []

    def state(step: int) -> dict[str, int]:
        built.append(step)
        return {"step": step}

    ctx = context("25steps", store)
    for step in range(1, 101):
        ctx.save_checkpoint(lambda step=step: state(step), step=step, epoch_end=False)
    assert [s["step"] for s in store.saved] == [25, 50, 75, 100]
    assert built == [25, 50, 75, 100]  # the state is built only when written


def test_every_duration(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr("mlc.runtime.context.time.monotonic", lambda: clock[0])
    store = CountingStore()
    ctx = context("30m", store)
    for minute in range(1, 91):
        clock[0] = 1000.0 + minute * 60
        ctx.save_checkpoint({"minute": minute}, epoch_end=minute % 7 == 0)
    assert [s["minute"] for s in store.saved] == [30, 60, 90]


def test_a_stop_request_always_writes_and_only_rank_0_writes() -> None:
    store = CountingStore()
    ctx = context("1000steps", store)
    assert not ctx.save_checkpoint({"step": 3}, step=3)
    ctx.request_stop()
    assert ctx.save_checkpoint({"step": 4}, step=4)
    other = CountingStore()
    worker = context("epoch", other, rank=1)
    assert not worker.save_checkpoint({"epoch": 1})
    assert other.saved == []


@pytest.mark.parametrize("every", ["0steps", "steps", "1.5h", "0m", "epochs"])
def test_a_cadence_outside_the_grammar_is_refused(every: str) -> None:
    with pytest.raises(ValueError, match="must be 'epoch', '<N>steps'"):
        checkpoint_cadence(every)
