"""`Commented` values in the one YAML writer: trailing comments that readers keep as comments."""

from __future__ import annotations

import pytest
import yaml

from mlc.compiler.backends.yaml_writer import Commented, dump_yaml


def test_commented_value_is_written_with_a_trailing_comment() -> None:
    text = dump_yaml([{"uses": Commented("actions/checkout@0123abc", "v7.0.1")}]).decode()
    assert text == "uses: actions/checkout@0123abc  # v7.0.1\n"


def test_commented_values_read_back_as_the_plain_strings() -> None:
    documents = {
        "steps": [{"uses": Commented("a/b@1", "v1"), "with": {"x": Commented("on", "quoted")}}],
        "items": [Commented("1.0", "a number-like string"), Commented("plain", "#hash inside")],
        "after": "next line",
    }
    assert yaml.safe_load(dump_yaml([documents])) == {
        "steps": [{"uses": "a/b@1", "with": {"x": "on"}}],
        "items": ["1.0", "plain"],
        "after": "next line",
    }


def test_ambiguous_commented_value_keeps_its_quotes() -> None:
    text = dump_yaml([{"x": Commented("yes", "a string, not a boolean")}]).decode()
    assert text == 'x: "yes"  # a string, not a boolean\n'


def test_commented_value_as_a_mapping_key_is_refused() -> None:
    with pytest.raises(ValueError, match="mapping key"):
        dump_yaml([{Commented("key", "no"): "value"}])


@pytest.mark.parametrize(("value", "comment"), [("two\nlines", "c"), ("v", "two\nlines")])
def test_multi_line_commented_value_is_refused(value: str, comment: str) -> None:
    with pytest.raises(ValueError, match="one line"):
        Commented(value, comment)
