"""How an image or a CI job installs mlc: the one `pip install` argument list both read.

Decided once from `images.runtime` (and the wheel's sha256, read at the validation edge): a
wheel committed to the repository, installed through a `file://` URL whose `#sha256=` pip
checks before installing (a changed byte is refused), or `mlc==<version>` from a package index.
The Dockerfile template and the CI install step only say where the wheel sits on their
machine; neither spells a requirement of its own.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from mlc.compiler.load.runtime_lock import RUNTIME_LOCK_FILENAME
from mlc.compiler.load.spec import RuntimeSource


@dataclass(frozen=True)
class MlcInstall:
    """One install of mlc: which extras, of which version, from where."""

    version: str
    extras: str = ""  # e.g. "serve,batch"; "" for the compiler alone
    wheel: str | None = None  # the wheel in the repository, relative to the spec's folder
    wheel_sha256: str | None = None  # None until the wheel is there (`mlc vendor`): installed unchecked
    index_url: str | None = None  # install from this index instead of a wheel
    index_hashes: tuple[str, ...] = ()  # `mlc.runtime.lock`'s: the index's files of mlc, checked first

    @property
    def lock(self) -> str | None:
        """The hash lock installed first (`--no-deps --require-hashes -r`), relative to the spec's folder."""
        return RUNTIME_LOCK_FILENAME if self.index_hashes else None

    def with_extras(self, extras: str) -> MlcInstall:
        """The same source, installing `extras`."""
        return replace(self, extras=extras)

    @property
    def wheel_name(self) -> str | None:
        """The wheel's file name, None from an index."""
        return PurePosixPath(self.wheel).name if self.wheel else None

    def requirement(self, wheel_folder: str) -> str:
        """The requirement pip installs; `wheel_folder`: the absolute folder the wheel is in on the
        machine that installs (pip takes only absolute `file://` URLs; `$PWD` stays for the shell)."""
        name = f"mlc[{self.extras}]" if self.extras else "mlc"
        if self.wheel is None:
            return f"{name}=={self.version}"
        digest = f"#sha256={self.wheel_sha256}" if self.wheel_sha256 else ""
        return f"{name} @ file://{wheel_folder.rstrip('/')}/{self.wheel_name}{digest}"

    def locked_arguments(self, lock_folder: str, index: bool = True) -> str:
        """The hash-checked first install's arguments (`lock` set): mlc alone, every file's sha256
        checked; `index`: name the index (CI sets PIP_INDEX_URL instead)."""
        options = f" --index-url {shlex.quote(self.index_url)}" if index and self.index_url else ""
        return f"--no-deps --require-hashes{options} -r {(PurePosixPath(lock_folder) / (self.lock or '')).as_posix()}"

    def pip_arguments(self, wheel_folder: str) -> str:
        """`pip install`'s arguments as shell words, the requirement double-quoted (a `$PWD` in
        `wheel_folder` expands; the rest is validated to hold no shell syntax)."""
        options = f"--index-url {shlex.quote(self.index_url)} " if self.index_url else ""
        return f'{options}"{self.requirement(wheel_folder)}"'


def resolve_mlc_install(
    source: RuntimeSource, version: str, wheel_sha256: str | None, index_hashes: tuple[str, ...] = ()
) -> MlcInstall:
    """The compiler's own install from the spec's `images.runtime` (extras: none)."""
    return MlcInstall(
        version=version,
        wheel=source.wheel_path(),
        wheel_sha256=wheel_sha256 if source.wheel_path() else None,
        index_url=source.index_url,
        index_hashes=index_hashes if source.index_url else (),
    )
