"""Cached outcomes of validation, so an unchanged spec is neither re-validated nor re-compiled.

Why: most of `mlc validate`'s time is importing pydantic and building the spec models, work
that gives the same answer as long as nothing it reads has changed (as dbt's partial parsing
skips files whose checksum it has seen). A cache entry stands for "this exact spec, with these
exact files around it, validated by this exact compiler, printed this output".

The key is a sha256 over:

- the spec file's bytes, its absolute path, and its display name (it is in every message);
- the compiler: the content of every .py/.json/.j2 file of `mlc.compiler` and `mlc.templates`
  (`fingerprint.hash_compiler_sources`), which covers the compatibility tables;
- the libraries that decide validation and the bytes compilation writes (pydantic,
  pydantic_core, PyYAML, Jinja2 and their helpers), located without importing them: where
  they are, the size and mtime of their files, the names of their dist-info folders;
- the Python version.

Beside the output, an entry records every filesystem fact validation depended on, as
`file_probes` recorded it while validating: the realpath of every local path the base and each
environment name (confinement), whether the requirements lock is a file and `code.source` a
directory, the train module's file, the bytes of the requirements lock and of
`mlc.images.lock`. A lookup asks those questions again; any different answer is a miss.

An entry holds a `ValidationRecord`: data, not text. `mlc validate` renders it as the
validation it stands for would have printed (its environments and warnings); `mlc plan` reads
its `inputs_digest` (everything emit's output depends on, `fingerprint.inputs_digest`) and, when
`mlc.lock` says the generated files were written from the same inputs and they are untouched
on disk, plans the spec without loading the validator or any backend.

Only successful validations are stored. Entries live in
`$MLC_CACHE_DIR` (default `$XDG_CACHE_HOME/mlc`, else `~/.cache/mlc`) under `validate/`, one
JSON file each, written atomically and pruned to the newest `MAX_ENTRIES`. The cache never
makes `validate` fail: an unreadable or corrupt entry is a miss, an unwritable directory is
ignored. `MLC_NO_CACHE=1` or `mlc validate --no-cache` turn it off.

The hit path imports only the standard library, `diagnostics`, `file_probes` and `fingerprint`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlc.compiler.diagnostics import Diagnostic, Severity, SourcePosition
from mlc.compiler.load.file_probes import Probe, unchanged

ENTRY_FORMAT = 3
MAX_ENTRIES = 500
MAX_SPEC_BYTES = 1024 * 1024  # load.MAX_SPEC_BYTES: a larger spec is invalid, so never cached
# Modules whose code decides what validation accepts and how it words what it rejects.
VALIDATION_LIBRARIES = (
    "pydantic",
    "pydantic_core",
    "yaml",
    "typing_extensions",
    "annotated_types",
    "typing_inspection",
    "jinja2",
    "markupsafe",
)
# Their distributions' names as they start dist-info folder names (normalised, lower case).
_DISTRIBUTIONS = (
    "pydantic-",
    "pydantic_core-",
    "pyyaml-",
    "typing_extensions-",
    "annotated_types-",
    "typing_inspection-",
    "jinja2-",
    "markupsafe-",
)


@dataclass(frozen=True)
class ValidationRecord:
    """What a successful validation established, as data: enough to print its outcome again
    and to plan the spec without compiling it when its generated files are up to date."""

    project: str
    environments: tuple[str, ...]
    warnings: tuple[Diagnostic, ...]
    spec_digest: str
    compiler_version: str
    inputs_digest: str  # everything emit's output depends on (`fingerprint.inputs_digest`)
    image_repositories: dict[str, tuple[str, ...]]  # role -> repositories the project builds
    # The mlc wheel the spec installs from the repository when it is not there yet (relative to
    # the spec's folder): plan adds the running compiler's wheel, apply writes it.
    missing_runtime_wheel: str | None = None

    def to_data(self) -> dict[str, object]:
        """The record as JSON data."""
        return {
            "project": self.project,
            "environments": list(self.environments),
            "warnings": [_diagnostic_to_data(d) for d in self.warnings],
            "spec_digest": self.spec_digest,
            "compiler_version": self.compiler_version,
            "inputs_digest": self.inputs_digest,
            "image_repositories": {role: list(repos) for role, repos in self.image_repositories.items()},
            "missing_runtime_wheel": self.missing_runtime_wheel,
        }


def _diagnostic_to_data(diagnostic: Diagnostic) -> dict[str, object]:
    position = diagnostic.position
    return {
        "severity": diagnostic.severity.value,
        "message": diagnostic.message,
        "position": None if position is None else [position.file, position.line, position.column],
        "field": diagnostic.field,
        "hint": diagnostic.hint,
    }


def _record_from_data(data: object) -> ValidationRecord | None:
    """A record from its JSON data; None for anything malformed (an entry from elsewhere)."""
    try:
        assert isinstance(data, dict)
        warnings = []
        for item in data["warnings"]:
            position = item["position"]
            warnings.append(
                Diagnostic(
                    Severity(item["severity"]),
                    str(item["message"]),
                    None if position is None else SourcePosition(str(position[0]), int(position[1]), int(position[2])),
                    str(item["field"]),
                    str(item["hint"]),
                )
            )
        repositories = {str(role): tuple(map(str, repos)) for role, repos in data["image_repositories"].items()}
        return ValidationRecord(
            project=str(data["project"]),
            environments=tuple(map(str, data["environments"])),
            warnings=tuple(warnings),
            spec_digest=str(data["spec_digest"]),
            compiler_version=str(data["compiler_version"]),
            inputs_digest=str(data["inputs_digest"]),
            image_repositories=repositories,
            missing_runtime_wheel=None if data["missing_runtime_wheel"] is None else str(data["missing_runtime_wheel"]),
        )
    except (AssertionError, KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None


def cache_directory(environ: Mapping[str, str]) -> Path | None:
    """Where entries live, or None when the cache is turned off (`MLC_NO_CACHE`) or has no home."""
    if environ.get("MLC_NO_CACHE", "") not in ("", "0"):
        return None
    explicit = environ.get("MLC_CACHE_DIR")
    if explicit:
        return Path(explicit) / "validate"
    xdg = environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):
        return Path(xdg) / "mlc" / "validate"
    try:
        return Path.home() / ".cache" / "mlc" / "validate"
    except RuntimeError:  # no HOME and no passwd entry
        return None


def cache_key(spec_path: Path, display: str, spec_bytes: bytes) -> str:
    """sha256 hex over the spec and everything besides the files around it that decides its output."""
    header = json.dumps(
        [ENTRY_FORMAT, os.path.abspath(spec_path), display, compiler_identity(), library_identity(), sys.version]
    )
    return hashlib.sha256(header.encode() + b"\0" + spec_bytes).hexdigest()


@functools.cache
def compiler_identity() -> str:
    """sha256 hex over the compiler's source and data files (once per process)."""
    from mlc.compiler.fingerprint import hash_compiler_sources

    digest = hashlib.sha256()
    hash_compiler_sources(digest)
    return digest.hexdigest()


