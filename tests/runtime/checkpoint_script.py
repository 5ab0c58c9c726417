"""A child process that uses a checkpoint store as training does: object stores' clients read
their endpoint and credentials once a process, so each store test runs it with its own env."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

LINEAGE = "churn-dev-0123456789ab"

SCRIPT = f"""
import json, sys
from mlc.runtime.checkpoints import open_checkpoint_store
from mlc.runtime.datasets import DataError

store = open_checkpoint_store(sys.argv[1], {LINEAGE!r})
try:
    if sys.argv[2] == "save":
        store.save({{"epoch": 3}})
        store.save_run_id("run-1")
        print("saved")
    elif sys.argv[2] == "load":
        print(json.dumps({{"state": store.load(), "run": store.load_run_id()}}))
    else:
        store.clear()
        print("cleared")
except DataError as error:
    print(error)
"""


def checkpoint_script(folder: Path) -> Callable[[str, str, dict[str, str]], str]:
    """run(uri, action, env) -> what one process printed: "saved", the loaded state and run id
    as JSON, "cleared", or the one-line DataError of the action (save, load or clear)."""
    script = folder / "checkpoints.py"
    script.write_text(SCRIPT)

    def run(uri: str, action: str, env: dict[str, str]) -> str:
        done = subprocess.run(
            [sys.executable, str(script), uri, action], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr  # a DataError is printed; anything else is a traceback
        return done.stdout.strip()

    return run
