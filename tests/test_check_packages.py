"""`mlc images check-packages`: apt package names and versions looked up in the distribution's archive.

The archive is a real HTTP server on 127.0.0.1 serving `Packages.xz` indexes at the paths of
the table's URLs (the command's `--mirror` replaces only scheme and host, as an apt mirror
does); what it reads is what apt would. `mlc validate` never goes online: the same spec
validates without a network.
"""

from __future__ import annotations

import functools
import lzma
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from mlc.compiler.compat import docker_build_table
from spec_fixtures import make_project, run_mlc

SPEC = """apiVersion: mlc/v1
kind: MLProject
metadata:
  name: demo
images:
  registry: ghcr.io/acme
  train:
    system_packages: [curl, libgl1=1.6.0-1, libgl1x, tzdata=2099a-0]
data:
  train: {uri: data/train.csv}
  eval: {uri: data/eval.csv}
train:
  entrypoint: demo.model:train
"""
TODAY = {"curl": ["7.88.1-10+deb12u12"], "libgl1": ["1.6.0-1"], "tzdata": ["2025b-0+deb12u1"], "libglx0": ["1.6.0-1"]}
DATED = {"curl": ["7.88.1-10+deb12u14"], "libgl1": ["1.6.0-1"], "tzdata": ["2099a-0"], "libgl1x": ["1.0"]}


def _packages_xz(packages: dict[str, list[str]]) -> bytes:
    stanzas = [f"Package: {name}\nVersion: {v}\nArchitecture: amd64\n" for name, vs in packages.items() for v in vs]
    return lzma.compress("\n".join(stanzas).encode())


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """An empty web root on 127.0.0.1 and its URL: tests place index files under it."""
    root = tmp_path / "archive"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve_indexes(root: Path, packages: dict[str, list[str]], stamp: str | None = None) -> None:
    """Bookworm's indexes (the CPU training image's), at their paths, live or as dated by a snapshot."""
    snapshots = dict(docker_build_table().apt.snapshots.distros["debian-bookworm"].archives)
    for url in docker_build_table().apt.indexes.distros["debian-bookworm"]:
        if stamp is not None:
            archive = next(a for a in snapshots if url.startswith(a + "/"))
            url = f"{snapshots[archive]}/{stamp}{url[len(archive) :]}"
        path = root / urlsplit(url).path.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_packages_xz(packages))


def test_unknown_names_and_versions_are_reported_at_their_line(archive: tuple[Path, str], tmp_path: Path) -> None:
    root, url = archive
    _serve_indexes(root, TODAY)
    spec = make_project(
        tmp_path / "p", SPEC.replace("    system_packages", "    apt_snapshot: '2026-11-30'\n    system_packages")
    )
    code, out, err = run_mlc("images", "check-packages", "-f", str(spec), "--mirror", url)
    assert code == 1
    # No snapshot index on this mirror: today's archive, and the command says why.
    assert "warning: unreachable: " in err and "/20261130T000000Z/dists/bookworm/" in err
    assert "images.train.system_packages: 2 of 4 found in debian-bookworm's archive today" in out
    assert (
        ":9:45: error: images.train.system_packages.2: apt package 'libgl1x' is not in debian-bookworm's archive" in err
    )
    assert "hint: did you mean 'libgl1', 'libglx0'?" in err
    assert "images.train.system_packages.3: apt package 'tzdata' has no version 2099a-0" in err
    assert "hint: versions there: 2025b-0+deb12u1" in err


def test_a_snapshot_image_is_checked_against_that_day(archive: tuple[Path, str], tmp_path: Path) -> None:
    root, url = archive
    _serve_indexes(root, DATED, stamp="20261130T000000Z")
    spec = make_project(
        tmp_path / "p", SPEC.replace("    system_packages", "    apt_snapshot: '2026-11-30'\n    system_packages")
    )
    code, out, err = run_mlc("images", "check-packages", "-f", str(spec), "--mirror", url)
    assert "images.train.system_packages: 4 of 4 found in debian-bookworm's archive on 2026-11-30" in out
    assert (code, err) == (0, "")


def test_an_unreachable_archive_falls_back_to_the_table(tmp_path: Path) -> None:
    spec = make_project(tmp_path / "p", SPEC.replace("libgl1x, tzdata=2099a-0", "libgomp1"))
    # curl is not in the table: validate refuses it offline, so the spec names a snapshot.
    spec.write_text(
        spec.read_text().replace("    system_packages", "    apt_snapshot: '2026-11-30'\n    system_packages")
    )
    code, out, err = run_mlc("images", "check-packages", "-f", str(spec), "--mirror", "http://127.0.0.1:9")
    assert code == 1
    assert "found in mlc's pin table for debian-bookworm" in out
    assert "apt package 'curl' is not in mlc's pin table for debian-bookworm (its archive was not reachable)" in err


def test_validate_stays_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.request

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("validate went online")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    spec = make_project(
        tmp_path / "p", SPEC.replace("    system_packages", "    apt_snapshot: '2026-11-30'\n    system_packages")
    )
    code, _, err = run_mlc("validate", "--no-cache", "-f", str(spec))
    assert (code, err) == (0, ""), err
