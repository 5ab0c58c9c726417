"""`mlc-runtime gate` / `rollback`: metrics against scikit-learn, gate rules, a real MLflow registry."""

from __future__ import annotations

import json
import math

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from sklearn import metrics as sk

from mlc.runtime.contract.config import Gate
from mlc.runtime.gates import GateReport, evaluate_gates, render_gate_markdown
from mlc.runtime.metrics import binary_metric, multiclass_metric, regression_metric

RNG = np.random.default_rng(0)


def test_binary_metrics_match_scikit_learn() -> None:
    y = RNG.integers(0, 2, 300)
    p = np.clip(y * 0.3 + RNG.random(300) * 0.7, 0, 1)
    pred = (p >= 0.5).astype(int)
    expected = {
        "accuracy": sk.accuracy_score(y, pred),
        "precision": sk.precision_score(y, pred),
        "recall": sk.recall_score(y, pred),
        "f1": sk.f1_score(y, pred),
        "roc_auc": sk.roc_auc_score(y, p),
        "log_loss": sk.log_loss(y, p),
    }
    assert {name: binary_metric(name, y, p) for name in expected} == pytest.approx(expected)
    assert math.isnan(binary_metric("roc_auc", np.ones(3, int), np.ones(3)))


def test_multiclass_and_regression_metrics_match_scikit_learn() -> None:
    y = RNG.integers(0, 3, 200)
    logits = RNG.random((200, 3)) + np.eye(3)[y]
    probabilities = logits / logits.sum(axis=1, keepdims=True)
    pred = probabilities.argmax(axis=1)
    assert multiclass_metric("accuracy", y, probabilities) == pytest.approx(sk.accuracy_score(y, pred))
    assert multiclass_metric("f1", y, probabilities) == pytest.approx(sk.f1_score(y, pred, average="macro"))
    assert multiclass_metric("log_loss", y, probabilities) == pytest.approx(sk.log_loss(y, probabilities))
    for k in (1, 2, 3, 7):  # more classes asked for than there are: every row is a hit
        expected = sk.top_k_accuracy_score(y, probabilities, k=min(k, 3), labels=[0, 1, 2])
        assert multiclass_metric(f"top{k}_accuracy", y, probabilities) == pytest.approx(expected), k
    truth, guess = RNG.random(100) + 1, RNG.random(100) + 1
    assert regression_metric("mae", truth, guess) == pytest.approx(sk.mean_absolute_error(truth, guess))
    assert regression_metric("rmse", truth, guess) == pytest.approx(np.sqrt(sk.mean_squared_error(truth, guess)))
    assert regression_metric("r2", truth, guess) == pytest.approx(sk.r2_score(truth, guess))
    assert regression_metric("mape", truth, guess) == pytest.approx(sk.mean_absolute_percentage_error(truth, guess))


GATES = [Gate(metric="f1", min=0.8), Gate(metric="roc_auc", max_drop=0.01), Gate(metric="latency_p95_ms", max=50)]


def test_gate_rules() -> None:
    good = {"f1": 0.85, "roc_auc": 0.90, "latency_p95_ms": 10.0}
    results, passed, _ = evaluate_gates(GATES, good, {**good, "roc_auc": 0.905}, "allow")
    assert passed and [r.rule for r in results] == ["min", "max_drop", "max"]
    assert [r.detail for r in results] == [
        "0.85 is at least 0.8",
        "dropped 0.005 from the champion's 0.905, within 0.01",
        "10 is at most 50",
    ]
    results, passed, _ = evaluate_gates(GATES, good, {**good, "roc_auc": 0.92}, "allow")
    # What holds, as a sentence: never `fails: 0.2 >= 0.3`.
    assert not passed and results[1].detail == "dropped 0.02 from the champion's 0.92, more than 0.01"
    results, passed, _ = evaluate_gates(GATES, {**good, "f1": 0.5, "latency_p95_ms": 51.0}, None, "allow")
    assert not passed and [r.detail for r in results] == ["0.5 is below 0.8", "51 is above 50"]
    results, passed, _ = evaluate_gates([Gate(metric="rmse", max_rise=0.1)], {"rmse": 1.05}, {"rmse": 1.0}, "allow")
    assert passed and results[0].detail == "rose 0.05 from the champion's 1, within 0.1"
    results, _, _ = evaluate_gates([Gate(metric="rmse", max_rise=0.1)], {"rmse": 0.9}, {"rmse": 1.0}, "allow")
    assert results[0].detail == "dropped 0.1 from the champion's 1"
    results, passed, _ = evaluate_gates(GATES, {**good, "f1": float("nan")}, None, "allow")
    assert not passed and results[0].detail == "the challenger's f1 is not a number"


