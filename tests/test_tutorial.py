"""docs/tutorial.md, run as a reader follows it: from `mlc init` on a scikit-learn dataset to a
trained, gated, served, drift-checked and batch-scored model, with no edit but the data (and the
batch lines it uncomments). Each command's output must be the one the page shows
(`tests/doc_session.py` says how volatile values compare); `MLC_UPDATE_GOLDEN=1` rewrites the
page's outputs from this run."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from doc_session import matches, normalized, read_steps, rewrite_outputs, run_session

TUTORIAL = Path(__file__).resolve().parent.parent / "docs" / "tutorial.md"
UPDATE = os.environ.get("MLC_UPDATE_GOLDEN") == "1"
SHOWN_PORT = "8080"


def free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


@pytest.mark.slow
def test_the_tutorial_runs_as_written(tmp_path: Path) -> None:
    markdown = TUTORIAL.read_text()
    steps = read_steps(markdown)
    commands = [step.command for step in steps if step.command is not None]
    assert len(commands) > 20 and any(c.text == "mlc run serve --port 8080 > .mlc/serve.log 2>&1 &" for c in commands)
    # The page shows port 8080; the test serves on a free one (other tests, other users).
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GIT_AUTHOR_NAME": "Tutorial Reader",
        "GIT_AUTHOR_EMAIL": "reader@example.com",
        "GIT_COMMITTER_NAME": "Tutorial Reader",
        "GIT_COMMITTER_EMAIL": "reader@example.com",
        "COLUMNS": "100",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    outputs = run_session(steps, tmp_path, env, timeout=900, substitute=lambda text: text.replace(SHOWN_PORT, port))
    if UPDATE:
        TUTORIAL.write_text(rewrite_outputs(markdown, steps, outputs))
        return
    mismatched = [
        f"$ {command.text}\n--- the page shows:\n{normalized(command.shown)}\n--- the run printed:\n{normalized(real)}"
        for command, real in zip(commands, outputs, strict=True)
        if not matches(command.shown, real)
    ]
    assert not mismatched, "\n\n".join(mismatched) + "\n(MLC_UPDATE_GOLDEN=1 rewrites the page from a run)"
