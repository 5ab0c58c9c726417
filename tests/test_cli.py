"""The `mlc` CLI: exit codes, messages, fast start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mlc.compiler import __version__
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


def test_usage_error_exits_two() -> None:
    code, _, err = run_mlc("validate", "--no-such-flag")
    assert code == 2 and "No such option" in err


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
