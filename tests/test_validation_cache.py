"""The validation cache: a hit prints what validating would, and anything validation read changing is a miss.

Hits are told from misses by their output: `poison` rewrites what every stored entry would
print, so a run that prints the poison came from the cache and any other run validated afresh.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlc.compiler.load.document import MAX_SPEC_BYTES
from mlc.compiler.load.file_probes import FileProbes
from mlc.compiler.pipeline import resolve_spec_file
from mlc.compiler.validate import cache as validation_cache
from spec_fixtures import REPO_ROOT, run_mlc
from test_validate import BASE

POISON = "mlproject.yaml: valid (1 environment: printed-from-the-cache)\n"
# Valid, with a warning (spot training without checkpoints), and an environment that names a
# data path of its own (on the volume its cluster's jobs mount over data/).
SPEC = (
    BASE
    + "  spot: true\n"
    + "volumes:\n"
    + "  data: {claim: demo-data, path: data/}\n"
    + "environments:\n"
    + "  staging:\n"
    + "    data:\n"
    + "      train: {uri: data/staging.csv}\n"
)
LLM_CHAT = REPO_ROOT / "examples" / "llm-chat" / "mlproject.yaml"


def entries(cache: Path) -> list[Path]:
    return sorted((cache / "validate").glob("*.json"))


def poison(cache: Path) -> int:
    """Make every stored entry print POISON (its record names an environment no spec has);
    returns how many there are."""
    found = entries(cache)
    for path in found:
        entry = json.loads(path.read_text())
        entry["record"]["environments"] = ["printed-from-the-cache"]
        used = path.stat()
        path.write_text(json.dumps(entry))
        os.utime(path, ns=(used.st_atime_ns, used.st_mtime_ns))  # as recently used as before
    return len(found)


def validate(spec: Path, *flags: str) -> tuple[int, str, str]:
    return run_mlc("validate", *flags, cwd=spec.parent)


@pytest.fixture
def spec(project) -> Path:
    spec = project(SPEC)
    (spec.parent / "data").mkdir()
    return spec


def test_a_miss_then_a_hit_print_the_same_bytes(spec: Path, validation_cache_dir: Path) -> None:
    cold = validate(spec, "--no-cache")
    assert cold[0] == 0 and "warning: train.spot" in cold[2] and cold[1].endswith("valid (1 environment: staging)\n")
    assert entries(validation_cache_dir) == []
    miss = validate(spec)
    assert len(entries(validation_cache_dir)) == 1
    hit = validate(spec)
    assert cold == miss == hit
    assert poison(validation_cache_dir) == 1
    assert validate(spec)[1] == POISON  # ...and that second run was indeed a hit


def _edit_spec(spec: Path) -> None:
    spec.write_text(spec.read_text() + "# a comment changes the bytes, not the data\n")


def _edit_requirements(spec: Path) -> None:
    (spec.parent / "requirements.lock").write_text("numpy==2.0.1\n")


def _remove_source(spec: Path) -> None:
    shutil.rmtree(spec.parent / "src")


def _source_leaves_the_repository(spec: Path) -> None:
    outside = spec.parent.parent / "outside-src"
    (spec.parent / "src").rename(outside)
    (spec.parent / "src").symlink_to(outside, target_is_directory=True)


def _add_images_lock(spec: Path) -> None:
    lock = {"format_version": 1, "images": {"python:3.11-slim": "sha256:" + "a" * 64}}
    (spec.parent / "mlc.images.lock").write_text(json.dumps(lock))


def _overlay_data_leaves_the_repository(spec: Path) -> None:
    outside = spec.parent.parent / "outside.csv"
    outside.write_text("x\n")
    (spec.parent / "data" / "staging.csv").symlink_to(outside)


def _base_data_leaves_the_repository(spec: Path) -> None:
    (spec.parent / "data").rmdir()
    (spec.parent / "data").symlink_to(spec.parent.parent, target_is_directory=True)


def _new_compiler(spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validation_cache, "compiler_identity", lambda: "another compiler build")


def _new_libraries(spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validation_cache, "library_identity", lambda: "pydantic upgraded")


def _new_python(spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "version", sys.version + " (another build)")


CHANGES = {
    "spec bytes": _edit_spec,
    "requirements lock content": _edit_requirements,
    "code.source removed": _remove_source,
    "code.source a symlink out of the repository": _source_leaves_the_repository,
    "images lock added": _add_images_lock,
    "an overlay's data path a symlink out": _overlay_data_leaves_the_repository,
    "a base data path a symlink out": _base_data_leaves_the_repository,
}
IDENTITY_CHANGES = {"compiler": _new_compiler, "libraries": _new_libraries, "python": _new_python}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_a_change_to_what_validation_read_is_a_miss(change, spec: Path, validation_cache_dir: Path) -> None:
    validate(spec)
    assert poison(validation_cache_dir) == 1
    change(spec)
    assert validate(spec) == validate(spec, "--no-cache")


@pytest.mark.parametrize("change", IDENTITY_CHANGES.values(), ids=IDENTITY_CHANGES.keys())
def test_another_compiler_library_or_python_is_a_miss(
    change, spec: Path, validation_cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    validate(spec)
    assert poison(validation_cache_dir) == 1
    change(spec, monkeypatch)
    code, out, _ = validate(spec)
    assert code == 0 and out.endswith("valid (1 environment: staging)\n")
    assert len(entries(validation_cache_dir)) == 2


def test_images_lock_changed_is_a_miss(spec: Path, validation_cache_dir: Path) -> None:
    _add_images_lock(spec)
    validate(spec)
    assert poison(validation_cache_dir) == 1
    lock = spec.parent / "mlc.images.lock"
    lock.write_text(lock.read_text().replace("a" * 64, "b" * 64))
    assert validate(spec)[1] != POISON
    lock.write_text("{not json")
    code, out, err = validate(spec)
    assert code == 1 and out == "" and "unreadable images lock" in err


def test_another_display_name_is_another_entry(spec: Path, validation_cache_dir: Path) -> None:
    validate(spec)
    poison(validation_cache_dir)
    code, out, _ = run_mlc("validate", "-f", str(spec.parent), cwd=spec.parent.parent)
    assert code == 0 and out == f"{spec.parent.name}/mlproject.yaml: valid (1 environment: staging)\n"


def test_library_identity_follows_the_installed_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "fakelib"
    package.mkdir()
    (package / "__init__.py").write_text("VERSION = 1\n")
    (tmp_path / "fakelib-1.0.dist-info").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(validation_cache, "VALIDATION_LIBRARIES", ("fakelib",))
    monkeypatch.setattr(validation_cache, "_DISTRIBUTIONS", ("fakelib-",))

    def identity() -> str:
        validation_cache.library_identity.cache_clear()
        return validation_cache.library_identity()

    try:
        first = identity()
        (package / "__init__.py").write_text("VERSION = 22\n")  # reinstalled: another size and mtime
        second = identity()
        (tmp_path / "fakelib-1.0.dist-info").rename(tmp_path / "fakelib-2.0.dist-info")
        third = identity()
    finally:
        validation_cache.library_identity.cache_clear()
    assert len({first, second, third}) == 3
    assert "fakelib" not in sys.modules  # found, never imported


def test_an_invalid_spec_is_never_cached_and_always_reported(project, validation_cache_dir: Path) -> None:
    spec = project(BASE + "trian: {}\n")
    first = validate(spec)
    assert first[0] == 1 and "unknown key 'trian'" in first[2]
    assert validate(spec) == first
    assert entries(validation_cache_dir) == []


def test_only_the_valid_specs_of_a_directory_are_cached(project, validation_cache_dir: Path) -> None:
    good = project(BASE)
    bad = project(BASE + "trian: {}\n")
    first = run_mlc("validate", "-f", str(good.parent.parent))
    assert first[0] == 1 and "valid (1 environment" in first[1] and "unknown key" in first[2]
    assert len(entries(validation_cache_dir)) == 1
    assert run_mlc("validate", "-f", str(good.parent.parent)) == first
    assert run_mlc("validate", "-f", str(bad)) == (1, "", first[2])


@pytest.mark.parametrize("content", ["{not json", "[]", '{"format_version": 1, "probes": [["x"]]}', ""])
def test_a_corrupt_entry_is_a_miss_and_is_replaced(content: str, spec: Path, validation_cache_dir: Path) -> None:
    expected = validate(spec)
    (entry,) = entries(validation_cache_dir)
    entry.write_text(content)
    assert validate(spec) == expected
    assert json.loads(entry.read_text())["record"]["environments"] == ["staging"]


def test_an_unwritable_cache_directory_is_ignored(spec: Path, tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("MLC_CACHE_DIR", str(blocker))
    expected = validate(spec, "--no-cache")
    assert validate(spec) == expected
    assert validate(spec) == expected
    assert expected[0] == 0


@pytest.mark.parametrize("how", ["MLC_NO_CACHE=1", "--no-cache"])
def test_the_cache_can_be_turned_off(how: str, spec: Path, validation_cache_dir: Path, monkeypatch) -> None:
    def off() -> tuple[int, str, str]:
        if how == "--no-cache":
            return validate(spec, "--no-cache")
        with monkeypatch.context() as patch:
            patch.setenv("MLC_NO_CACHE", "1")
            return validate(spec)

    expected = off()
    assert entries(validation_cache_dir) == []  # not written...
    validate(spec)
    poison(validation_cache_dir)
    assert off() == expected  # ...nor read
    assert validate(spec)[1] == POISON


def test_default_location_follows_xdg(tmp_path: Path) -> None:
    assert validation_cache.cache_directory({"MLC_CACHE_DIR": str(tmp_path)}) == tmp_path / "validate"
    xdg = {"XDG_CACHE_HOME": str(tmp_path)}
    assert validation_cache.cache_directory(xdg) == tmp_path / "mlc" / "validate"
    assert validation_cache.cache_directory({"XDG_CACHE_HOME": "relative"}) == Path.home() / ".cache/mlc/validate"
    assert validation_cache.cache_directory({**xdg, "MLC_NO_CACHE": "1"}) is None
    assert validation_cache.cache_directory({**xdg, "MLC_NO_CACHE": "0"}) is not None


HEAVY_PROBE = (
    "import sys\n"
    "from mlc.compiler.cli import main\n"
    "try:\n    main(['validate', '-f', sys.argv[1]])\nexcept SystemExit as exit:\n    code = exit.code\n"
    "print(code, sorted({'pydantic', 'pydantic_core', 'yaml', 'jinja2'} & set(sys.modules)), file=sys.stderr)\n"
)


def test_a_hit_imports_neither_pydantic_nor_yaml(spec: Path) -> None:
    def probe() -> tuple[str, str, str]:
        done = subprocess.run([sys.executable, "-c", HEAVY_PROBE, str(spec)], capture_output=True, text=True)
        *printed, modules = done.stderr.splitlines()
        return done.stdout, "\n".join(printed), modules

    miss, hit = probe(), probe()
    assert miss[2].startswith("0 ['pydantic', 'pydantic_core',") and "'yaml'" in miss[2]  # the probe sees them
    assert hit == (*miss[:2], "0 []")
    assert "warning: train.spot" in hit[1]


def test_a_spec_read_from_a_pipe_is_validated_not_cached(validation_cache_dir: Path) -> None:
    """Reading a pipe for the key would consume the spec before validation reads it."""
    command = [sys.executable, "-c", "from mlc.compiler.cli import main; main()", "validate", "-f", "/dev/stdin"]
    done = subprocess.run(command, input=LLM_CHAT.read_text(), capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (0, "/dev/stdin: valid (1 environment: production)\n"), done.stderr
    assert entries(validation_cache_dir) == []


def test_pruning_keeps_the_most_recently_used_entries(project, validation_cache_dir, monkeypatch) -> None:
    monkeypatch.setattr(validation_cache, "MAX_ENTRIES", 3)
    specs = [project(BASE) for _ in range(6)]
    for spec in specs[:5]:
        validate(spec)
    assert len(entries(validation_cache_dir)) == 3
    poison(validation_cache_dir)
    assert validate(specs[2])[1] == POISON  # a hit: now the most recently used
    validate(specs[5])  # a miss: stored, and the least recently used entry (specs[3]) pruned
    poison(validation_cache_dir)
    hits = {i: validate(specs[i])[1] == POISON for i in (2, 4, 5)}  # hits first: they store nothing
    misses = {i: validate(specs[i])[1] == POISON for i in (0, 1, 3)}
    assert hits == {2: True, 4: True, 5: True} and misses == {0: False, 1: False, 3: False}
    assert len(entries(validation_cache_dir)) == 3


_OPENED: list[str] | None = None


def _record_opens(event: str, args: tuple[object, ...]) -> None:
    if event == "open" and _OPENED is not None and isinstance(args[0], str):
        _OPENED.append(args[0])


def test_validation_reads_and_stats_project_files_only_through_its_probes(spec: Path, monkeypatch) -> None:
    """What the cache re-checks is all validation looked at: no read or stat bypasses FileProbes."""
    global _OPENED
    _add_images_lock(spec)
    resolve_spec_file(spec)  # imports and package data loaded: what is left is the project's files
    stats: list[str] = []
    real_stat = os.stat

    def stat(path, *args, **kwargs):
        stats.append(os.fspath(path))
        return real_stat(path, *args, **kwargs)

    sys.addaudithook(_record_opens)  # stays for the session, idle unless _OPENED is a list
    monkeypatch.setattr(os, "stat", stat)
    files = FileProbes()
    _OPENED = []
    try:
        result = resolve_spec_file(spec, files=files)
    finally:
        opened, _OPENED = _OPENED, None
        monkeypatch.undo()
    assert result.ok
    probed = {path for _, path, _ in files.probes()}
    read = {path for kind, path, _ in files.probes() if kind == "sha256"}

    def in_project(paths: list[str]) -> set[str]:
        return {p for p in paths if os.path.abspath(p).startswith(str(spec.parent))}

    assert in_project(opened) - read == {str(spec)}  # the spec's bytes are in the cache key
    assert in_project(stats) - probed == set()
    assert {kind for kind, _, _ in files.probes()} == {"realpath", "exists", "is_file", "is_dir", "sha256"}


def test_the_size_limit_is_the_loaders() -> None:
    assert validation_cache.MAX_SPEC_BYTES == MAX_SPEC_BYTES
