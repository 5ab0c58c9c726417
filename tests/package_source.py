"""This checkout's package sources, copied: what `pip install <dir>` builds mlc from in a test."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def package_source_copy(target: Path) -> Path:
    """The package's sources in `target` (a new folder): building writes build/ and *.egg-info
    beside them, which must not land in the checkout."""
    target.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, target / name)
    for name in ("compiler", "runtime", "templates", "schemas"):
        shutil.copytree(REPO / name, target / name, ignore=shutil.ignore_patterns("__pycache__"))
    return target