@functools.cache
def library_identity() -> str:
    """sha256 hex standing for the installed validation libraries, found without importing them."""
    facts: list[object] = []
    sites: set[str] = set()
    for name in VALIDATION_LIBRARIES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):  # a broken install; validating will say more
            spec = None
        if spec is None or spec.origin is None:
            facts.append([name, None])
            continue
        if spec.submodule_search_locations is None:  # a single-file module
            package, site = [spec.origin], os.path.dirname(spec.origin)
        else:
            package = [os.path.join(d, n) for d in spec.submodule_search_locations for n in _names(d)]
            site = os.path.dirname(os.path.dirname(spec.origin))
        facts.append([name, spec.origin, [_stat(path) for path in sorted(package)]])
        sites.add(site)
    for site in sorted(sites):
        facts.append([site, sorted(n for n in _names(site) if n.lower().startswith(_DISTRIBUTIONS))])
    return hashlib.sha256(json.dumps(facts).encode()).hexdigest()


def _names(directory: str) -> list[str]:
    try:
        return os.listdir(directory)
    except OSError:
        return []


def _stat(path: str) -> list[object]:
    """(path, size, mtime) of a file of a library: installing another version rewrites them."""
    try:
        info = os.stat(path)
    except OSError:
        return [path, None]
    return [path, info.st_size, info.st_mtime_ns]


def spec_bytes(spec_path: Path) -> bytes | None:
    """The spec's bytes when it is a regular file small enough to be valid; None otherwise.

    A pipe (`-f /dev/stdin`) is never cached: reading it for the key would consume what
    validation has to read.
    """
    try:
        if not os.path.isfile(spec_path) or os.path.getsize(spec_path) > MAX_SPEC_BYTES:
            return None
        with open(spec_path, "rb") as handle:
            contents = handle.read(MAX_SPEC_BYTES + 1)
    except OSError:
        return None
    return contents if len(contents) <= MAX_SPEC_BYTES else None


def _entry_path(directory: Path, key: str) -> Path:
    return directory / f"{key}.json"


def lookup(directory: Path, key: str) -> ValidationRecord | None:
    """The stored record for `key` if the entry is readable, well-formed and still true."""
    path = _entry_path(directory, key)
    try:
        with open(path, encoding="utf-8") as handle:
            entry = json.load(handle)
    except (OSError, ValueError):
        return None
    probes = _probes(entry)
    record = _record_from_data(entry.get("record")) if probes is not None else None
    if record is None or probes is None or not unchanged(probes):
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: pruned last
    return record


def _probes(entry: object) -> list[Probe] | None:
    """The entry's probes when it is a well-formed entry of this format, else None."""
    if not isinstance(entry, dict) or entry.get("format_version") != ENTRY_FORMAT:
        return None
    raw = entry.get("probes")
    if not isinstance(raw, list):
        return None
    probes: list[Probe] = []
    for item in raw:
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str) and isinstance(item[1], str)):
            return None
        if not (item[2] is None or isinstance(item[2], str | bool)):
            return None
        probes.append((item[0], item[1], item[2]))
    return probes


def store(directory: Path, key: str, probes: list[Probe], record: ValidationRecord) -> None:
    """Write the entry atomically (temp file + rename in the same folder), then prune; never raise."""
    entry = {"format_version": ENTRY_FORMAT, "probes": [list(p) for p in probes], "record": record.to_data()}
    path = _entry_path(directory, key)
    temporary = directory / f".{key}.{os.getpid()}.tmp"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(entry, handle)
        os.replace(temporary, path)
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        return
    _prune(directory)


def _prune(directory: Path) -> None:
    """Delete the least recently used entries (and stale temp files) beyond `MAX_ENTRIES`."""
    try:
        with os.scandir(directory) as entries:
            candidates = [entry for entry in entries if entry.name.endswith((".json", ".tmp"))]
    except OSError:
        return
    if len(candidates) <= MAX_ENTRIES:
        return  # names only, no stat: a monorepo's plan stores hundreds of entries in a row
    found: list[tuple[int, str]] = []
    for entry in candidates:
        try:
            found.append((entry.stat().st_mtime_ns, entry.path))
        except OSError:  # deleted meanwhile by another mlc
            continue
    found.sort()
    for _, path in found[: max(0, len(found) - MAX_ENTRIES)]:
        with contextlib.suppress(OSError):
            os.unlink(path)
