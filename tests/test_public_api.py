"""`mlc.compiler`'s public API, used as a notebook or another tool would use it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import git
import pytest

import mlc.compiler as mlc
from test_validate import BASE


def test_every_public_name_resolves_and_is_documented() -> None:
    for name in mlc.__all__:
        value = getattr(mlc, name)
        if name != "__version__":
            assert (value.__doc__ or "").strip(), f"{name} has no docstring"


def test_importing_the_package_loads_no_stage() -> None:
    probe = "import sys, mlc.compiler; print(sorted(m for m in sys.modules if m.startswith(('pydantic', 'yaml'))))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'compile'"):
        mlc.compile  # noqa: B018


def test_validate_compile_plan_apply_end_to_end(project) -> None:
    spec = project(BASE + "serve: {}\n")
    (spec.parent / "data").mkdir()
    git.Repo.init(spec.parent)

    result = mlc.validate_spec(spec)
    assert result.ok and [r.environment for r in result.resolved] == ["default"]
    assert isinstance(result.resolved[0], mlc.ResolvedSpec)

    run = mlc.plan_specs([spec.parent])
    assert run.ok
    actions = {change.action for plan in run.plans for change in plan.changes}
    assert actions == {mlc.Action.CREATE}
    written = {path for path in (spec.parent / "deploy").rglob("*") if path.is_file()}
    assert written == set()  # planning writes nothing

    outcome = mlc.apply_plans(run, commit=True)
    assert outcome.commit is not None
    # Compiling the applied tree (the runtime wheel apply wrote now there) gives what apply wrote.
    compiled = mlc.compile_spec(str(spec))
    assert compiled.ok and all(isinstance(a, mlc.Artifact) for a in compiled.artifacts)
    for artifact in compiled.artifacts:  # the spec sits at its repository's top: one root for all
        assert (spec.parent / artifact.path).read_bytes() == artifact.content
    again = mlc.plan_specs([spec])
    assert {change.action for plan in again.plans for change in plan.changes} == {mlc.Action.UNCHANGED}


def test_invalid_specs_are_results_and_hard_stops_are_mlc_errors(project) -> None:
    bad = project(BASE + "trian: {}\n")
    result = mlc.validate_spec(bad, display="mlproject.yaml")
    assert not result.ok
    assert [d.severity for d in result.diagnostics] == [mlc.Severity.ERROR]
    assert result.diagnostics[0].render().startswith("mlproject.yaml:12:1: error: trian: unknown key")

    with pytest.raises(mlc.MlcError, match="--image"):
        mlc.plan_specs([bad], images=["train=not-a-digest"])
    with pytest.raises(mlc.ApplyError, match="planning failed"):
        mlc.apply_plans(mlc.plan_specs([bad]))


def test_a_hand_edit_stops_apply_with_an_mlc_error(project) -> None:
    spec = project(BASE)
    (spec.parent / "data").mkdir()
    mlc.apply_plans(mlc.plan_specs([spec]))
    dockerfile = next(Path(spec.parent, "deploy", "docker").glob("train.Dockerfile"))
    dockerfile.write_text("# mine now\n")
    with pytest.raises(mlc.ApplyError, match="refusing to apply, nothing was changed"):
        mlc.apply_plans(mlc.plan_specs([spec]))
    assert dockerfile.read_text() == "# mine now\n"  # nothing lost
