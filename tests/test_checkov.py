"""checkov over the compiled tree of the examples: every finding is explained, nothing else.

Each example is copied and applied (`mlc apply`), then checkov scans the Kubernetes manifests,
Dockerfiles and GitHub workflows. Every failed check must match an entry of
`security/checkov-baseline.yaml` (check id + resource pattern, with its reason), and every entry
must still match a finding (a fixed finding leaves a stale entry behind: remove it).

checkov pins dependencies that would downgrade the dev environment's (boto3, packaging), so it
lives in its own virtual environment: `.venv-checkov` (what `.ci/run` installs), `$MLC_CHECKOV`,
or `checkov` on PATH.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mlc.compiler.cli import main
from spec_fixtures import REPO_ROOT

BASELINE = REPO_ROOT / "security" / "checkov-baseline.yaml"
EXAMPLES = ("churn", "llm-chat")


def checkov() -> str | None:
    for candidate in (os.environ.get("MLC_CHECKOV"), str(REPO_ROOT / ".venv-checkov" / "bin" / "checkov")):
        if candidate and Path(candidate).is_file():
            return candidate
    return shutil.which("checkov")


def compiled_examples(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in EXAMPLES:
        project = root / name
        shutil.copytree(REPO_ROOT / "examples" / name, project, ignore=shutil.ignore_patterns(".mlc", "mlc.lock"))
        monkeypatch.chdir(project)
        result = CliRunner().invoke(main, ["apply", "--force"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    return root


def findings(tool: str, tree: Path) -> list[tuple[str, str, str]]:
    """(check id, resource, file) of every failed check."""
    run = subprocess.run(
        [tool, "-d", str(tree), "--framework", "kubernetes", "dockerfile", "github_actions", "-o", "json", "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode in (0, 1), run.stderr[-2000:]
    reports = json.loads(run.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert {report["check_type"] for report in reports} >= {"kubernetes", "dockerfile"}, run.stdout[:500]
    return [
        (failed["check_id"], failed["resource"], failed["file_path"])
        for report in reports
        for failed in report["results"]["failed_checks"]
    ]


def test_every_checkov_finding_on_the_compiled_examples_is_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool = checkov()
    if tool is None:
        pytest.skip("checkov not installed: .ci/run puts it in .venv-checkov (or set MLC_CHECKOV)")
    baseline = yaml.safe_load(BASELINE.read_text())
    assert all(entry["reason"].strip() and entry["resources"] for entry in baseline.values())
    found = findings(tool, compiled_examples(tmp_path, monkeypatch))
    assert found, "checkov reported nothing at all: did it scan the tree?"
    unexplained = [
        finding
        for finding in found
        if not any(re.search(pattern, finding[1]) for pattern in baseline.get(finding[0], {}).get("resources", []))
    ]
    assert unexplained == [], "explain or fix these in security/checkov-baseline.yaml:\n" + "\n".join(
        map(str, unexplained)
    )
    stale = sorted(set(baseline) - {check for check, _, _ in found})
    assert stale == [], f"no longer found, remove from the baseline: {stale}"
