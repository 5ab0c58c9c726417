"""Property tests: no input makes the loader or validator crash.

Random YAML documents and random mutations of the reference spec must end in either a valid
result or positioned diagnostics: never an exception.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlc.compiler.load.document import parse_spec_text
from mlc.compiler.validate.project import validate_document
from spec_fixtures import REPO_ROOT

REFERENCE = REPO_ROOT.parent / "shared" / "design" / "mlproject.reference.yaml"
SEED_TEXT = (
    REFERENCE.read_text() if REFERENCE.is_file() else (REPO_ROOT / "examples" / "churn" / "mlproject.yaml").read_text()
)
POSITIONED = re.compile(r"^mlproject\.yaml:\d+:\d+: (error|warning): ")

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(["yes", "on", "0755", "1:20", "16GB", "mlc/v1", "MLProject", "*/5 * * * *", "../x", "/abs"]),
)
keys = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["apiVersion", "kind", "metadata", "train", "serve", "data", "environments", "secrets", "on"]),
)
documents = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5), max_leaves=25
)


def check(text: str, root: Path | None = None) -> None:
    doc, diagnostics = parse_spec_text(text)
    if doc is not None:
        _, diagnostics = validate_document(doc, root)
    for d in diagnostics:
        assert POSITIONED.match(d.render()), d.render()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_random_documents_never_crash(document: object) -> None:
    check(yaml.safe_dump(document, allow_unicode=True))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_random_text_never_crashes(text: str) -> None:
    check(text)


_LINES = SEED_TEXT.splitlines(keepends=True)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(_LINES) - 1),
            st.sampled_from(["delete", "duplicate", "replace", "indent", "dedent"]),
            scalars,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_mutations_of_the_reference_never_crash(mutations: list[tuple[int, str, object]]) -> None:
    lines = list(_LINES)
    for index, action, value in mutations:
        index %= len(lines)
        line = lines[index]
        if action == "delete":
            del lines[index]
        elif action == "duplicate":
            lines.insert(index, line)
        elif action == "indent":
            lines[index] = "  " + line
        elif action == "dedent":
            lines[index] = line[2:] if line.startswith("  ") else line
        elif ":" in line:
            key = line.split(":", 1)[0]
            lines[index] = (
                f"{key}: {yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}\n"
            )
        if not lines:
            lines = ["a: 1\n"]
    check("".join(lines))
