"""`pytest --area-progress` (what `make test` runs): a line per finished file, time per area."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from area_progress import area_of, duration

TESTS = Path(__file__).resolve().parent


def test_durations_and_areas_read_as_people_write_them() -> None:
    assert [duration(4.4), duration(185), duration(3720)] == ["4s", "3m05s", "1h02m"]
    assert area_of(Path("tests/runtime/test_x.py")) == "tests/runtime/" and area_of(Path("tests/t.py")) == "tests/"


def test_a_run_reports_each_file_as_it_finishes_and_each_area_at_the_end(tmp_path: Path) -> None:
    (tmp_path / "tests/runtime").mkdir(parents=True)
    (tmp_path / "tests/test_a.py").write_text("def test_one():\n    pass\n\ndef test_two():\n    pass\n")
    (tmp_path / "tests/runtime/test_b.py").write_text(
        "import pytest\n\ndef test_ok():\n    pass\n\ndef test_broken():\n    assert False\n\n"
        "@pytest.mark.skip(reason='x')\ndef test_skipped():\n    pass\n"
    )
    environ = {**os.environ, "PYTHONPATH": str(TESTS)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "area_progress",
            "--area-progress",
            "-p",
            "no:cacheprovider",
            "tests",
        ],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout
    lines = done.stdout.splitlines()
    progress = [re.sub(r"\d+s", "Ns", line) for line in lines if line.startswith("[")]
    assert progress == [
        "[1/2 files, Ns elapsed] tests/runtime/test_b.py: 1 passed, 1 failed, 1 skipped in Ns",
        "[2/2 files, Ns elapsed] tests/test_a.py: 2 passed in Ns",
    ]
    end = next(i for i, line in enumerate(lines) if "time by area" in line)
    letters = "".join(line for line in lines[:end] if not line.startswith("[")).split("[100%]")[0].strip()
    assert letters == "Fs"  # no dot per passing test; a failure and a skip still show where they happen
    summary = lines[end + 1 : end + 3]
    assert sorted(re.sub(r"\s+\d+s\s+", " Ns ", line) for line in summary) == [
        "tests/ Ns 2 passed",
        "tests/runtime/ Ns 1 passed, 1 failed, 1 skipped",
    ]
