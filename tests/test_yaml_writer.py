"""The YAML writer: deterministic bytes, strings that stay strings in every reader."""

from __future__ import annotations

import yaml

from mlc.compiler.backends.yaml_writer import dump_yaml

AMBIGUOUS = [
    "on",
    "off",
    "yes",
    "no",
    "y",
    "n",
    "Y",
    "true",
    "null",
    "~",
    "0755",
    "1_000",
    "1:20",
    "12",
    "1.5",
    "1e3",
    ".inf",
    "2024-01-01",
    "0x1F",
]


def test_ambiguous_strings_are_quoted_and_round_trip() -> None:
    text = dump_yaml([{value: value for value in AMBIGUOUS}]).decode()
    for value in AMBIGUOUS:
        assert f'"{value}": "{value}"' in text
    # PyYAML reads YAML 1.1: if anything were unquoted, `on` would come back as True.
    assert yaml.safe_load(text) == {value: value for value in AMBIGUOUS}


def test_empty_and_padded_strings_survive() -> None:
    doc = {"empty": "", "padded": " x ", "colon": "a: b", "hash": "a #b"}
    assert yaml.safe_load(dump_yaml([doc])) == doc


def test_plain_strings_stay_plain_and_order_is_kept() -> None:
    text = dump_yaml([{"kind": "Job", "apiVersion": "batch/v1", "metadata": {"name": "x"}}]).decode()
    assert text == "kind: Job\napiVersion: batch/v1\nmetadata:\n  name: x\n"


def test_header_lists_and_multiline() -> None:
    text = dump_yaml(
        [{"a": ["x", {"b": 1}], "run": "echo 1\necho 2\n"}, {"c": None}], header="Generated.\nLine two"
    ).decode()
    assert text == ("# Generated.\n# Line two\na:\n  - x\n  - b: 1\nrun: |\n  echo 1\n  echo 2\n---\nc: null\n")


def test_no_anchors_for_shared_objects() -> None:
    shared = {"k": "v"}
    text = dump_yaml([{"a": shared, "b": shared}]).decode()
    assert "&" not in text and "*" not in text
