"""The fast YAML writer writes exactly the bytes PyYAML's emitter (the reference) writes.

`dump_yaml` tries `_FastDocument` first and hands a document to PyYAML when the fast writer
does not cover it; both must agree byte for byte, on every document the backends emit and on
random documents full of YAML's sharp edges.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mlc.compiler.backends.yaml_writer import Commented, _FastDocument, _pyyaml_document, dump_yaml
from mlc.compiler.pipeline import compile_spec_file
from spec_fixtures import REPO_ROOT

EXAMPLES = sorted((REPO_ROOT / "examples").glob("*/mlproject.yaml"))


def emitted_documents(spec: Path, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every document the backends hand to `dump_yaml` while compiling `spec`."""
    documents: list[Any] = []
    real = _FastDocument.write

    def recording(doc: Any) -> str | None:
        documents.append(doc)
        return real(doc)

    with monkeypatch.context() as patch:
        patch.setattr(_FastDocument, "write", recording)
        compiled = compile_spec_file(spec)
    assert compiled.ok, [d.render() for d in compiled.result.diagnostics]
    return documents


def assert_fast_matches_reference(doc: Any) -> None:
    fast = _FastDocument.write(doc)
    assert fast is not None, f"the fast writer gave up on a document the backends emit: {doc}"
    assert fast == _pyyaml_document(doc)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.parent.name)
def test_every_example_document_is_written_fast_and_identically(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    documents = emitted_documents(example, monkeypatch)
    assert len(documents) > 10
    for doc in documents:
        assert_fast_matches_reference(doc)


def test_every_reference_spec_document_is_written_fast_and_identically(
    project: Any, reference_spec_text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    documents = emitted_documents(project(reference_spec_text, package="churn"), monkeypatch)
    assert len(documents) > 10
    for doc in documents:
        assert_fast_matches_reference(doc)


SHARP_EDGES = [
    "on",
    "no",
    "y",
    "~",
    "null",
    "0755",
    "1_000",
    "1:20",
    "1e3",
    ".inf",
    "2024-01-01",
    "<<",
    "=",
    "-",
    "--x",
    "- x",
    ":8",
    "a: b",
    "a:",
    "a #b",
    "a#b",
    "#x",
    "@x",
    "`x",
    "!x",
    "&x",
    "*x",
    "|x",
    ">x",
    "%x",
    "'x",
    '"x',
    "it's",
    'say "hi"',
    "back\\slash",
    "---",
    "...",
    "?",
    "? x",
    "[x]",
    "{x}",
    "a, b",
    " lead",
    "trail ",
    "",
    "two\nlines",
    "two\nlines\n",
    "blank\n\nline",
    "ends\n\n",
    " indented\nblock",
    "tab\there",
    "café",
    "x" * 130,
]


@pytest.mark.parametrize("value", SHARP_EDGES)
def test_sharp_scalars_as_values_keys_and_items(value: str) -> None:
    for doc in ({"k": value}, {"k": [value, {"n": value}]}, {value: 1}):
        text = dump_yaml([doc]).decode()
        assert text == _pyyaml_document(doc)
        assert yaml.safe_load(text) == doc


def test_commented_values_match_the_reference() -> None:
    doc = {"uses": Commented("actions/checkout@abc", "v4"), "steps": [Commented("on", "quoted"), Commented("x y", "c")]}
    assert_fast_matches_reference(doc)


def test_documents_outside_the_fast_subset_fall_back_to_pyyaml() -> None:
    for doc in ({"k": "café"}, {"k": "tab\there"}, {1: "int key"}, {"k": ("a", "tuple")}, {"k": "x\n\n"}):
        assert _FastDocument.write(doc) is None
    assert dump_yaml([{"k": "café"}]).decode() == "k: café\n"


_TEXT = st.text(alphabet=st.sampled_from(list("aZ09 :#-'\"\\?,[]{}!&*|>%@`.\n\t_/=é~")), max_size=12)
_SCALARS = st.one_of(
    _TEXT,
    st.sampled_from(SHARP_EDGES),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)
_DOCS = st.dictionaries(
    st.one_of(_TEXT, st.sampled_from(SHARP_EDGES)),
    st.recursive(
        _SCALARS,
        lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(_TEXT, children, max_size=4)),
        max_leaves=12,
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=400, deadline=None)
@given(_DOCS)
def test_random_documents_are_written_as_pyyaml_writes_them(doc: dict[str, Any]) -> None:
    fast = _FastDocument.write(doc)
    if fast is not None:
        assert fast == _pyyaml_document(doc)
    assert dump_yaml([doc]).decode() == _pyyaml_document(doc)
