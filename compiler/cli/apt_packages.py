"""`mlc images check-packages`: the images' apt packages looked up in their distribution's archive.

Validation stays offline and instant: it checks a package without a version against mlc's pin
table only. This command, run on purpose, downloads the package indexes (`Packages.xz`) of the
archives each image's apt reads (table data: `apt.indexes`; through the dated snapshot when the
image names `apt_snapshot`) and reports every package name the distribution does not have and
every written version it does not hold, at its line in mlproject.yaml. When an archive cannot be
reached, the packages are checked against the pin table instead, and the command says so.
Standard library only (urllib, lzma).
"""

from __future__ import annotations

import difflib
import lzma
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from mlc.compiler.errors import MlcError

_TIMEOUT_SECONDS = 60


class ArchiveUnreachable(MlcError):
    """A package index could not be downloaded or read; the message names its URL."""


@dataclass(frozen=True)
class PackageProblem:
    """One package of one image that its distribution's archive does not hold."""

    index: int  # its position in `images.<role>.system_packages`
    message: str
    hint: str


def parse_packages(text: str) -> dict[str, set[str]]:
    """`Package` -> its `Version`s, from the text of a Debian `Packages` index."""
    found: dict[str, set[str]] = {}
    name = ""
    for line in text.splitlines():
        if line.startswith("Package: "):
            name = line[9:].strip()
        elif line.startswith("Version: ") and name:
            found.setdefault(name, set()).add(line[9:].strip())
    return found


def mirrored(url: str, mirror: str | None) -> str:
    """`url` with its scheme and host replaced by `mirror`'s (an apt mirror or proxy), if given."""
    if not mirror:
        return url
    origin = urllib.parse.urlsplit(mirror)
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((origin.scheme, origin.netloc, origin.path.rstrip("/") + parts.path, "", ""))


def dated(url: str, archives: Iterable[tuple[str, str]]) -> str:
    """`url` rewritten as the Dockerfile rewrites apt's sources for a snapshot (first match wins)."""
    for archive, snapshot in archives:
        if url.startswith(archive + "/"):
            return snapshot + url[len(archive) :]
    return url


def read_indexes(urls: Iterable[str]) -> dict[str, set[str]]:
    """Every package and version of the indexes at `urls`, merged."""
    found: dict[str, set[str]] = {}
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=_TIMEOUT_SECONDS) as response:
                text = lzma.decompress(response.read()).decode("utf-8", errors="replace")
        except (urllib.error.URLError, OSError, lzma.LZMAError, ValueError) as exc:
            raise ArchiveUnreachable(f"{url}: {getattr(exc, 'reason', exc)}") from exc
        for name, versions in parse_packages(text).items():
            found.setdefault(name, set()).update(versions)
    return found


def archive_problems(packages: Iterable[str], archive: Mapping[str, set[str]], where: str) -> Iterator[PackageProblem]:
    """The packages (`name` or `name=version`) the archive (`where`, for messages) does not hold."""
    for index, package in enumerate(packages):
        name, _, version = package.partition("=")
        if name not in archive:
            close = difflib.get_close_matches(name, list(archive), n=3)
            hint = f"did you mean {', '.join(map(repr, close))}?" if close else "check the name (`apt-cache search`)"
            yield PackageProblem(index, f"apt package '{name}' is not in {where}", hint)
        elif version and version not in archive[name]:
            held = ", ".join(sorted(archive[name]))
            yield PackageProblem(
                index, f"apt package '{name}' has no version {version} in {where}", f"versions there: {held}"
            )


def table_problems(packages: Iterable[str], pins: Mapping[str, str], where: str) -> Iterator[PackageProblem]:
    """The fallback: packages without a version that mlc's pin table does not know (`where`: its distro)."""
    for index, package in enumerate(packages):
        if "=" not in package and package not in pins:
            yield PackageProblem(
                index,
                f"apt package '{package}' is not in mlc's pin table for {where} (its archive was not reachable)",
                "write it with its version, or run again where the archive is reachable",
            )


@dataclass
class ArchiveReader:
    """Reads each set of indexes once per run (the train and serve images often share a distro)."""

    mirror: str | None = None
    read: dict[tuple[str, ...], dict[str, set[str]] | ArchiveUnreachable] = field(default_factory=dict)

    def archive(self, urls: Iterable[str]) -> dict[str, set[str]]:
        """The merged indexes at `urls` (through the mirror); raises ArchiveUnreachable."""
        key = tuple(mirrored(url, self.mirror) for url in urls)
        if key not in self.read:
            try:
                self.read[key] = read_indexes(key)
            except ArchiveUnreachable as exc:
                self.read[key] = exc
        found = self.read[key]
        if isinstance(found, ArchiveUnreachable):
            raise found
        return found


@dataclass(frozen=True)
class ImagePackagesCheck:
    """What one image's packages were checked against, and what it lacks."""

    checked_against: str  # e.g. "debian-bookworm's archive on 2026-11-30", or mlc's table
    problems: list[PackageProblem]
    unreachable: list[str]  # why a better source was not used (one line each)


def check_image_packages(
    packages: list[str],
    distro: str,
    index_urls: list[str],
    snapshot: tuple[str, tuple[tuple[str, str], ...]] | None,
    pins: Mapping[str, str],
    reader: ArchiveReader,
) -> ImagePackagesCheck:
    """Check against the archive the image reads (the snapshot's day when it names one), then the
    live archive (names only mean much there for a snapshot), then mlc's pin table."""
    sources: list[tuple[str, list[str]]] = []
    if snapshot is not None:
        day, archives = snapshot
        sources.append((f"{distro}'s archive on {day}", [dated(url, archives) for url in index_urls]))
    sources.append((f"{distro}'s archive today", index_urls) if snapshot else (f"{distro}'s archive", index_urls))
    unreachable = []
    for where, urls in sources:
        try:
            archive = reader.archive(urls)
        except ArchiveUnreachable as exc:
            unreachable.append(str(exc))
            continue
        return ImagePackagesCheck(where, list(archive_problems(packages, archive, where)), unreachable)
    problems = list(table_problems(packages, pins, distro))
    return ImagePackagesCheck(f"mlc's pin table for {distro}", problems, unreachable)