def test_first_model_allow_skips_relative_gates_and_block_fails() -> None:
    good = {"f1": 0.85, "roc_auc": 0.90, "latency_p95_ms": 10.0}
    results, passed, notes = evaluate_gates(GATES, good, None, "allow")
    assert passed and len(results) == 2
    assert notes == [
        "The gate 'roc_auc may drop at most 0.01 below the champion's' did not apply: there is no champion "
        "to compare with yet."
    ]
    _, passed, notes = evaluate_gates(GATES, good, None, "block")
    assert not passed and "first_model is block" in notes[-1]


def test_the_markdown_report_reads_as_sentences_with_a_legend_per_table() -> None:
    challenger = {"f1": 0.2005, "roc_auc": 0.61, "latency_p95_ms": 1.5}
    champion = {"f1": 0.52, "roc_auc": 0.83, "latency_p95_ms": 1.4}
    gates = [Gate(metric="f1", min=0.3), Gate(metric="roc_auc", max_drop=0.01), Gate(metric="latency_p95_ms", max=50)]
    results, passed, notes = evaluate_gates(gates, challenger, champion, "allow")
    report = GateReport("churn", "2", "1", challenger, champion, results, passed, notes, "eval", 1000)
    assert render_gate_markdown(report) == (
        "## Gate failed: churn version 2 may not replace version 1, which stays @champion\n"
        "\n"
        "Challenger @challenger (version 2), champion @champion (version 1): both models scored on the `eval` "
        "dataset (1,000 rows). 2 of 3 gates failed.\n"
        "\n"
        "| gate | challenger | champion | verdict |\n"
        "| --- | --- | --- | --- |\n"
        "| f1 must be at least 0.3 | 0.2005 | 0.52 | **failed**: 0.2005 is below 0.3 |\n"
        "| roc_auc may drop at most 0.01 below the champion's | 0.61 | 0.83 "
        "| **failed**: dropped 0.22 from the champion's 0.83, more than 0.01 |\n"
        "| latency_p95_ms must be at most 50 | 1.5 | 1.4 | passed: 1.5 is at most 50 |\n"
        "\n"
        "*gate*: a rule of `evaluate.gates`; *challenger*, *champion*: the rule's metric for each model on the "
        "`eval` dataset; *verdict*: whether the challenger meets the rule, and why.\n"
        "\n"
        "| metric | challenger | champion | better |\n"
        "| --- | --- | --- | --- |\n"
        "| f1 | 0.2005 | 0.52 | higher |\n"
        "| roc_auc | 0.61 | 0.83 | higher |\n"
        "| latency_p95_ms | 1.5 | 1.4 | lower |\n"
        "\n"
        "*metric*: each of `evaluate.metrics` and the gates' metrics; *challenger*, *champion*: its value for "
        "each model (blank: no champion); *better*: which direction is the better model.\n"
    )
    first = GateReport("churn", "1", None, challenger, None, results[:1], False, [], "eval", 10)
    assert render_gate_markdown(first).startswith(
        "## Gate failed: churn version 1 may not become @champion\n\n"
        "Challenger @challenger (version 1), no champion yet: the challenger scored"
    )


# --- the commands, on a real MLflow sqlite store ---------------------------------------------------

EVALUATE = {
    "dataset": "eval",
    "metrics": ["accuracy", "roc_auc", "latency_p95_ms"],
    "first_model": "allow",
    "gates": [
        {"metric": "accuracy", "min": 0.1},
        {"metric": "roc_auc", "max_drop": 0.01},
        {"metric": "latency_p95_ms", "max": 1000},
    ],
}
GOOD = {"epochs": 40, "lr": 0.5}
BAD = {"epochs": 1, "lr": 0.001}


