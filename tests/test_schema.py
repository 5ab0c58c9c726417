"""The JSON Schema: accepts every valid spec, flags typos (inside overlays too)."""

from __future__ import annotations

import json

import jsonschema
import pytest

from mlc.compiler.load.document import parse_spec_text
from spec_fixtures import REPO_ROOT

SCHEMA = json.loads((REPO_ROOT / "schemas" / "mlproject.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
EXAMPLES = sorted((REPO_ROOT / "examples").glob("*/mlproject.yaml"))


def data(text: str) -> dict:
    doc, diagnostics = parse_spec_text(text)
    assert doc is not None, diagnostics
    return doc.data


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_accepts_the_reference(reference_spec_text: str) -> None:
    assert list(VALIDATOR.iter_errors(data(reference_spec_text))) == []


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.parent.name)
def test_accepts_examples(example) -> None:
    assert list(VALIDATOR.iter_errors(data(example.read_text()))) == []


def test_rejects_unknown_keys_at_top_nested_and_in_overlays() -> None:
    base = "apiVersion: mlc/v1\nkind: MLProject\nmetadata: {name: x}\n"
    for extra in ("trian: {}\n", "serve: {replicass: 1}\n", "environments:\n  prod:\n    serve: {replicass: 1}\n"):
        assert list(VALIDATOR.iter_errors(data(base + extra))), extra


def test_overlays_are_partial_and_may_delete() -> None:
    base = "apiVersion: mlc/v1\nkind: MLProject\nmetadata: {name: x}\n"
    overlay = "environments:\n  prod:\n    serve: {replicas: {max: 3}}\n    monitor: null\n"
    assert list(VALIDATOR.iter_errors(data(base + overlay))) == []
