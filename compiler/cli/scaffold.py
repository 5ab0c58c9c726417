"""`mlc init`: a commented starter project that validates, plans, trains, gates and serves as written.

With `data/train.csv` present, the data contract, the evaluation and the drift check are filled
in from it (`contract_inference.py`); without it they are commented out until `mlc init --force`
runs again. The lock is made as the docs say (`mlc lock`, `requirements_pins.py`).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from mlc.compiler.backends.templating import render_template
from mlc.compiler.cli.contract_inference import (
    InferenceError,
    InferredContract,
    infer_contract,
    read_csv_sample,
    yaml_key,
)
from mlc.compiler.errors import MlcError
from mlc.compiler.output_tree import write_atomically

_MODEL_PY = '''"""Training entrypoint: `mlc-runtime train` calls `train(ctx)` and registers the model it returns.

Written by `mlc init`; it trains as is, for any task of the data contract (binary,
multiclass, regression): a small network over the contract's encoded features. Make it yours.
"""

import torch


class Standardize(torch.nn.Module):
    """Scale features by the training data's mean and spread, inside the model: serving needs nothing else."""

    def __init__(self, x: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", x.mean(dim=0))
        self.register_buffer("std", x.std(dim=0).nan_to_num(1.0).clamp_min(1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Rescale(torch.nn.Module):
    """Regression: the network learns a standardised target; this maps it back to the target's units."""

    def __init__(self, y: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", y.mean())
        self.register_buffer("std", y.std().clamp_min(1e-6))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.std + self.mean


def train(ctx):
    """Fit on ctx's training data with ctx.params; return the torch.nn.Module to register."""
    x, y = ctx.load_training_data()  # float32 features (the contract, encoded); the target for ctx.task
    # binary: one logit per row; multiclass: one logit per class; regression: the value.
    outputs = len(ctx.preprocessor.target.classes) if ctx.task == "multiclass" else 1
    net = torch.nn.Sequential(
        Standardize(x), torch.nn.Linear(x.shape[1], 32), torch.nn.ReLU(), torch.nn.Linear(32, outputs)
    )
    scale = Rescale(y) if ctx.task == "regression" else torch.nn.Identity()
    loss_fn = {
        "binary": torch.nn.BCEWithLogitsLoss(),
        "multiclass": torch.nn.CrossEntropyLoss(),
        "regression": torch.nn.MSELoss(),  # on the standardised target: the scale of y does not matter
    }[ctx.task]
    optimizer = torch.optim.Adam(net.parameters(), lr=ctx.params["lr"])
    for epoch in ctx.epochs():  # params.epochs, with progress (loss, rows/s, time left)
        for batch_x, batch_y in ctx.batches(x, y):  # shuffled, params.batch_size rows
            optimizer.zero_grad()
            out = net(batch_x)
            if ctx.task == "multiclass":
                loss = loss_fn(out, batch_y)
            elif ctx.task == "regression":
                loss = loss_fn(out.squeeze(-1), (batch_y - scale.mean) / scale.std)
            else:
                loss = loss_fn(out.squeeze(-1), batch_y)
            loss.backward()
            optimizer.step()
        ctx.log_metric("train_loss", loss.item(), step=epoch)
    return torch.nn.Sequential(net, scale).eval()
'''

_GITIGNORE_LINES = (
    ".mlc/",  # mlc run's local state: runtime configs, MLflow's sqlite store and artifacts
    "checkpoints/",
    "batch-out/",
    "__pycache__/",
    ".venv/",
)

# What `mlc init` gates on, per task: metrics that apply to it, and the one compared with the champion.
_TASK_EVALUATION = {
    "binary": (["accuracy", "f1", "roc_auc", "latency_p95_ms"], "roc_auc"),
    "multiclass": (["accuracy", "f1", "log_loss", "latency_p95_ms"], "accuracy"),
    "regression": (["mae", "rmse", "r2", "latency_p95_ms"], "r2"),
}
TRAIN_URI, EVAL_URI, LIVE_URI = "data/train.csv", "data/eval.csv", "data/live.csv"


class ScaffoldError(MlcError):
    """The project cannot be scaffolded as asked (e.g. a spec already exists)."""


def project_name_for(directory: Path) -> str:
    """A DNS-1123 project name derived from a directory name."""
    name = re.sub(r"[^a-z0-9-]+", "-", directory.resolve().name.lower()).strip("-")[:40].strip("-")
    return name or "my-model"


def write_new_file(path: Path, text: str, overwrite: bool = False) -> None:
    """Write `text` atomically (temp file + rename); refuse to replace a file unless `overwrite`."""
    if path.exists() and not overwrite:
        raise ScaffoldError(f"{path} already exists (use --force to overwrite)")
    write_atomically(path, text.encode("utf-8"))


def _torch_release() -> dict[str, object]:
    """The torch release the scaffold names: the installed one when the table knows it (read
    from its metadata, torch is not imported), else the newest the table has."""
    from importlib import metadata

    from mlc.compiler.compat import supported_torch_versions

    known = supported_torch_versions()
    try:
        installed = metadata.version("torch").split("+")[0]
    except metadata.PackageNotFoundError:
        installed = None
    if installed in known:
        return {"torch": installed, "torch_installed": True}
    return {"torch": known[-1], "torch_installed": False}


def _contract_view(contract: InferredContract) -> dict[str, object]:
    """The inferred contract as the template writes it: keys quoted where YAML needs it, aligned."""
    features = []
    keys = [yaml_key(f.name) + ":" for f in contract.features]
    width = max((len(k) for k in keys), default=0)
    for key, feature in zip(keys, contract.features, strict=True):
        rule = "{type: " + feature.type
        rule += ", min: 0" if feature.min is not None else ""
        rule += ", nullable: true" if feature.nullable else ""
        rule += "}"
        features.append({"key": key.ljust(width), "rule": rule, "pad": max(1, 40 - len(rule)), "seen": feature.seen})
    return {
        "target": yaml_key(contract.target),
        "task": contract.task,
        "ids": [yaml_key(name) for name in contract.ids],
        "features": features,
        "rows": contract.rows,
    }


def read_contract(directory: Path, target: str | None) -> InferredContract | None:
    """The contract data/train.csv suggests; None when there is no such file yet."""
    train = directory / TRAIN_URI
    if not train.is_file():
        if target is not None:
            raise ScaffoldError(f"--target {target}: there is no {TRAIN_URI} to read it from yet")
        return None
    try:
        header, rows = read_csv_sample(train)
        return infer_contract(header, rows, target)
    except (InferenceError, UnicodeDecodeError, csv.Error) as exc:
        raise ScaffoldError(f"{TRAIN_URI}: {exc}") from None


def gitignore_text(existing: str) -> str | None:
    """`.gitignore` with mlc's local state and outputs added; None when nothing is missing."""
    present = {line.strip() for line in existing.splitlines()}
    missing = [line for line in _GITIGNORE_LINES if line not in present]
    if not missing:
        return None
    lead = "" if not existing or existing.endswith("\n") else "\n"
    return existing + lead + "# mlc: local runs, checkpoints, batch outputs\n" + "\n".join(missing) + "\n"


def scaffold_project(
    directory: Path, name: str | None = None, force: bool = False, target: str | None = None
) -> list[Path]:
    """Write mlproject.yaml (its data contract read off data/train.csv when it exists), its JSON
    Schema, and where missing: .gitignore lines, requirements.in and the lock `mlc lock` makes
    from it, a starter training module that trains as is, and the mlc wheel images install."""
    from mlc.compiler import __version__
    from mlc.compiler.cli.requirements_pins import LockError, lock_text, pin_requirements
    from mlc.compiler.load.json_schema import json_schema_text
    from mlc.compiler.load.spec import RuntimeSource
    from mlc.compiler.load.values import project_name
    from mlc.compiler.plan.runtime_wheel import write_wheel

    name = name or project_name_for(directory)
    try:
        project_name(name)
    except ValueError as exc:
        raise ScaffoldError(f"--name: {exc}") from None
    spec = directory / "mlproject.yaml"
    if spec.exists() and not force:
        raise ScaffoldError(f"{spec} already exists (use --force to overwrite)")
    contract = read_contract(directory, target)
    package = name.replace("-", "_")
    metrics, gate_metric = _TASK_EVALUATION[contract.task] if contract else ([], "")
    files = {
        spec: render_template(
            "mlproject.yaml.j2",
            name=name,
            package=package,
            contract=_contract_view(contract) if contract else None,
            metrics=metrics,
            gate_metric=gate_metric,
            train_uri=TRAIN_URI,
            eval_uri=EVAL_URI,
            live_uri=LIVE_URI,
            **_torch_release(),
        ),
        directory / "mlproject.schema.json": json_schema_text(),
    }
    requirements_in = directory / "requirements.in"
    optional = {
        requirements_in: "# The project's own dependencies, one a line (e.g. pandas, scikit-learn>=1.4); then run\n"
        "# `mlc lock` to pin them, with everything they need, into requirements.lock. torch comes from\n"
        "# code.framework.torch.\n",
        directory / "src" / package / "__init__.py": "",
        directory / "src" / package / "model.py": _MODEL_PY,
    }
    files.update({path: text for path, text in optional.items() if not path.exists()})
    lock = directory / "requirements.lock"
    if not lock.exists():
        source = files.get(requirements_in) or requirements_in.read_text(encoding="utf-8")
        try:
            files[lock] = lock_text(pin_requirements(source, "requirements.in"), "requirements.in")
        except LockError as exc:
            raise ScaffoldError(f"requirements.lock: {exc}") from None
    gitignore = directory / ".gitignore"
    ignored = gitignore_text(gitignore.read_text(encoding="utf-8") if gitignore.exists() else "")
    if ignored is not None:
        files[gitignore] = ignored
    for path, text in files.items():
        write_new_file(path, text, overwrite=True)
    written = list(files)
    # The mlc the images and CI install (`images.runtime`'s default, what `mlc vendor` writes): a
    # new project's images build without anyone having published mlc anywhere.
    wheel = directory / RuntimeSource().wheel_path()
    if not wheel.exists() and write_wheel(wheel, __version__):
        written.append(wheel)
    return written
