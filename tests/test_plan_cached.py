"""Planning an applied, unchanged spec answers from the validation cache and the lock.

Such a plan loads neither the validator (pydantic, PyYAML) nor a backend (Jinja2): it costs what
a cached `mlc validate` does. Anything that could change the answer (a hand edit, a deleted
file, an edited spec, requirements or images lock) plans the spec in full, with the same
output as a plan run without the cache.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import git
import pytest

from spec_fixtures import run_mlc
from test_validate import BASE

HEAVY = ("pydantic", "pydantic_core", "yaml", "jinja2", "git")
PROBE = (
    "import sys\n"
    "from mlc.compiler.cli import main\n"
    "try:\n    main(['plan', '-f', sys.argv[1]])\nexcept SystemExit as exit:\n    code = exit.code\n"
    f"print(code, sorted({set(HEAVY)!r} & set(sys.modules)), file=sys.stderr)\n"
)


@pytest.fixture
def applied(project) -> Path:
    """A spec in its own git repository, applied and committed."""
    spec = project(BASE + "serve: {}\n")
    (spec.parent / "data").mkdir()
    repo = git.Repo.init(spec.parent)
    repo.git.add(A=True)
    repo.git.commit(
        "-m",
        "init",
        env={
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t",
        },
    )
    # The runtime wheel first: an apply that writes it changes what validation read, so the
    # plan after that one apply validates once more (then is cached again).
    code, _, err = run_mlc("vendor", "-f", str(spec))
    assert code == 0, err
    code, _, err = run_mlc("apply", "-f", str(spec))
    assert code == 0, err
    return spec


def plan_in_a_process(spec: Path) -> tuple[str, list[str]]:
    """`mlc plan` in a fresh interpreter: its output and the heavy modules it imported."""
    done = subprocess.run([sys.executable, "-c", PROBE, str(spec)], capture_output=True, text=True, check=True)
    code, modules = done.stderr.splitlines()[-1].split(" ", 1)
    assert code == "0", done.stderr
    return done.stdout, eval(modules)  # a printed sorted list of names


def plan_without_cache(spec: Path, monkeypatch: pytest.MonkeyPatch, *flags: str) -> tuple[int, str, str]:
    with monkeypatch.context() as patch:
        patch.setenv("MLC_NO_CACHE", "1")
        return run_mlc("plan", "-f", str(spec), *flags)


def test_an_applied_unchanged_spec_is_planned_without_the_validator_or_a_backend(applied: Path) -> None:
    output, heavy = plan_in_a_process(applied)
    assert "No changes" in output
    assert heavy == []


def test_the_cached_plan_is_the_plan(applied: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = run_mlc("plan", "-f", str(applied), "--format", "json")
    assert cached == plan_without_cache(applied, monkeypatch, "--format", "json")


def _hand_edit(spec: Path) -> None:
    dockerfile = spec.parent / "deploy" / "docker" / "train.Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "# edited by hand\n")


def _delete_generated(spec: Path) -> None:
    (spec.parent / "deploy" / "docker" / "serve.Dockerfile").unlink()


def _edit_spec(spec: Path) -> None:
    spec.write_text(spec.read_text().replace("serve: {}", "serve: {port: 9090}"))


def _edit_requirements(spec: Path) -> None:
    (spec.parent / "requirements.lock").write_text("numpy==2.0.0 --hash=sha256:" + "a" * 64 + "\n")


def _add_images_lock(spec: Path) -> None:
    lock = {"format_version": 1, "images": {"python:3.11-slim-bookworm": "sha256:" + "b" * 64}}
    (spec.parent / "mlc.images.lock").write_text(json.dumps(lock))


@pytest.mark.parametrize(
    "change",
    [_hand_edit, _delete_generated, _edit_spec, _edit_requirements, _add_images_lock],
    ids=lambda change: change.__name__.strip("_"),
)
def test_any_change_plans_in_full_and_shows_it(change, applied: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_mlc("plan", "-f", str(applied))  # warm: the cached path is taken first
    change(applied)
    cached = run_mlc("plan", "-f", str(applied))
    assert cached == plan_without_cache(applied, monkeypatch)
    assert "No changes" not in cached[1], cached


def test_a_spec_whose_runtime_wheel_is_missing_plans_the_same_from_the_cache(
    project, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = project(BASE + "serve: {}\n")
    (spec.parent / "data").mkdir()
    git.Repo.init(spec.parent)
    fresh = run_mlc("plan", "-f", str(spec), "--format", "json")  # validates, stores the record
    cached = run_mlc("plan", "-f", str(spec), "--format", "json")  # the record: the wheel is missing
    assert fresh == cached == plan_without_cache(spec, monkeypatch, "--format", "json")
    changes = {c["path"]: c["action"] for c in json.loads(cached[1])["plans"][0]["changes"]}
    assert changes["wheels/mlc-0.1.0-py3-none-any.whl"] == "create"
    assert not (spec.parent / "wheels").exists()  # planning writes nothing
