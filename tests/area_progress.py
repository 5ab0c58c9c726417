"""`pytest --area-progress`: a line per test file as it finishes, and the time each area took.

`make test` runs for minutes on two cores; dots alone do not say where it is or what is slow.
Each finished file prints its outcome counts (instead of a dot per passing test), how long it took and how far the run is; the
summary lists each area (the top-level tests, `tests/runtime/`, `tests/kubernetes/`, ...) with
its counts and time. Loaded by `tests/conftest.py`; inert without the option.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

OPTION = "--area-progress"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(OPTION, action="store_true", help="Print a line per finished test file and the time per area.")


def duration(seconds: float) -> str:
    """`41s`, `3m05s`, `1h02m`."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def area_of(relative: Path) -> str:
    """`tests/runtime/` for tests/runtime/test_x.py; `tests/` for a top-level file."""
    return "/".join(relative.parts[:-1]) + "/"


def counts_text(counts: Counter[str]) -> str:
    order = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
    return ", ".join(f"{counts[key]} {key}" for key in order if counts[key]) or "no tests"


class AreaProgress:
    """Collects outcomes per file and prints as files finish (see the module docstring)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.root = Path(str(config.rootpath))
        self.started = time.monotonic()
        self.files: list[str] = []
        self.file_started: dict[str, float] = {}
        self.file_counts: dict[str, Counter[str]] = {}
        self.area_seconds: Counter[str] = Counter()
        self.area_counts: dict[str, Counter[str]] = {}
        self.done = 0

    def _relative(self, item: pytest.Item) -> str:
        try:
            return Path(str(item.path)).relative_to(self.root).as_posix()
        except ValueError:
            return str(item.path)

    @pytest.hookimpl
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.files = list(dict.fromkeys(self._relative(item) for item in session.items))

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None):  # type: ignore[no-untyped-def]
        name = self._relative(item)
        self.file_started.setdefault(name, time.monotonic())
        yield
        if nextitem is None or self._relative(nextitem) != name:
            self._file_done(name)

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report: pytest.TestReport) -> tuple[str, str, str] | None:
        # No dot per passing test: the file lines say it; F, E and s still show where they happen.
        if report.when == "call" and report.passed and not hasattr(report, "wasxfail"):
            return "passed", "", "PASSED"
        return None

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        name = Path(report.fspath).as_posix() if report.fspath else "?"
        counts = self.file_counts.setdefault(name, Counter())
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            outcome = "xfailed" if hasattr(report, "wasxfail") and report.skipped else report.outcome
            counts["error" if report.when == "setup" and report.failed else outcome] += 1
        elif report.when == "teardown" and report.failed:
            counts["error"] += 1

    def _file_done(self, name: str) -> None:
        self.done += 1
        seconds = time.monotonic() - self.file_started[name]
        area = area_of(Path(name))
        counts = self.file_counts.get(name, Counter())
        self.area_seconds[area] += seconds
        self.area_counts.setdefault(area, Counter()).update(counts)
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        elapsed = duration(time.monotonic() - self.started)
        width = len(str(len(self.files)))
        writer = getattr(reporter, "_tw", None)  # after an F or s letter on the current line: a new line
        if writer is not None and writer.width_of_current_line:
            reporter.write("\n")
        reporter.write_line(
            f"[{self.done:>{width}}/{len(self.files)} files, {elapsed} elapsed] {name}: "
            f"{counts_text(counts)} in {duration(seconds)}"
        )

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter) -> None:  # type: ignore[no-untyped-def]
        if not self.area_seconds:
            return
        terminalreporter.write_sep("-", "time by area")
        width = max(len(area) for area in self.area_seconds)
        for area, seconds in sorted(self.area_seconds.items(), key=lambda pair: -pair[1]):
            terminalreporter.write_line(
                f"{area:<{width}}  {duration(seconds):>7}  {counts_text(self.area_counts[area])}"
            )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption(OPTION):
        config.pluginmanager.register(AreaProgress(config), "area-progress")
