"""Evaluation metrics over numpy arrays: pure functions, no I/O.

Which metric applies to which task is the contract's (`contract.TASK_METRICS`): validate checks
a spec against the same table. Binary tasks score `probability` (of the positive class, 1) and
predict 1 at >= 0.5; precision, recall and f1 are of the positive class. Multiclass: accuracy,
log_loss, macro-averaged precision, recall and f1, and `top<k>_accuracy` (the true class among
the k likeliest). Regression: mae, rmse, r2, and mape as a fraction (0.1 = 10 %) over rows whose
true value is not 0. Latency metrics are measured by the gate, not computed here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlc.runtime.contract import TOP_K_ACCURACY
from mlc.runtime.errors import MlcRuntimeError

if TYPE_CHECKING:
    import numpy as np

_EPSILON = 1e-15


class MetricError(MlcRuntimeError, ValueError):
    """A metric that does not apply to the task, or that this runtime does not compute."""


def _counts(y_true: np.ndarray, y_pred: np.ndarray, positive: int) -> tuple[int, int, int]:
    tp = int(((y_pred == positive) & (y_true == positive)).sum())
    fp = int(((y_pred == positive) & (y_true != positive)).sum())
    fn = int(((y_pred != positive) & (y_true == positive)).sum())
    return tp, fp, fn


def _precision_recall_f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return precision, recall, f1


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties averaged); NaN with a single class."""
    from scipy.stats import rankdata

    positives = int((y_true == 1).sum())
    negatives = len(y_true) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[y_true == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def binary_metric(name: str, y_true: np.ndarray, probability: np.ndarray) -> float:
    import numpy as np

    y_pred = (probability >= 0.5).astype(np.int64)
    if name == "accuracy":
        return float((y_pred == y_true).mean())
    if name in ("precision", "recall", "f1"):
        scores = dict(
            zip(("precision", "recall", "f1"), _precision_recall_f1(*_counts(y_true, y_pred, 1)), strict=True)
        )
        return scores[name]
    if name == "roc_auc":
        return roc_auc(y_true, probability)
    if name == "log_loss":
        p = np.clip(probability, _EPSILON, 1 - _EPSILON)
        return float(-(y_true * np.log(p) + (1 - y_true) * np.log(1 - p)).mean())
    raise MetricError(f"{name} does not apply to a binary target")


def multiclass_metric(name: str, y_true: np.ndarray, probabilities: np.ndarray) -> float:
    import numpy as np

    y_pred = probabilities.argmax(axis=1)
    if name == "accuracy":
        return float((y_pred == y_true).mean())
    if name in ("precision", "recall", "f1"):
        index = ("precision", "recall", "f1").index(name)
        per_class = [_precision_recall_f1(*_counts(y_true, y_pred, k))[index] for k in range(probabilities.shape[1])]
        return float(np.mean(per_class))
    if name == "log_loss":
        picked = np.clip(probabilities[np.arange(len(y_true)), y_true], _EPSILON, 1.0)
        return float(-np.log(picked).mean())
    if top_k := TOP_K_ACCURACY.fullmatch(name):
        k = min(int(top_k.group(1)), probabilities.shape[1])
        # The true class is among the k likeliest: fewer than k classes score higher than it.
        truth = probabilities[np.arange(len(y_true)), y_true]
        above = (probabilities > truth[:, None]).sum(axis=1)
        return float((above < k).mean())
    raise MetricError(f"{name} does not apply to a multiclass target (binary only or not computed)")


def regression_metric(name: str, y_true: np.ndarray, prediction: np.ndarray) -> float:
    import numpy as np

    error = prediction - y_true
    if name == "mae":
        return float(np.abs(error).mean())
    if name == "rmse":
        return float(np.sqrt((error**2).mean()))
    if name == "r2":
        spread = ((y_true - y_true.mean()) ** 2).sum()
        return float(1 - (error**2).sum() / spread) if spread else float("nan")
    if name == "mape":
        nonzero = y_true != 0
        return float(np.abs(error[nonzero] / y_true[nonzero]).mean()) if nonzero.any() else float("nan")
    raise MetricError(f"{name} does not apply to a regression target")


def output_scores(task: str, classes: Sequence[str], outputs: Mapping[str, Any]) -> np.ndarray:
    """What the metrics score, from a model's named output columns (a DataFrame or a mapping of
    arrays): the positive class's `probability` (binary), the `probability_<class>` columns in
    class order (multiclass), or `prediction` (regression). The gate and the live feedback job
    both read a model's answers through this."""
    import numpy as np

    if task == "binary":
        return np.asarray(outputs["probability"], dtype=np.float64)
    if task == "multiclass":
        return np.column_stack([np.asarray(outputs[f"probability_{label}"], dtype=np.float64) for label in classes])
    return np.asarray(outputs["prediction"], dtype=np.float64)


def task_metric(name: str, task: str, y_true: np.ndarray, scores: np.ndarray) -> float:
    """One metric of a model's scores (probability, class probabilities, or values) against the truth."""
    if task == "binary":
        return binary_metric(name, y_true, scores)
    if task == "multiclass":
        return multiclass_metric(name, y_true, scores)
    return regression_metric(name, y_true, scores)
