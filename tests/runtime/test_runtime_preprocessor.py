"""The contract preprocessor: what training fits is what serving computes."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from mlc.runtime.contract.config import Contract
from mlc.runtime.preprocessor import PreprocessError, Preprocessor, fit_preprocessor, fit_target

CONTRACT = Contract.model_validate(
    {
        "target": "label",
        "features": {
            "x": {"type": "float"},
            "n": {"type": "int", "nullable": True},
            "flag": {"type": "bool"},
            "plan": {"type": "category", "values": ["basic", "pro"]},
            "region": {"type": "category"},
            "note": {"type": "string"},
        },
    }
)
TRAIN = pa.table(
    {
        "x": ["1.0", "3.0"],  # CSV text and parquet types go through the same parser
        "n": pa.array([2, None], pa.int64()),
        "flag": [True, False],
        "plan": ["pro", "basic"],
        "region": ["west", "east"],
        "note": ["a", "b"],
        "label": [1, 0],
    }
)


def test_fit_encodes_numbers_bools_and_one_hot_categories() -> None:
    preprocessor = fit_preprocessor(TRAIN, CONTRACT)
    assert preprocessor.output_names == ["x", "n", "flag", "plan=basic", "plan=pro", "region=east", "region=west"]
    assert preprocessor.transform(TRAIN).tolist() == [[1, 2, 1, 0, 1, 0, 1], [3, 2, 0, 1, 0, 1, 0]]  # n: mean fills
    assert preprocessor.target is not None and preprocessor.target.task == "binary"


def test_serving_rows_missing_values_and_unseen_categories() -> None:
    preprocessor = fit_preprocessor(TRAIN, CONTRACT)
    request = pa.Table.from_pylist([{"x": None, "n": float("nan"), "flag": None, "plan": "gold", "region": "mars"}])
    assert preprocessor.transform(request).tolist() == [[2.0, 2.0, 0.5, 0, 0, 0, 0]]


def test_unreadable_values_and_missing_columns_are_errors() -> None:
    preprocessor = fit_preprocessor(TRAIN, CONTRACT)
    with pytest.raises(PreprocessError, match="x: row 1: 'abc' is not float"):
        preprocessor.transform(TRAIN.set_column(0, "x", pa.array(["1", "abc"])))
    with pytest.raises(PreprocessError, match="missing feature column 'plan'"):
        preprocessor.transform(TRAIN.drop_columns(["plan"]))


def test_state_round_trips_through_json() -> None:
    preprocessor = fit_preprocessor(TRAIN, CONTRACT)
    again = Preprocessor.from_dict(json.loads(json.dumps(preprocessor.to_dict())))
    assert again == preprocessor


@pytest.mark.parametrize(
    ("values", "task", "encoded"),
    [
        ([True, False], "binary", [1, 0]),
        (["1", "0"], "binary", [1, 0]),
        ([1.0, 0.0], "binary", [1, 0]),
        ([0.5, 3.0], "regression", [0.5, 3.0]),
        (["cat", "dog", "cat"], "multiclass", [0, 1, 0]),
    ],
)
def test_the_target_decides_the_task(values, task, encoded) -> None:
    encoding = fit_target("label", pa.array(values))
    assert encoding.task == task
    assert np.asarray(encoding.encode(pa.array(values))).tolist() == encoded


def test_a_declared_task_is_the_task_and_its_labels_must_fit() -> None:
    """Classes written as numbers are multiclass when the contract says so (inferred, they would
    be a regression target); a label that does not fit the declared task names its row."""
    classes = pa.array([0, 2, 1, 2])
    assert fit_target("label", classes).task == "regression"
    declared = fit_target("label", classes, "multiclass")
    assert (declared.task, declared.classes) == ("multiclass", ("0", "1", "2"))
    assert np.asarray(declared.encode(classes)).tolist() == [0, 2, 1, 2]
    with pytest.raises(PreprocessError, match=r"target label: row 2: 2 is not a binary \(0/1, true/false\) label"):
        fit_target("label", pa.array([1, 2, 0]), "binary")
    with pytest.raises(PreprocessError, match="row 3: 'dog' is not a regression"):
        fit_target("label", pa.array(["1.5", "2", "dog"]), "regression")
