"""The running compiler's own wheel, rebuilt from what is installed, byte for byte the same for
the same installed files: what `mlc vendor` writes, and what plan adds (and apply writes) when a
spec installs mlc from a wheel in the repository that is not there yet.

A team that has never published mlc still has the mlc it runs: this writes it as a wheel into
the repository, where the images and CI workflows install it with its sha256 checked (the way
Cog ships its own python package into the images it builds). Deterministic: entries in sorted
order, one fixed timestamp (SOURCE_DATE_EPOCH's floor, 1980-01-01), fixed permissions and
compression, so the same version installed from the same files gives the same bytes and the
same sha256 in every Dockerfile.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

# The import packages the `mlc` distribution ships (pyproject's package-dir): each folder whole.
PACKAGES = ("mlc.compiler", "mlc.runtime", "mlc.templates", "mlc.schemas")
_SKIPPED_SUFFIXES = (".pyc", ".pyo")
_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can hold: no clock in the bytes
_WHEEL = "Wheel-Version: 1.0\nGenerator: mlc vendor\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def package_files(package: str) -> Iterator[tuple[str, Path]]:
    """(path in the wheel, file on disk) of every file of an installed import package."""
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise LookupError(f"{package} is not installed")
    folder = Path(next(iter(found.submodule_search_locations)))
    prefix = package.replace(".", "/")
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or "__pycache__" in relative.parts or path.suffix in _SKIPPED_SUFFIXES:
            continue
        if any(part.startswith(".") for part in relative.parts):
            continue
        yield f"{prefix}/{relative.as_posix()}", path


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def wheel_entries(version: str) -> list[tuple[str, bytes]]:
    """Every entry of the wheel, in the order written: packages, then the .dist-info (RECORD last)."""
    distribution = importlib.metadata.distribution("mlc")
    if distribution.version != version:
        raise LookupError(f"the installed mlc is {distribution.version}, not {version}")
    entries = [(name, path.read_bytes()) for package in PACKAGES for name, path in package_files(package)]
    info = f"mlc-{version}.dist-info"
    metadata = distribution.read_text("METADATA") or distribution.read_text("PKG-INFO") or ""
    entries.append((f"{info}/METADATA", metadata.encode()))
    entries.append((f"{info}/WHEEL", _WHEEL.encode()))
    entry_points = distribution.read_text("entry_points.txt")
    if entry_points:
        entries.append((f"{info}/entry_points.txt", entry_points.encode()))
    entries.sort(key=lambda entry: entry[0])
    record = "\n".join([*(_record_line(n, d) for n, d in entries), f"{info}/RECORD,,"]) + "\n"
    entries.append((f"{info}/RECORD", record.encode()))
    return entries


def wheel_bytes(version: str) -> bytes:
    """The wheel of the installed mlc (`version` must be what is installed); ~50 ms."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in wheel_entries(version):
            entry = zipfile.ZipInfo(name, date_time=_TIMESTAMP)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data, compresslevel=9)
    return buffer.getvalue()


def write_wheel(path: Path, version: str) -> bool:
    """Write the wheel at `path` (atomically); False when the same bytes are already there."""
    data = wheel_bytes(version)
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)
    return True
