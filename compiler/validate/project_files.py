"""Checks of the files a spec points at: the requirements lock, code, and path confinement.

Read-only I/O at the validation edge, every read and stat asked through a `FileProbes` (so the
validation cache knows what an outcome depended on). Spec-side problems come back as `Finding`s
(positioned in mlproject.yaml by the validator); problems inside the requirements lock come back
as `Diagnostic`s positioned in that file (`requirements.lock:LINE:COL`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from mlc.compiler import __version__
from mlc.compiler.diagnostics import Diagnostic, Finding, SourcePosition, error
from mlc.compiler.load.file_probes import FileProbes
from mlc.compiler.load.runtime_lock import RUNTIME_LOCK_FILENAME, parse_runtime_lock
from mlc.compiler.load.spec import MLProject
from mlc.compiler.load.values import is_remote_uri
from mlc.compiler.validate.secret_scan import token_kind

_REQUIREMENT = re.compile(
    r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?P<extras>\[[^\]]*\])?\s*(?P<spec>[^;]*?)\s*(?P<marker>;.*)?"
)
_PINNED = re.compile(r"===?\s*[A-Za-z0-9][A-Za-z0-9.+!_-]*")
_HASH = re.compile(r"\s--hash[=\s]+(sha256|sha384|sha512):[0-9a-f]+")
_ALLOWED_OPTIONS = (
    "--index-url",
    "--extra-index-url",
    "-i",
    "--find-links",
    "-f",
    "--only-binary",
    "--no-binary",
    "--prefer-binary",
    "--require-hashes",
    "--trusted-host",
)
_CREDENTIALS = re.compile(r"://[^/\s:@]+:[^/\s@]+@")
_LOCATION_OPTIONS = ("--index-url", "--extra-index-url", "-i", "--find-links", "-f")
# How a lock is made that validates: every package pinned, nothing editable, mlc left out (the
# image installs the mlc runtime that matches the compiler). `mlc lock` does it from what is
# installed here (`cli/requirements_pins.py`); uv resolves one from an index instead.
LOCK_COMMAND = (
    "`mlc lock` (pins requirements.in to what is installed here), or "
    "`uv pip compile requirements.in -o requirements.lock`"
)
_MLC = "mlc"
_GLOB = re.compile(r"[*?\[]")


def check_project_files(
    spec: MLProject, root: Path, spec_file: str, files: FileProbes | None = None
) -> list[Finding | Diagnostic]:
    """Everything wrong with the files `spec` points at under `root` (the spec's directory)."""
    files = files if files is not None else FileProbes()
    problems: list[Finding | Diagnostic] = []
    problems.extend(_confinement(spec, root, files))
    problems.extend(_runtime_wheel(spec, root, files))
    builds_images = spec.builds_image("train") or spec.builds_image("serve")
    if builds_images:
        problems.extend(_code_files(spec, root, files))
        lock = root / spec.code.requirements
        # A lock that leads out of the repository (confinement reports it) is never read: through
        # a link it could be any file of the machine, and its lines would be quoted back.
        if files.is_file(lock) and _inside(root, spec.code.requirements, files):
            text = _text(files.read_bytes(lock))
            if text is None:
                problems.append(
                    Finding(
                        ("code", "requirements"),
                        f"'{spec.code.requirements}' cannot be read",
                        "check the file's permissions",
                    )
                )
            else:
                display = str(PurePosixPath(spec_file).parent / spec.code.requirements).removeprefix("./")
                problems.extend(check_requirements_lock(text, display, spec.code.framework.torch))
    return problems


def _text(contents: bytes | None) -> str | None:
    """A text file's contents as `open(..., errors="replace")` reads them (universal newlines)."""
    if contents is None:
        return None
    return contents.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")


def _inside(root: Path, relative: str, files: FileProbes) -> bool:
    real_root = files.realpath(root)
    target = files.realpath(root / relative)
    return target == real_root or target.startswith(real_root + os.sep)


def _local_paths(spec: MLProject) -> Iterator[tuple[tuple[str | int, ...], str]]:
    yield ("code", "source"), spec.code.source
    yield ("code", "requirements"), spec.code.requirements
    yield ("gitops", "path"), spec.gitops.path
    for name, dataset in spec.data.datasets().items():
        yield ("data", name, "uri"), dataset.uri
    if spec.train is not None and spec.train.checkpoint.uri:
        yield ("train", "checkpoint", "uri"), spec.train.checkpoint.uri
    if spec.serve is not None and spec.serve.batch is not None:
        yield ("serve", "batch", "input"), spec.serve.batch.input
        yield ("serve", "batch", "output"), spec.serve.batch.output
    monitor = spec.monitor
    if monitor is not None and monitor.drift is not None and monitor.drift.current.uri is not None:
        yield ("monitor", "drift", "current", "uri"), monitor.drift.current.uri
    if monitor is not None and monitor.prediction_log is not None:
        yield ("monitor", "prediction_log", "uri"), monitor.prediction_log.uri
    if monitor is not None and monitor.feedback is not None:
        yield ("monitor", "feedback", "labels", "uri"), monitor.feedback.labels.uri


def _confinement(spec: MLProject, root: Path, files: FileProbes) -> Iterator[Finding]:
    for path, value in _local_paths(spec):
        if is_remote_uri(value):
            continue
        fixed = _GLOB.split(value, 1)[0]  # a glob is confined when its fixed prefix is
        if not _inside(root, fixed or ".", files):
            yield Finding(
                path,
                f"'{value}' leads outside the repository through a symlink",
                "point at a path inside the repository",
            )


def _code_files(spec: MLProject, root: Path, files: FileProbes) -> Iterator[Finding]:
    code = spec.code
    if not files.is_file(root / code.requirements):
        yield Finding(
            ("code", "requirements"),
            f"'{code.requirements}' does not exist",
            f"create it with fully pinned requirements: {LOCK_COMMAND}",
        )
    source = root / code.source
    if not files.is_dir(source):
        yield Finding(
            ("code", "source"),
            f"'{code.source}' is not a directory",
            "point it at the folder that holds your package, e.g. 'src/'",
        )
        return
    if spec.train is not None:
        module = spec.train.entrypoint.split(":", 1)[0].replace(".", "/")
        candidates = [source / f"{module}.py", source / module / "__init__.py"]
        if not any(files.is_file(c) for c in candidates):
            shown = (PurePosixPath(code.source) / f"{module}.py").as_posix()
            yield Finding(
                ("train", "entrypoint"),
                f"module not found: looked for {shown}",
                "entrypoint is 'module:function' importable from code.source",
            )


def _runtime_wheel(spec: MLProject, root: Path, files: FileProbes) -> Iterator[Finding]:
    """A wheel the spec names must be there. The default one is plan's to add and apply's to
    write where it is missing (`plan.specs`), or `mlc vendor`'s: validate stays quiet about it,
    so a project validates before its first apply, as every example here does."""
    runtime = spec.images.runtime
    if runtime.index_url is not None:
        yield from _runtime_lock(root, files)
    if runtime.wheel is None or files.is_file(root / runtime.wheel):
        return
    yield Finding(
        ("images", "runtime", "wheel"),
        f"'{runtime.wheel}' does not exist",
        "write the running compiler's wheel there with `mlc vendor`, or install from an index "
        "(`images: {runtime: {index_url: https://...}}`)",
    )


def _runtime_lock(root: Path, files: FileProbes) -> Iterator[Finding]:
    """`mlc.runtime.lock`, when there, must pin this compiler's mlc with its hashes."""
    lock = root / RUNTIME_LOCK_FILENAME
    text = _text(files.read_bytes(lock)) if files.is_file(lock) else None
    if text is None:
        return
    pinned = parse_runtime_lock(text)
    if pinned is None or pinned[0] != __version__:
        what = "holds no `mlc==<version> --hash=sha256:...` pin" if pinned is None else f"pins mlc {pinned[0]}"
        yield Finding(
            ("images", "runtime", "index_url"),
            f"{RUNTIME_LOCK_FILENAME} {what}, but this compiler is {__version__}",
            f"run `mlc vendor` to lock mlc {__version__} as the index serves it",
        )


def runtime_index_hashes(spec: MLProject, root: Path, files: FileProbes | None = None) -> tuple[str, ...]:
    """The sha256 hashes `mlc.runtime.lock` pins for an index install (none: unlocked, or a wheel)."""
    files = files if files is not None else FileProbes()
    lock = root / RUNTIME_LOCK_FILENAME
    if spec.images.runtime.index_url is None or not files.is_file(lock):
        return ()
    pinned = parse_runtime_lock(_text(files.read_bytes(lock)) or "")
    return pinned[1] if pinned is not None and pinned[0] == __version__ else ()


def runtime_wheel_sha256(spec: MLProject, root: Path, files: FileProbes | None = None) -> str | None:
    """sha256 hex of the mlc wheel the spec installs from the repository (None: from an index,
    or not there yet); the Dockerfile and CI check it before installing."""
    wheel = spec.images.runtime.wheel_path()
    if wheel is None:
        return None
    return (files if files is not None else FileProbes()).sha256(root / wheel)


def requirements_use_hashes(lock: Path, files: FileProbes | None = None) -> bool:
    """True when the lock file pins `--hash` entries (the image build then requires hashes)."""
    text = _text((files if files is not None else FileProbes()).read_bytes(lock))
    if text is None:
        return False
    return any(_HASH.search(" " + line) for _, _, line in _logical_lines(text))


def _normalized(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def check_requirements_lock(text: str, file: str, torch: str | None = None) -> list[Diagnostic]:
    """Every requirement pinned with `==` (hashes honoured: all or none), once; nothing else
    allowed: no editable or local install, not mlc itself, and torch at `code.framework.torch`."""
    problems: list[Diagnostic] = []
    seen: dict[str, int] = {}
    hashed: list[bool] = []
    unhashed_positions: list[SourcePosition] = []
    for line_number, column, line in _logical_lines(text):
        where = SourcePosition(file, line_number, column)
        if line.startswith("-"):
            option = re.split(r"[=\s]", line, maxsplit=1)[0]
            if option in ("-e", "--editable"):
                problems.append(
                    error(
                        "an editable install cannot go into an image (it points at a folder on this machine)",
                        where,
                        hint=f"leave it out: {LOCK_COMMAND}; code.source is copied into the image",
                    )
                )
            elif option not in _ALLOWED_OPTIONS:
                problems.append(
                    error(
                        f"option '{option}' is not allowed in a lock file",
                        where,
                        hint="list every package pinned with == in this one file (no -r, -c or -e)",
                    )
                )
            elif option in _LOCATION_OPTIONS and _on_this_machine(line):
                problems.append(
                    error(
                        f"{option} names a location on this machine, which the image build cannot see",
                        where,
                        hint="leave index options out of the lock (pip-compile copies pip's own configuration "
                        "in: run it with --no-emit-index-url --no-emit-find-links); a private index reaches the "
                        "build through the pip.conf secret",
                    )
                )
            elif _CREDENTIALS.search(line) or token_kind(line):
                problems.append(
                    error(
                        "credentials in an index URL; they would be baked into the image",
                        where,
                        hint="pass private index credentials as a BuildKit secret (PIP_INDEX_URL), not in the file",
                    )
                )
            continue
        if kind := token_kind(line):
            problems.append(
                error(
                    f"this line looks like {kind} (not shown); a credential would be baked into the image",
                    where,
                    hint="keep credentials out of the lock: a private index's go in a BuildKit secret (PIP_INDEX_URL)",
                )
            )
            continue
        has_hash = bool(_HASH.search(" " + line))
        requirement = _HASH.sub("", " " + line).strip()
        match = _REQUIREMENT.fullmatch(requirement)
        if not match or "@" in requirement.split(";")[0]:
            problems.append(
                error(
                    f"'{requirement}' is not a pinned requirement",
                    where,
                    hint="write `name==version`, e.g. 'numpy==2.1.3'",
                )
            )
            continue
        name, spec = _normalized(match["name"]), match["spec"]
        if name in seen:
            problems.append(
                error(
                    f"'{match['name']}' is pinned twice (first at line {seen[name]})",
                    where,
                    hint="keep one pin: pip refuses a lock that asks for a package twice",
                )
            )
            continue
        seen[name] = line_number
        if name == _MLC:
            problems.append(
                error(
                    "mlc itself is pinned here: the image installs the mlc runtime that matches the compiler",
                    where,
                    hint="remove this line (a different mlc would read another runtime config format)",
                )
            )
            continue
        pinned_version = spec.split("=")[-1].strip() if _PINNED.fullmatch(spec) else None
        if name == "torch" and torch is not None and pinned_version and pinned_version.split("+")[0] != torch:
            problems.append(
                error(
                    f"torch=={pinned_version} here, but code.framework.torch is {torch}: the image installs "
                    f"torch {torch} from its wheel index first, and this pin would replace it",
                    SourcePosition(file, line_number, column + requirement.find(spec)),
                    hint=f"pin 'torch=={torch}', or change code.framework.torch to {pinned_version.split('+')[0]}",
                )
            )
        if not _PINNED.fullmatch(spec) or "*" in spec:
            version = re.search(r"[0-9][A-Za-z0-9.+!_-]*", spec)
            example = f"{match['name']}=={version.group(0) if version else '<version>'}"
            problems.append(
                error(
                    f"'{requirement}' is not pinned with ==",
                    SourcePosition(file, line_number, column + requirement.find(spec) if spec else column),
                    hint=f"pin an exact version, e.g. '{example}' ({LOCK_COMMAND})",
                )
            )
        hashed.append(has_hash)
        if not has_hash:
            unhashed_positions.append(where)
    if any(hashed) and not all(hashed):
        problems.extend(
            error(
                "requirement without --hash in a lock that uses hashes (pip --require-hashes needs all)",
                where,
                hint="regenerate the lock with hashes for every package",
            )
            for where in unhashed_positions
        )
    return problems


def _on_this_machine(line: str) -> bool:
    """Whether an index or find-links option names a folder or `file:` URL (not an http(s) index)."""
    value = re.split(r"[=\s]+", line, maxsplit=1)[1:] or [""]
    return not re.match(r"https?://", value[0].strip(), re.IGNORECASE)


def _logical_lines(text: str) -> Iterator[tuple[int, int, str]]:
    """(line, column, text) of each logical line: comments removed, `\\` continuations joined."""
    pending: list[str] = []
    start = 0
    column = 1
    for number, raw in enumerate(text.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not pending:
            start = number
            column = len(line) - len(line.lstrip()) + 1
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        joined = " ".join(part.strip() for part in pending).strip()
        pending = []
        if joined:
            yield start, column, joined
    if pending and (joined := " ".join(p.strip() for p in pending).strip()):
        yield start, column, joined
