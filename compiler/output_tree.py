"""Where generated files live on disk, and reading what is there now (plan's input edge).

Artifact paths are POSIX and relative to the spec's directory (the output root). One exception:
`.github/...` paths (workflows) belong at the git repository's top level, because GitHub only
reads workflows there; when the spec sits in a subfolder of a monorepo they are placed at
`<repo top>/.github/...`. Everything stays confined: no path may leave its root, and no
directory on the way (below the root) may be a symbolic link, so a link can never redirect a
write outside the repository. A generated file that is itself a link is reported as a
conflict by the plan, and `--force` replaces the link (never its target).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mlc.compiler.errors import MlcError
from mlc.compiler.load.file_probes import FileProbes

REPO_LEVEL_PREFIX = ".github/"
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)  # not on Windows: checked with is_symlink there
TEMP_SUFFIX = ".mlc-tmp"  # `.<name>.<random>.mlc-tmp`: a write in progress (or killed)


class UnsafePathError(MlcError):
    """A generated path would be read or written through a symbolic link or outside its root."""


@dataclass(frozen=True)
class OutputTree:
    """The output root of one spec, and the repository top level for repo-level paths."""

    root: Path  # the spec's directory, resolved
    repo_root: Path  # the git top level containing it (the root itself outside git)

    def locate(self, path: str) -> Path:
        """The disk path of an artifact path."""
        base = self.repo_root if path.startswith(REPO_LEVEL_PREFIX) else self.root
        return base.joinpath(*PurePosixPath(path).parts)

    def base_of(self, path: str) -> Path:
        """The root a path is confined to."""
        return self.repo_root if path.startswith(REPO_LEVEL_PREFIX) else self.root

    @property
    def folder(self) -> str:
        """The output root relative to the repository top: POSIX, "." at the top (and outside
        git). Compiling takes it as an input (`ResolvedSpec.repository_folder`): the CI
        workflows, read at the top, run there."""
        return PurePosixPath(*self.root.relative_to(self.repo_root).parts).as_posix()


@dataclass(frozen=True)
class DiskFile:
    """What is at a generated path now: its bytes and their sha256, or whether it is a link."""

    content: bytes | None  # None: absent (or a link)
    is_link: bool = False

    @functools.cached_property
    def sha(self) -> str | None:
        """sha256 hex of `content` (None when absent), computed once."""
        return hashlib.sha256(self.content).hexdigest() if self.content is not None else None


def output_tree_for(spec_path: Path, files: FileProbes | None = None) -> OutputTree:
    """The output tree of a spec: its directory, and the git top level above it if any
    (asked through `files` when validation records what it read, see `file_probes`)."""
    files = files if files is not None else FileProbes()
    root = Path(files.realpath(spec_path)).parent
    for candidate in (root, *root.parents):
        if files.exists(candidate / ".git"):
            return OutputTree(root, candidate)
    return OutputTree(root, root)


def check_confined(tree: OutputTree, path: str, checked: set[str] | None = None) -> Path:
    """The disk path of `path`, after checking no directory below its root is a link
    (`checked`: directories already found not to be links, shared across calls)."""
    # Plain strings, not Path objects: plan runs this for every file of every spec.
    current = str(tree.base_of(path))
    for part in PurePosixPath(path).parts[:-1]:
        current = os.path.join(current, part)
        if checked is not None:
            if current in checked:
                continue
            checked.add(current)
        if os.path.islink(current):
            raise UnsafePathError(
                f"{tree.locate(path)}: {current} is a symbolic link; mlc does not write through links "
                "(replace it with a directory)"
            )
    return tree.locate(path)


def read_disk_files(tree: OutputTree, paths: Iterable[str]) -> dict[str, DiskFile]:
    """What is on disk at each path (confinement checked); missing files read as absent."""
    found: dict[str, DiskFile] = {}
    checked: set[str] = set()
    for path in paths:
        found[path] = _read_file(check_confined(tree, path, checked))
    return found


def _read_file(target: Path) -> DiskFile:
    # O_NOFOLLOW: a link fails to open (ELOOP) instead of being read through, in one syscall.
    if not _NO_FOLLOW and target.is_symlink():
        return DiskFile(None, is_link=True)
    try:
        fd = os.open(target, os.O_RDONLY | _NO_FOLLOW)
    except (FileNotFoundError, NotADirectoryError):
        return DiskFile(None)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return DiskFile(None, is_link=True)
        raise
    try:
        with os.fdopen(fd, "rb") as handle:
            return DiskFile(handle.read())
    except IsADirectoryError:
        raise UnsafePathError(f"{target}: is a directory, where mlc generates a file") from None


def relative_to_cwd(path: Path) -> str:
    """How a disk path is shown: relative to the working directory when that is shorter."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return relative if not relative.startswith("../../") else str(path)


def new_file_mode() -> int:
    """The mode a plain new file gets here (0o666 less the umask): what an editor would create.

    Never mkstemp's 0600: the files are committed and COPY'd into images whose non-root user
    must read them.
    """
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_atomically(target: Path, content: bytes) -> None:
    """Write `content` to `target` so that it holds the old bytes or the new, never a part:
    a temp file in the same directory, fsync, `os.replace`, fsync of the directory."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, new_file_mode())  # mkstemp creates 0600; a written file is a plain one
        os.replace(temp, target)  # replaces a link itself, never its target
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    fsync_directory(target.parent)


def fsync_directory(directory: Path) -> None:
    """Make a rename or unlink in `directory` durable (a no-op where directories cannot be fsynced)."""
    # The rename is durable only once its directory entry is on disk (not possible on Windows).
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