def aliases(root) -> dict[str, str]:
    mlflow.set_tracking_uri(f"sqlite:///{root}/.mlc/mlflow.db")
    return {alias: str(version) for alias, version in MlflowClient().get_registered_model("toy-model").aliases.items()}


def test_gate_promote_fail_and_rollback(toy, run_runtime) -> None:
    root, toy_config = toy

    def config(params: dict, **evaluate: object) -> str:
        return str(toy_config(evaluate={**EVALUATE, **evaluate}, params=params))

    def train(params: dict) -> None:
        done = run_runtime("train", "--config", config(params), cwd=root)
        assert done.returncode == 0, done.stderr

    def gate(params: dict = GOOD, *extra: str, **evaluate: object):
        return run_runtime(
            "gate",
            "--config",
            config(params, **evaluate),
            "--report",
            "gate.md",
            "--json",
            "gate.json",
            *extra,
            cwd=root,
        )

    done = gate()
    assert done.returncode == 2 and "no toy-model@challenger: run `mlc-runtime train` first" in done.stderr

    train(GOOD)  # version 1
    blocked = gate(GOOD, "--promote", first_model="block")
    assert blocked.returncode == 1 and "first_model is block" in blocked.stdout
    assert aliases(root) == {"challenger": "1"}

    first = gate(GOOD, "--promote")
    assert first.returncode == 0, first.stderr + first.stdout
    assert "promoted toy-model version 1 to @champion" in first.stdout
    assert (root / "gate.md").read_text().startswith("## Gate passed: toy-model version 1")
    assert aliases(root) == {"challenger": "1", "champion": "1"}

    train(BAD)  # version 2: worse than the champion
    worse = gate(GOOD, "--promote")
    assert worse.returncode == 1
    report = json.loads((root / "gate.json").read_text())
    failed = [r for r in report["results"] if not r["passed"]]
    assert [(r["metric"], r["rule"]) for r in failed] == [("roc_auc", "max_drop")]
    assert (report["challenger_version"], report["champion_version"]) == ("2", "1")
    assert "| **failed**: dropped " in (root / "gate.md").read_text()
    assert aliases(root) == {"challenger": "2", "champion": "1"}  # nothing promoted

    train(GOOD)  # version 3: as good as the champion
    assert gate(GOOD, "--promote").returncode == 0
    assert aliases(root) == {"challenger": "3", "champion": "3", "previous": "1"}

    back = run_runtime("rollback", "--config", config(GOOD), cwd=root)
    assert back.returncode == 0 and back.stdout == "rolled back toy-model @champion from version 3 to version 1\n"
    assert aliases(root) == {"challenger": "3", "champion": "1"}
    again = run_runtime("rollback", "--config", config(GOOD), cwd=root)
    assert again.returncode == 2 and again.stderr == "error: no toy-model@previous to roll back to\n"

    (root / "data/train.csv").unlink()
    unreadable = gate(GOOD, dataset="train")
    assert unreadable.returncode == 2 and "data/train.csv: no such file or directory" in unreadable.stderr
    unknown = gate(GOOD, metrics=["rmse"], gates=[])
    assert unknown.returncode == 2 and "rmse does not apply to a binary target" in unknown.stderr


