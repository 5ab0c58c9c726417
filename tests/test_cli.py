"""The `mlc` CLI: exit codes, messages, fast start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlc.compiler import __version__
from mlc.compiler.errors import ExitCode
from spec_fixtures import REPO_ROOT, run_mlc
from test_validate import BASE


def test_version() -> None:
    code, out, _ = run_mlc("--version")
    assert (code, out) == (0, f"mlc {__version__}\n")


def test_validate_ok_and_exit_zero(project) -> None:
    spec = project(BASE)
    code, out, err = run_mlc("validate", "-f", str(spec))
    assert code == 0 and out.endswith("valid (1 environment: default)\n") and err == ""


def test_validate_invalid_exits_one_with_positions(project) -> None:
    spec = project(BASE + "trian: {}\n")
    code, _, err = run_mlc("validate", cwd=spec.parent)
    assert code == 1
    assert err.splitlines() == [
        "mlproject.yaml:12:1: error: trian: unknown key 'trian'; did you mean 'train'?",
        "1 error",
    ]


def test_a_usage_error_has_a_code_no_command_uses_for_success() -> None:
    """2 is `plan --detailed-exitcode`'s "changes" and `bot`'s "pushed": a broken call must not
    read as either (the generated bot step maps 2 to a pushed commit)."""
    for args in (["validate", "--no-such-flag"], ["bot", "--no-such-flag"], ["plan", "--format", "yaml"], ["nope"]):
        code, _, err = run_mlc(*args)
        assert code == ExitCode.USAGE == 64, (args, code, err)
        assert "Error:" in err and "Traceback" not in err


def test_missing_spec_is_a_clean_error(tmp_path: Path) -> None:
    code, _, err = run_mlc("validate", cwd=tmp_path)
    assert code == 1 and "mlproject.yaml: no such file" in err and "Traceback" not in err


def test_directory_of_specs(tmp_path: Path) -> None:
    code, out, _ = run_mlc("validate", "-f", str(REPO_ROOT / "examples"))
    assert code == 0
    assert out.count("valid (") == len(list((REPO_ROOT / "examples").glob("*/mlproject.yaml")))


def test_schema_matches_committed_file() -> None:
    code, out, _ = run_mlc("schema")
    assert code == 0
    assert out == (REPO_ROOT / "schemas" / "mlproject.schema.json").read_text(), "run `make schema`"
    assert json.loads(out)["$schema"].startswith("https://json-schema.org/")


def test_init_then_validate(tmp_path: Path) -> None:
    target = tmp_path / "My Project"
    target.mkdir()
    code, out, _ = run_mlc("init", str(target))
    assert code == 0 and "created" in out
    assert (target / "mlproject.yaml").read_text().startswith("# yaml-language-server: $schema=mlproject.schema.json")
    code, out, err = run_mlc("validate", "-f", str(target / "mlproject.yaml"))
    assert code == 0, err
    code, _, err = run_mlc("init", str(target))
    assert code == 1 and "already exists" in err


def test_importing_the_cli_imports_nothing_heavy() -> None:
    probe = (
        "import sys; import mlc.compiler.cli; "
        "heavy = {'pydantic', 'torch', 'mlflow', 'scipy', 'kubernetes', 'git', 'yaml', 'jinja2'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_validate_imports_no_runtime_or_cluster_libraries(project) -> None:
    spec = project(BASE)
    probe = (
        "import sys\nfrom mlc.compiler.cli import main\n"
        "try:\n    main(['validate', '-f', sys.argv[1]])\nexcept SystemExit:\n    pass\n"
        "print(sorted({'torch', 'mlflow', 'scipy', 'kubernetes', 'git', 'numpy'} & set(sys.modules)), file=sys.stderr)"
    )
    err = subprocess.run([sys.executable, "-c", probe, str(spec)], capture_output=True, text=True).stderr
    assert err.strip().endswith("[]")


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_scaffolded_and_generated_files_follow_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    """A file mlc writes is a plain file, as an editor would make it: a COPY of it into the
    non-root image stays readable (mkstemp alone would make every one 0600)."""
    previous = os.umask(umask)
    try:
        code, _, err = run_mlc("init", str(tmp_path), "--name", "demo")
        assert code == 0, err
        code, _, err = run_mlc("apply", "-f", str(tmp_path / "mlproject.yaml"))
        assert code == 0, err
    finally:
        os.umask(previous)
    written = [tmp_path / "mlproject.yaml", tmp_path / "src" / "demo" / "model.py", tmp_path / "mlc.lock"]
    written += [p for p in (tmp_path / "deploy").rglob("*") if p.is_file()]
    assert {oct(p.stat().st_mode & 0o777) for p in written} == {oct(mode)}
