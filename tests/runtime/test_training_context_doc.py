"""docs/training-context.md's three entrypoints (binary, multiclass, regression), each run as
written on a scikit-learn dataset through a project `mlc init` made from its CSV: the contract
`mlc init` reads, the config `mlc run train` would give the runtime, the real TrainingContext,
and the trained model scored on the held-out rows."""

from __future__ import annotations

import json
import re
import types
from pathlib import Path

import pytest
import torch
from sklearn import datasets

from mlc.runtime.context import TrainingContext
from mlc.runtime.contract.config import RuntimeConfig
from spec_fixtures import run_mlc

DOC = Path(__file__).resolve().parents[2] / "docs" / "training-context.md"
EXAMPLE = re.compile(r"<!-- example: (\w+) -->\n```python\n(.*?)^```\n", re.DOTALL | re.MULTILINE)

# task -> (dataset, its target's column, how the model is judged on held-out rows, the floor)
CASES = {
    "binary": (datasets.load_breast_cancer, "malignant", "accuracy", 0.93),
    "multiclass": (datasets.load_wine, "cultivar", "accuracy", 0.9),
    "regression": (datasets.load_diabetes, "progression", "r2", 0.35),
}


def examples() -> dict[str, str]:
    return dict(EXAMPLE.findall(DOC.read_text()))


def write_project(directory: Path, task: str) -> None:
    load, target, _, _ = CASES[task]
    frame = load(as_frame=True).frame.rename(columns={"target": target})
    if task == "binary":
        frame[target] = 1 - frame[target]
    if task == "multiclass":
        frame[target] = frame[target].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    train = frame.sample(frac=0.75, random_state=0)
    (directory / "data").mkdir(parents=True)
    train.to_csv(directory / "data/train.csv", index=False)
    frame.drop(train.index).to_csv(directory / "data/eval.csv", index=False)


def score(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, task: str, measure: str) -> float:
    with torch.no_grad():
        out = model(x)
    if task == "binary":
        return ((out.reshape(-1) > 0).float() == y).float().mean().item()
    if task == "multiclass":
        return (out.argmax(dim=1) == y).float().mean().item()
    residual = ((out.reshape(-1) - y) ** 2).sum()
    return 1.0 - (residual / ((y - y.mean()) ** 2).sum()).item()


def test_the_doc_has_an_example_per_task() -> None:
    assert sorted(examples()) == sorted(CASES)


@pytest.mark.parametrize("task", sorted(CASES))
def test_the_documented_entrypoint_trains_a_model_that_predicts(
    task: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_project(tmp_path, task)
    code, _, err = run_mlc("init", str(tmp_path), "--name", f"doc-{task}", "--target", CASES[task][1])
    assert code == 0, err
    assert f"    task: {task} " in (tmp_path / "mlproject.yaml").read_text()
    code, printed, err = run_mlc("run", "train", "-f", str(tmp_path / "mlproject.yaml"), "--print-config")
    assert code == 0, err
    config = RuntimeConfig.model_validate(json.loads(printed))
    monkeypatch.chdir(tmp_path)  # the data URIs are relative to the spec's folder, as in a run
    torch.manual_seed(config.require_train().seed)
    ctx = TrainingContext(config, params=dict(config.require_train().params), smoke=False, device=torch.device("cpu"))
    module = types.ModuleType(f"doc_{task}")
    exec(compile(examples()[task], f"{DOC}:{task}", "exec"), module.__dict__)

    model = module.train(ctx)

    assert ctx.task == task and isinstance(model, torch.nn.Module) and not model.training
    x, y = ctx.load_dataset("eval")
    assert y is not None
    _, _, measure, floor = CASES[task]
    scored = score(model, x, y, task, measure)
    assert scored >= floor, f"{measure} {scored:.3f} on the held-out rows, below {floor}"
