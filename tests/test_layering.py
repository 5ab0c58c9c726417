"""The shape of the code: data flows one way through the compiler's stages.

Read from the source with `ast` (every import, those inside functions too, since a lazy import
is a dependency all the same; only `if TYPE_CHECKING:` blocks are left out), so a violation
fails here before it becomes a cycle or a backend that knows another backend:

- the runtime never imports the compiler, and its contract imports nothing heavy;
- a stage never imports a later stage (load < validate < resolve < backends < plan < apply < cli);
- a backend never imports another backend, nor the spec models or the compatibility tables
  (what it needs is derived in resolve).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = {"mlc.compiler": REPO / "compiler", "mlc.runtime": REPO / "runtime"}

# The pipeline's order: a module may import modules of its own level or an earlier one.
LEVELS = {
    "mlc.compiler.errors": 0,
    "mlc.compiler.diagnostics": 0,
    "mlc.compiler.artifact": 0,
    "mlc.compiler.fingerprint": 0,
    "mlc.compiler.load": 1,
    "mlc.compiler.output_tree": 1,
    "mlc.compiler.compat": 2,
    "mlc.compiler.validate": 2,
    "mlc.compiler.resolve": 3,
    "mlc.compiler.backends": 4,
    "mlc.compiler.pipeline": 5,
    "mlc.compiler.plan": 6,
    "mlc.compiler.apply": 7,
    "mlc.compiler.cli": 8,
}
# The package itself (`mlc.compiler`): the public API, which re-exports from every stage.
PUBLIC_API = "mlc.compiler"
SHARED_BACKEND_MODULES = {
    "mlc.compiler.backends",
    "mlc.compiler.backends.yaml_writer",
    "mlc.compiler.backends.templating",
}
CONTRACT_ALLOWED = {"mlc.runtime.contract", "mlc.runtime.errors", "pydantic", "__future__"}


def _module_name(path: Path) -> str:
    for package, root in ROOTS.items():
        if path.is_relative_to(root):
            parts = path.relative_to(root).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            return ".".join((package, *parts))
    raise ValueError(path)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str) -> Iterator[str]:
    """Every module `module` imports at run time (absolute names)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (name for child in node.orelse for name in _imports(child, module))
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing package
                package = module.split(".")[: -node.level] if not module.endswith("__init__") else module.split(".")
                base = ".".join([*package, base]) if base else ".".join(package)
            yield base
            # `from mlc.compiler import backends` imports the submodule `mlc.compiler.backends`.
            yield from (f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        yield from _imports(node, module)


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for root in ROOTS.values():
        for path in sorted(root.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            module = _module_name(path)
            names = set(_imports(ast.parse(path.read_text(encoding="utf-8")), module))
            graph[module] = {name for name in names if name.startswith(("mlc.", "__future__")) or "." not in name}
            graph[module] |= {name.split(".")[0] for name in names}
    return graph


def _existing(graph: dict[str, set[str]], name: str) -> str | None:
    """The module `name` refers to (a `from X import y` yields `X.y`, which may be an attribute)."""
    return name if name in graph else None


def _level(module: str) -> int | None:
    best = max(
        (prefix for prefix in LEVELS if module == prefix or module.startswith(prefix + ".")), key=len, default=None
    )
    return LEVELS[best] if best is not None else None


GRAPH = _graph()


def test_the_graph_covers_every_module() -> None:
    compiler_modules = [m for m in GRAPH if m.startswith("mlc.compiler.")]
    assert len(compiler_modules) > 40
    unplaced = [m for m in compiler_modules if _level(m) is None]
    assert unplaced == [], f"give these a stage in LEVELS: {unplaced}"


def test_the_runtime_never_imports_the_compiler() -> None:
    offenders = {
        module: sorted(n for n in names if n.startswith("mlc.compiler"))
        for module, names in GRAPH.items()
        if module.startswith("mlc.runtime")
    }
    assert {m: n for m, n in offenders.items() if n} == {}


def test_the_contract_imports_nothing_heavy() -> None:
    for module in ("mlc.runtime.contract", "mlc.runtime.contract.config", "mlc.runtime.errors"):
        third_party = {
            name
            for name in GRAPH[module]
            if not name.startswith("mlc.") and name.split(".")[0] not in sys.stdlib_module_names and name != "mlc"
        }
        assert third_party <= {"pydantic"}, (module, third_party)
        mlc = {name for name in GRAPH[module] if name.startswith("mlc.") and _existing(GRAPH, name)}
        assert all(name.startswith(("mlc.runtime.contract", "mlc.runtime.errors")) for name in mlc), (module, mlc)


def test_no_stage_imports_a_later_stage() -> None:
    violations = []
    for module, names in GRAPH.items():
        level = _level(module)
        if level is None or module == PUBLIC_API:
            continue
        for name in names:
            target = _existing(GRAPH, name)
            if target is None or target == PUBLIC_API:
                continue
            target_level = _level(target)
            if target_level is not None and target_level > level:
                violations.append(f"{module} (level {level}) imports {target} (level {target_level})")
    assert violations == []


def test_no_backend_imports_another_backend_the_spec_models_or_the_tables() -> None:
    violations = []
    for module, names in GRAPH.items():
        if not module.startswith("mlc.compiler.backends.") or module in SHARED_BACKEND_MODULES:
            continue
        own = ".".join(module.split(".")[:4])  # mlc.compiler.backends.<name>
        for name in names:
            target = _existing(GRAPH, name)
            if target is None:
                continue
            foreign = not target.startswith(own) and target not in SHARED_BACKEND_MODULES
            if target.startswith("mlc.compiler.backends.") and foreign:
                violations.append(f"{module} imports another backend: {target}")
            if target.startswith(("mlc.compiler.load.spec", "mlc.compiler.compat", "mlc.compiler.validate")):
                violations.append(f"{module} imports {target}: read it from the resolved spec")
    assert violations == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from mlc.compiler.plan import changes\n", {"mlc.compiler.plan", "mlc.compiler.plan.changes"}),
        ("def f():\n    import mlc.compiler.cli\n", {"mlc.compiler.cli"}),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import mlc.compiler.cli\n", set()),
    ],
)
def test_imports_are_read_from_functions_and_not_from_type_checking_blocks(source: str, expected: set[str]) -> None:
    found = {name for name in _imports(ast.parse(source), "mlc.compiler.x") if name.startswith("mlc.")}
    assert found == expected
