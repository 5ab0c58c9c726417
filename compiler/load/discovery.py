"""Which files are specs: `-f` arguments to spec paths (directories searched for mlproject.yaml).

Standard library only, apart from the pipeline: `mlc validate` answers from the validation cache
without importing pydantic or PyYAML, and it finds its specs here first.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

SPEC_FILENAME = "mlproject.yaml"
_SKIPPED_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".mlc", ".tox"}


def discover_specs(paths: Iterable[Path]) -> list[Path]:
    """Spec files named by `paths`: files as given, directories searched for mlproject.yaml."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.rglob(SPEC_FILENAME)
                    if not _SKIPPED_DIRS.intersection(p.relative_to(path).parts[:-1])
                )
            )
        else:
            found.append(path)
    return list(dict.fromkeys(found))
