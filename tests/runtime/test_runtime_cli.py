"""`mlc-runtime` itself: what it says about its version."""

from __future__ import annotations

import subprocess
from importlib.metadata import version

from served_project import RUNTIME_CLI

from mlc.runtime.contract import FORMAT_VERSION


def test_version_names_the_release_and_the_config_format_it_reads() -> None:
    for flag in ("--version", "-V"):
        done = subprocess.run([*RUNTIME_CLI, flag], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"mlc-runtime {version('mlc')} (reads runtime config format_version {FORMAT_VERSION})\n"
