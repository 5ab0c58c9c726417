"""The files around a spec as validation saw them: every question asked of the filesystem, answered.

Validation reads more than the spec. `project_files` resolves the realpath of every local path
the spec names (confinement), asks whether the requirements lock is a file and `code.source` a
directory, finds the train module and reads the lock's text; the pipeline reads
`mlc.images.lock`. They all ask through one `FileProbes`, which answers from the filesystem and
remembers each answer. That gives two things:

- one validation sees one answer per question (a file edited mid-run is read once, not twice
  with different contents);
- the validation cache (`validate.cache`) can record exactly which facts an outcome depended on (`probes()`) and
  later ask the same questions again (`unchanged`): when every answer is the same, validating
  the same spec with the same compiler would take the same path and print the same output.

Paths are recorded as validation spelled them (relative when the spec was named relatively), so
asking again from the same working directory asks the very same question.

Standard library only: the validation cache imports this on its hit path, without pydantic.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable

# One recorded fact: (kind, path, answer). Kinds: "realpath" (str), "exists", "is_file" and
# "is_dir" (bool), "sha256" (hex of the file's bytes, or None when it cannot be read).
Probe = tuple[str, str, str | bool | None]

PathLike = str | os.PathLike[str]


def _sha256(path: str) -> str | None:
    contents = _read(path)
    return None if contents is None else hashlib.sha256(contents).hexdigest()


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


_ASK: dict[str, Callable[[str], str | bool | None]] = {
    "realpath": os.path.realpath,
    "exists": os.path.exists,
    "is_file": os.path.isfile,
    "is_dir": os.path.isdir,
    "sha256": _sha256,
}


class FileProbes:
    """Read-only questions about files; each answered once from the filesystem and recorded."""

    def __init__(self) -> None:
        self._answers: dict[tuple[str, str], str | bool | None] = {}
        self._contents: dict[str, bytes | None] = {}

    def realpath(self, path: PathLike) -> str:
        """`os.path.realpath`: the path with every symlink resolved."""
        return str(self._ask("realpath", os.fspath(path)))

    def exists(self, path: PathLike) -> bool:
        """True when something is at `path` (after symlinks)."""
        return bool(self._ask("exists", os.fspath(path)))

    def is_file(self, path: PathLike) -> bool:
        """True when `path` is a regular file (after symlinks); False when missing or unreadable."""
        return bool(self._ask("is_file", os.fspath(path)))

    def is_dir(self, path: PathLike) -> bool:
        """True when `path` is a directory (after symlinks)."""
        return bool(self._ask("is_dir", os.fspath(path)))

    def read_bytes(self, path: PathLike) -> bytes | None:
        """The file's bytes, or None when it cannot be read (missing, a directory, no permission)."""
        name = os.fspath(path)
        if name not in self._contents:
            contents = _read(name)
            self._contents[name] = contents
            self._answers[("sha256", name)] = None if contents is None else hashlib.sha256(contents).hexdigest()
        return self._contents[name]

    def sha256(self, path: PathLike) -> str | None:
        """sha256 hex of the file's bytes (without keeping them), or None when it cannot be read."""
        answer = self._ask("sha256", os.fspath(path))
        return answer if isinstance(answer, str) else None

    def probes(self) -> list[Probe]:
        """Every question asked so far and its answer, in the order first asked."""
        return [(kind, path, answer) for (kind, path), answer in self._answers.items()]

    def _ask(self, kind: str, path: str) -> str | bool | None:
        key = (kind, path)
        if key not in self._answers:
            self._answers[key] = _ASK[kind](path)
        return self._answers[key]


def unchanged(probes: Iterable[Probe]) -> bool:
    """True when asking every recorded question again gives the recorded answer."""
    for kind, path, answer in probes:
        ask = _ASK.get(kind)
        if ask is None or ask(path) != answer:
            return False
    return True
