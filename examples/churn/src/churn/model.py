"""Training entrypoint of the churn example: `mlc-runtime train` calls `train(ctx)`.

A logistic regression over the contract's encoded features (`ctx.load_training_data()`),
standardised inside the model so serving needs nothing else. It resumes from the last epoch's
checkpoint after a preemption and trains data-parallel under torchrun.
"""

from __future__ import annotations

from typing import Any

import torch


class ChurnModel(torch.nn.Module):
    """Standardise with the training data's statistics, then one linear layer: a churn logit."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std.clamp_min(1e-6))
        self.linear = torch.nn.Linear(len(mean), 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear((features - self.mean) / self.std)


def train(ctx: Any) -> torch.nn.Module | None:
    """Fit the model; return it (the runtime logs and registers it) or None when asked to stop."""
    features, target = ctx.load_training_data()
    model = ChurnModel(features.mean(dim=0), features.std(dim=0))
    optimizer = torch.optim.Adam(model.parameters(), lr=ctx.params["lr"])
    start = 0
    if (state := ctx.load_checkpoint()) is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["epoch"]
    # Churners are rare: weigh them up so the model trades a little accuracy for recall (f1).
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=(1 - target.mean()) / target.mean())
    trained = torch.nn.parallel.DistributedDataParallel(model) if ctx.distributed else model
    x, y = ctx.load_training_data(shard=True)  # this rank's rows (all of them without torchrun)
    y = y.reshape(-1, 1)
    # ctx.epochs() counts params.epochs and reports progress; ctx.batches() shuffles (seeded by the
    # epoch, so a resumed run sees the same order) into params.batch_size rows.
    for epoch in ctx.epochs(start=start):
        for batch_x, batch_y in ctx.batches(x, y):
            optimizer.zero_grad()
            loss = loss_fn(trained(batch_x), batch_y)
            loss.backward()
            optimizer.step()
        ctx.log_metric("train_loss", loss.item(), step=epoch)
        ctx.save_checkpoint({"epoch": epoch + 1, "model": model.state_dict(), "optimizer": optimizer.state_dict()})
        if ctx.should_stop:
            return None
    return model
