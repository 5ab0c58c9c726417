"""Training entrypoint of the churn example: `mlc-runtime train` calls `train(ctx)`."""

from __future__ import annotations

from typing import Any


def train(ctx: Any) -> Any:
    """Fit a logistic regression on the contract's features; the runtime logs and registers it."""
    import torch

    features, target = ctx.load_training_data()
    torch.manual_seed(ctx.seed)
    x = torch.as_tensor(features, dtype=torch.float32)
    y = torch.as_tensor(target, dtype=torch.float32).reshape(-1, 1)
    model = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=ctx.params["lr"])
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for epoch in range(ctx.params["epochs"]):
        for start in range(0, len(x), ctx.params["batch_size"]):
            batch = slice(start, start + ctx.params["batch_size"])
            optimizer.zero_grad()
            loss = loss_fn(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
        ctx.log_metric("train_loss", float(loss), step=epoch)
    return model
