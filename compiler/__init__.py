"""mlc.compiler: compile one mlproject.yaml into everything an ML model needs in production.

The public API (the `mlc` command line is a thin layer over it); everything else is internal::

    from mlc import compiler as mlc

    result = mlc.validate_spec("models/churn/mlproject.yaml")   # load, validate, resolve
    for problem in result.diagnostics:                           # every problem at once, positioned
        print(problem.render())
    compiled = mlc.compile_spec("models/churn/mlproject.yaml")  # every artifact, in memory
    run = mlc.plan_specs(["models/churn"])                       # what apply would change
    outcome = mlc.apply_plans(run, commit=True)                 # write it: atomic, mlc.lock last

An invalid spec is not an exception: results carry `diagnostics` and `ok`. What stops a step
outright (a hand-edited file apply would overwrite, an unreadable lock, a bad image pin) raises
an `MlcError`, the one base class of the compiler's errors.

Importing this package is cheap (the CLI reads `__version__` at start-up): the stages load when
an API function or type is first used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Action",
    "ApplyError",
    "ApplyOutcome",
    "Artifact",
    "Change",
    "CompiledProject",
    "Diagnostic",
    "MlcError",
    "Plan",
    "PlanRun",
    "ProjectResult",
    "ResolvedSpec",
    "Severity",
    "__version__",
    "apply_plans",
    "compile_spec",
    "plan_specs",
    "validate_spec",
]

if TYPE_CHECKING:
    from mlc.compiler.apply.specs import ApplyOutcome
    from mlc.compiler.apply.writer import ApplyError
    from mlc.compiler.artifact import Artifact
    from mlc.compiler.diagnostics import Diagnostic, Severity
    from mlc.compiler.errors import MlcError
    from mlc.compiler.pipeline import CompiledProject, ProjectResult
    from mlc.compiler.plan.changes import Action, Change, Plan
    from mlc.compiler.plan.specs import PlanRun
    from mlc.compiler.resolve.resolved import ResolvedSpec

# Public type -> the module that defines it (imported on first use, PEP 562).
_TYPES = {
    "Action": "mlc.compiler.plan.changes",
    "ApplyError": "mlc.compiler.apply.writer",
    "ApplyOutcome": "mlc.compiler.apply.specs",
    "Artifact": "mlc.compiler.artifact",
    "Change": "mlc.compiler.plan.changes",
    "CompiledProject": "mlc.compiler.pipeline",
    "Diagnostic": "mlc.compiler.diagnostics",
    "MlcError": "mlc.compiler.errors",
    "Plan": "mlc.compiler.plan.changes",
    "PlanRun": "mlc.compiler.plan.specs",
    "ProjectResult": "mlc.compiler.pipeline",
    "ResolvedSpec": "mlc.compiler.resolve.resolved",
    "Severity": "mlc.compiler.diagnostics",
}


def __getattr__(name: str) -> Any:
    if name in _TYPES:
        import importlib

        return getattr(importlib.import_module(_TYPES[name]), name)
    raise AttributeError(f"module 'mlc.compiler' has no attribute {name!r}")


def validate_spec(path: str | Path, display: str | None = None) -> ProjectResult:
    """Load, validate and resolve every environment of the spec at `path`.

    The result is `ok` with one `ResolvedSpec` per environment, or carries the diagnostics that
    say why not (`display` names the file in them; default: the path as given). Paths in the
    spec are relative to its folder.
    """
    from mlc.compiler.pipeline import resolve_spec_file

    return resolve_spec_file(Path(path), display)


def compile_spec(path: str | Path, display: str | None = None) -> CompiledProject:
    """Validate the spec at `path` and compile every artifact in memory (nothing is written).

    Artifact paths are relative to the spec's folder (`.github/...` to its git repository's top).
    """
    from mlc.compiler.pipeline import compile_spec_file

    return compile_spec_file(Path(path), display)


def plan_specs(
    paths: Iterable[str | Path],
    images: Iterable[str] = (),
    *,
    display: Callable[[Path], str] = str,
    cache: Path | None = None,
) -> PlanRun:
    """What `apply_plans` would change for each spec found at `paths` (files, or folders searched
    for mlproject.yaml), compared with the working tree and each spec's `mlc.lock`.

    `images` pins built images (`train=REPO@sha256:<64 hex>`, as `mlc apply --image`); a malformed
    one raises an `MlcError`. `cache` is a validation cache folder that lets an unchanged spec
    be planned without validating it again (default: none).
    """
    from mlc.compiler.load.discovery import discover_specs
    from mlc.compiler.plan.image_pins import parse_image_pin
    from mlc.compiler.plan.specs import plan_specs as plan_spec_paths

    pins = [parse_image_pin(text) for text in images]
    return plan_spec_paths(discover_specs([Path(p) for p in paths]), display, pins, cache)


def apply_plans(run: PlanRun, *, force: bool = False, commit: bool = False, message: str | None = None) -> ApplyOutcome:
    """Write a `plan_specs` run: each file atomically, pruning, `mlc.lock` last; with `commit`,
    commit exactly the generated paths. Raises `ApplyError` (an `MlcError`) on a conflict (a
    generated file edited by hand; `force` overwrites it) or when planning failed."""
    from mlc.compiler.apply.specs import apply_specs

    return apply_specs(run, force=force, commit=commit, message=message)
