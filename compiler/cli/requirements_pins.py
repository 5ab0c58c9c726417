"""`mlc lock`: requirements.in pinned to what this environment has installed, as a lock that validates.

The newcomer's situation: a notebook's packages are installed in this environment, and the image
must get the same ones. `requirements.in` names the project's direct dependencies (`pandas`,
`scikit-learn>=1.4`, ...); `mlc lock` follows their dependencies through the installed
distributions' metadata (markers evaluated for this interpreter, extras followed) and writes
every one pinned `name==version`, sorted. Nothing is downloaded and nothing resolved anew:
what trained here is what the image installs. Left out: torch (the image installs
`code.framework.torch` from its wheel index first) with what only torch needs, and mlc itself
(the image installs the runtime matching the compiler). A dependency that is not installed,
or installed from a local folder (editable), is an error naming it. For a lock resolved from
an index instead (another platform, hashes), use `uv pip compile requirements.in -o
requirements.lock` (or pip-tools' `pip-compile --no-emit-index-url --no-emit-find-links`: by
default it copies pip's own index options into the lock), which the validator accepts as well.
"""

from __future__ import annotations

import json
import platform
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement

from mlc.compiler.errors import MlcError

LEFT_OUT = frozenset({"torch", "mlc"})  # installed by the image itself (see the module docstring)


class LockError(MlcError):
    """requirements.in names something this environment cannot pin."""


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Installed:
    """What the lock needs to know of one installed distribution."""

    name: str
    version: str
    requires: tuple[str, ...]
    local_origin: str | None  # a file:// URL or folder when installed from one (editable, local path)


def installed_distribution(name: str) -> Installed | None:
    """The installed distribution `name`, read from its metadata; None when it is not installed."""
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None
    origin = None
    direct = dist.read_text("direct_url.json")
    if direct:
        url = json.loads(direct).get("url", "")
        origin = url if url.startswith("file:") else None
    return Installed(dist.metadata["Name"], dist.version, tuple(dist.requires or ()), origin)


def _requirement_lines(text: str, file: str) -> list[Requirement]:
    requirements = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line:
            continue
        if line.startswith("-"):
            raise LockError(
                f"{file}:{number}: options ({line.split()[0]}) are not read by mlc lock; name packages only"
            )
        try:
            requirements.append(Requirement(line))
        except InvalidRequirement as error:
            raise LockError(f"{file}:{number}: {error}") from None
    return requirements


def pin_requirements(
    text: str,
    file: str = "requirements.in",
    find: Callable[[str], Installed | None] = installed_distribution,
    environment: dict[str, str] | None = None,
) -> list[str]:
    """`name==version` of every distribution `text`'s requirements need, sorted by name."""
    environment = environment or default_environment()
    pending: list[tuple[Requirement, str]] = [
        (r, file)
        for r in _requirement_lines(text, file)
        if r.marker is None or r.marker.evaluate({**environment, "extra": ""})
    ]
    pinned: dict[str, Installed] = {}
    extras_seen: dict[str, set[str]] = {}
    while pending:
        requirement, needed_by = pending.pop(0)
        key = canonical(requirement.name)
        if key in LEFT_OUT:
            continue
        dist = pinned.get(key) or find(requirement.name)
        if dist is None:
            raise LockError(
                f"{requirement.name} ({needed_by} needs it) is not installed here: install it "
                f"(pip install '{requirement}') and run mlc lock again; mlc lock pins what this environment has"
            )
        if dist.local_origin is not None:
            raise LockError(
                f"{dist.name} is installed from {dist.local_origin}, which an image cannot install: "
                "install it from a package index, or put its code under code.source"
            )
        if requirement.specifier and not requirement.specifier.contains(dist.version, prereleases=True):
            raise LockError(
                f"{dist.name} {dist.version} is installed, but {needed_by} asks for {requirement}: "
                f"install a matching version (pip install '{requirement}')"
            )
        new_extras = set(requirement.extras) - extras_seen.get(key, set())
        if key in pinned and not new_extras:
            continue
        extras_seen.setdefault(key, set()).update(requirement.extras)
        pinned[key] = dist
        for line in dist.requires:
            dependency = Requirement(line)
            wanted = dependency.marker is None or any(
                dependency.marker.evaluate({**environment, "extra": extra})
                for extra in (sorted(extras_seen[key]) or [""])
            )
            if wanted:
                pending.append((dependency, dist.name))
    return [f"{pinned[key].name}=={pinned[key].version}" for key in sorted(pinned)]


def lock_text(pins: list[str], source: str) -> str:
    """The lock file: a header saying how it was made and for which interpreter, then the pins."""
    header = [
        f"# Made by `mlc lock` from {source}: what this environment has installed "
        f"(Python {platform.python_version()}, {platform.system().lower()} {platform.machine()}).",
        "# torch is left out: the image installs code.framework.torch first. Regenerate after changing "
        f"{source}: mlc lock",
    ]
    return "\n".join([*header, *pins]) + "\n"
