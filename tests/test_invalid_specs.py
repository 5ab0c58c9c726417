"""The invalid-spec corpus: each case names the exact diagnostics it must produce.

A case is `cases/invalid/<name>.yaml`; its trailing `# expect: FILE:LINE:COL: ...` lines are the
complete, ordered first lines of the expected diagnostics (hints are not compared).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlc.compiler.pipeline import resolve_spec_file
from spec_fixtures import make_project

CASES = sorted((Path(__file__).parent / "cases" / "invalid").glob("*.yaml"))
EXPECT = "# expect: "


def split_case(text: str) -> tuple[str, list[str]]:
    """The spec text (expectation lines removed) and the expected diagnostic lines."""
    lines = text.splitlines(keepends=True)
    spec = "".join(line for line in lines if not line.startswith(EXPECT))
    expected = [line[len(EXPECT) :].rstrip("\n") for line in lines if line.startswith(EXPECT)]
    return spec, expected


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_invalid_spec_reports_exact_diagnostics(case: Path, tmp_path: Path) -> None:
    spec_text, expected = split_case(case.read_text())
    assert expected, f"{case.name} has no '# expect:' line"
    spec = make_project(tmp_path, spec_text)
    result = resolve_spec_file(spec, "mlproject.yaml")
    assert not result.ok
    assert [d.render().splitlines()[0] for d in result.diagnostics] == expected
