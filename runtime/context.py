"""`TrainingContext`: everything the user's `train(ctx)` entrypoint gets from the runtime.

    def train(ctx):
        x, y = ctx.load_training_data()          # float32 features (the contract, encoded), target
        state = ctx.load_checkpoint() or {}      # resume after a preemption
        for epoch in ctx.epochs(start=state.get("epoch", 0)):   # 0 .. params.epochs - 1, with progress
            for xb, yb in ctx.batches(x, y):     # shuffled mini-batches of params.batch_size rows
                ...
            ctx.log_metric("train_loss", loss, step=epoch)
            ctx.save_checkpoint({"epoch": epoch + 1, "model": model.state_dict(), ...})  # per the spec's cadence
            if ctx.should_stop:                   # SIGTERM arrived (spot preemption, eviction)
                return None                       # the checkpoint above is the resume point
        return model                              # a torch.nn.Module; the runtime logs and registers it

`save_checkpoint` writes at the cadence of `train.checkpoint.every`: at the end of each epoch (the
default; a call without `epoch_end=False` is one), every N steps (`500steps`: pass `step=`), or
every so many seconds (`30m`); always once a stop was requested. Call it as often as you like,
with a function for `state` when building it costs: it is built only when written.

`epochs()` and `batches()` are optional conveniences that also report progress (epoch, the
metrics last logged, rows per second, time left: `mlc.runtime.progress`); a loop of its own
trains just as well, silently.

Under torchrun (`WORLD_SIZE` > 1) the process group is already initialised; the context wraps
nothing: `ctx.distributed`, `ctx.rank`, `ctx.world_size`, `ctx.device` say where this process is,
and `load_training_data(shard=True)` gives each rank every `world_size`-th row. Only rank 0
logs metrics and writes checkpoints; every rank may read them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from mlc.runtime.contract import checkpoint_cadence
from mlc.runtime.contract.config import ConfigError, RuntimeConfig
from mlc.runtime.preprocessor import Preprocessor, fit_preprocessor
from mlc.runtime.progress import TrainingProgress

if TYPE_CHECKING:
    import pyarrow as pa
    import torch

    from mlc.runtime.checkpoints import CheckpointStore

MetricLogger = Callable[[str, float, int | None], None]
DEFAULT_BATCH_SIZE = 256


class TrainingContext:
    """The training context (see the module docstring for the entrypoint's side)."""

    def __init__(
        self,
        config: RuntimeConfig,
        *,
        params: dict[str, Any],
        smoke: bool,
        device: torch.device,
        rank: int = 0,
        local_rank: int = 0,
        world_size: int = 1,
        row_limit: int | None = None,
        checkpoints: CheckpointStore | None = None,
        log_metric: MetricLogger | None = None,
    ) -> None:
        train = config.require_train()
        self.params = params
        self.seed = train.seed
        self.smoke = smoke
        self.device = device
        self.rank, self.local_rank, self.world_size = rank, local_rank, world_size
        self.checkpoint_every = train.checkpoint.every
        self._cadence = checkpoint_cadence(train.checkpoint.every)
        self._last_saved_step = 0
        self._last_saved_at = time.monotonic()
        self.preprocessor: Preprocessor | None = None
        self._config = config
        self._row_limit = row_limit
        self._checkpoints = checkpoints
        self._log_metric = log_metric
        self._stop_requested = False
        self._tables: dict[str, pa.Table] = {}
        self._progress: TrainingProgress | None = None
        self._epoch = 0
        self._training_rows: int | None = None

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs, checkpoints and registers."""
        return self.rank == 0

    @property
    def task(self) -> str | None:
        """binary | multiclass | regression, from the training target (after load_training_data)."""
        return None if self.preprocessor is None or self.preprocessor.target is None else self.preprocessor.target.task

    # --- data ---------------------------------------------------------------------------------

    def table(self, dataset: str = "train") -> pa.Table:
        """A dataset's raw columns (the contract's as text for CSV), at most the smoke sample in --smoke."""
        if dataset not in self._tables:
            from mlc.runtime.datasets import locate_data_files, read_table

            contract = self._config.require_contract()
            spec = self._config.dataset(dataset)
            columns = [*contract.features, *([contract.target] if contract.target else [])]
            files = locate_data_files(spec.uri, spec.format)
            self._tables[dataset] = read_table(files, text_columns=columns, limit=self._row_limit)
        return self._tables[dataset]

    def load_training_data(self, shard: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(features, target) of the `train` dataset; fits `ctx.preprocessor` on it the first time.

        Features: float32 [rows, len(ctx.preprocessor.output_names)]. Target: float32 for binary
        (0/1) and regression, int64 class indices for multiclass; None without a contract target.
        """
        if self.preprocessor is None:
            self.preprocessor = fit_preprocessor(self.table("train"), self._config.require_contract())
        features, target = self.load_dataset("train", shard=shard)
        self._training_rows = len(features)
        return features, target

    def load_dataset(self, name: str, shard: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(features, target) of any dataset, encoded by the preprocessor fitted on `train`."""
        import torch

        if self.preprocessor is None:
            self.load_training_data()
        assert self.preprocessor is not None
        table = self.table(name)
        if shard and self.distributed:
            import numpy as np

            table = table.take(np.arange(self.rank, table.num_rows, self.world_size))
        features = torch.from_numpy(self.preprocessor.transform(table))
        encoding = self.preprocessor.target
        if encoding is None or encoding.name not in table.column_names:
            return features, None
        return features, torch.from_numpy(encoding.encode(table.column(encoding.name)))

    # --- the training loop ----------------------------------------------------------------------

    def epochs(self, start: int = 0, total: int | None = None) -> Iterator[int]:
        """Epoch numbers `start`, ..., `total - 1` (default total: `params["epochs"]`, capped at 1
        in --smoke), reporting progress on stderr after each (rank 0): the epoch, the metrics
        last logged, rows per second and the time left."""
        if total is None:
            total = self.params.get("epochs")
            if not isinstance(total, int) or isinstance(total, bool):
                raise ConfigError(
                    f"ctx.epochs() needs train.params.epochs (an integer) in mlproject.yaml, or total=N; "
                    f"params: {', '.join(self.params) or 'none'}"
                )
        progress = TrainingProgress(total, start) if self.is_main else None
        self._progress = progress
        try:
            for epoch in range(start, total):
                self._epoch = epoch
                yield epoch
                if progress is not None:
                    progress.epoch_done(self._training_rows)
        finally:
            if progress is not None:
                progress.close()
            self._progress = None

    def batches(self, *tensors: torch.Tensor, batch_size: int | None = None, shuffle: bool = True) -> Iterator[Any]:
        """Mini-batches of `tensors` (rows in step): a tuple per batch, or the tensor alone when
        one is given. `batch_size` defaults to `params["batch_size"]` (else 256); shuffling is
        seeded by `seed + epoch`, so a resumed run sees the same order. Counts rows for progress."""
        import torch

        if not tensors:
            raise TypeError("ctx.batches() needs at least one tensor, e.g. ctx.batches(x, y)")
        size = batch_size or int(self.params.get("batch_size", DEFAULT_BATCH_SIZE))
        rows = len(tensors[0])
        if shuffle:
            order = torch.randperm(rows, generator=torch.Generator().manual_seed(self.seed + self._epoch))
        else:
            order = torch.arange(rows)
        for begin in range(0, rows, size):
            index = order[begin : begin + size]
            picked = tuple(tensor[index] for tensor in tensors)
            yield picked if len(picked) > 1 else picked[0]
            if self._progress is not None:
                self._progress.rows(len(index))

    # --- metrics and checkpoints --------------------------------------------------------------

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """Log a metric to the MLflow run (rank 0 only; other ranks' calls do nothing); the
        progress line shows its latest value."""
        if not self.is_main:
            return
        if self._log_metric is not None:
            self._log_metric(name, float(value), step)
        if self._progress is not None:
            self._progress.metric(name, float(value))

    def save_checkpoint(
        self,
        state: dict[str, Any] | Callable[[], dict[str, Any]],
        *,
        step: int | None = None,
        epoch_end: bool = True,
    ) -> bool:
        """Save the state (anything torch.save takes, or a function returning it) as the resume
        point when the spec's cadence says it is due (see the module docstring); rank 0 writes.
        True when it was written."""
        if self._checkpoints is None or not self.is_main or not self._checkpoint_due(step, epoch_end):
            return False
        self._checkpoints.save(state() if callable(state) else state)
        self._last_saved_step = step if step is not None else self._last_saved_step
        self._last_saved_at = time.monotonic()
        return True

    def _checkpoint_due(self, step: int | None, epoch_end: bool) -> bool:
        cadence = self._cadence
        if self._stop_requested:
            return True  # the resume point must exist before the grace period ends
        if cadence.steps is not None:
            if step is None:  # the loop does not count steps: its epoch ends are the best guess
                return epoch_end
            return step - self._last_saved_step >= cadence.steps
        if cadence.seconds is not None:
            return time.monotonic() - self._last_saved_at >= cadence.seconds
        return epoch_end

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The last saved state of this training lineage, or None when starting fresh."""
        return None if self._checkpoints is None else self._checkpoints.load()

    @property
    def should_stop(self) -> bool:
        """True once SIGTERM arrived: save a checkpoint and return None soon (the grace period is short)."""
        return self._stop_requested

    def request_stop(self) -> None:
        """Called by the runtime's SIGTERM handler."""
        self._stop_requested = True