def test_a_pull_requests_smoke_model_stays_under_its_own_alias_and_is_never_promoted(toy, run_runtime) -> None:
    root, toy_config = toy
    config = str(toy_config(evaluate=EVALUATE, params=GOOD))
    assert run_runtime("train", "--config", config, cwd=root).returncode == 0  # version 1
    assert run_runtime("gate", "--config", config, "--promote", cwd=root).returncode == 0

    smoke = run_runtime("train", "--config", config, "--smoke", "--challenger-alias", "pr-42", cwd=root)
    assert smoke.returncode == 0, smoke.stderr
    assert "as @pr-42" in smoke.stdout
    assert aliases(root) == {"challenger": "1", "champion": "1", "pr-42": "2"}  # the shared aliases did not move

    checked = run_runtime("gate", "--config", config, "--challenger-alias", "pr-42", "--json", "gate.json", cwd=root)
    assert checked.returncode in (0, 1), checked.stderr
    assert json.loads((root / "gate.json").read_text())["challenger_version"] == "2"
    lenient = str(toy_config(evaluate={**EVALUATE, "gates": [{"metric": "accuracy", "min": 0.0}]}, params=GOOD))
    promoted = run_runtime("gate", "--config", lenient, "--challenger-alias", "pr-42", "--promote", cwd=root)
    assert promoted.returncode == 2  # it passes the gates, and is still refused
    assert "version 2 is a smoke-test model; it is never promoted" in promoted.stderr
    assert aliases(root)["champion"] == "1"

    for reserved in ("champion", "previous", "latest", "v3", "no spaces"):
        refused = run_runtime("train", "--config", config, "--challenger-alias", reserved, cwd=root)
        assert refused.returncode == 2 and "--challenger-alias" in refused.stderr, reserved


def test_only_the_first_pod_of_a_multi_node_training_job_gates(toy, run_runtime) -> None:
    root, toy_config = toy
    config = str(toy_config(evaluate=EVALUATE, params=GOOD))
    other = run_runtime("gate", "--config", config, "--promote", "--completion-index", "1", cwd=root)
    assert other.returncode == 0, other.stderr
    assert "only the pod of index 0 (it registered the model) gates" in other.stdout
    first = run_runtime("gate", "--config", config, "--promote", "--completion-index", "0", cwd=root)
    assert first.returncode == 2 and "no toy-model@challenger" in first.stderr  # index 0 does gate


def test_a_pull_request_is_gated_against_its_base_trained_the_same_way(toy, run_runtime) -> None:
    root, toy_config = toy
    # An absolute bound no smoke model meets: advisory in a comparison, it is reported and never decides.
    evaluate = {**EVALUATE, "gates": [*EVALUATE["gates"], {"metric": "accuracy", "min": 0.999}]}

    def smoke(params: dict, alias: str) -> None:
        config = str(toy_config(evaluate=evaluate, params=params))
        done = run_runtime("train", "--config", config, "--smoke", "--challenger-alias", alias, cwd=root)
        assert done.returncode == 0, done.stderr

    def compare(alias: str, *extra: str):
        config = str(toy_config(evaluate=evaluate, params=GOOD))
        return run_runtime(
            "gate", "--config", config, "--challenger-alias", alias, "--baseline-alias", "pr-7-base",
            "--absolute", "advisory", "--json", "gate.json", *extra, cwd=root,
        )  # fmt: skip

    missing = compare("pr-7")
    assert missing.returncode == 2 and "no toy-model@pr-7" in missing.stderr
    smoke(GOOD, "pr-7-base")  # the base branch's code
    smoke(GOOD, "pr-7")  # the PR's: the same code, sample and seed (a comment changed)
    same = compare("pr-7")
    assert same.returncode == 0, same.stdout + same.stderr
    report = json.loads((root / "gate.json").read_text())
    assert report["champion_alias"] == "pr-7-base"
    quality = ("accuracy", "roc_auc")  # the same model: equal scores (latency is a measurement)
    assert [report["challenger_metrics"][m] for m in quality] == [report["champion_metrics"][m] for m in quality]
    advisory = [r for r in report["results"] if not r["enforced"]]
    assert [(r["metric"], r["rule"], r["passed"]) for r in advisory] == [
        ("accuracy", "min", True),
        ("latency_p95_ms", "max", True),
        ("accuracy", "min", False),
    ]
    assert "| accuracy must be at least 0.999 |" in same.stdout and "advisory, failed" in same.stdout
    assert "the relative gates decide" in same.stdout

    smoke(BAD, "pr-8")  # a PR that breaks the model
    broken = compare("pr-8")
    assert broken.returncode == 1
    failed = [r for r in json.loads((root / "gate.json").read_text())["results"] if not r["passed"] and r["enforced"]]
    assert [(r["metric"], r["rule"]) for r in failed] == [("roc_auc", "max_drop")]
    assert compare("pr-7", "--promote").returncode == 2  # a usage error: nothing is promoted from a comparison
    assert "champion" not in aliases(root)
