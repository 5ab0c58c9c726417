"""Diagnostics: positioned, collected problems that teach the fix.

Stages return diagnostics instead of raising, so one run reports every problem at once
(Terraform's tfdiags, Cog's collected validation errors). Exceptions are reserved for bugs.

One diagnostic renders as one grep-friendly line, clickable in editors and CI logs, then
optional hint lines::

    mlproject.yaml:42:15: error: serve.replicas.min: must be an integer >= 0, got -1
      hint: e.g. `replicas: {min: 2, max: 10}`
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from mlc.compiler.errors import MlcError


class Severity(StrEnum):
    """How bad a diagnostic is: errors stop the pipeline, warnings do not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class SourcePosition:
    """A 1-based line and column in a named file."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Diagnostic:
    """One problem: where it is, which field, what is wrong and what would be valid."""

    severity: Severity
    message: str
    position: SourcePosition | None = None
    field: str = ""
    hint: str = ""

    def render(self) -> str:
        """The one-line form (plus an indented hint line when there is one)."""
        where = f"{self.position}: " if self.position else ""
        field = f"{self.field}: " if self.field else ""
        line = f"{where}{self.severity.value}: {field}{self.message}"
        return f"{line}\n  hint: {self.hint}" if self.hint else line

    def sort_key(self) -> tuple[str, int, int, str, str]:
        """Order by file, then line and column, so output reads top to bottom."""
        p = self.position
        return (p.file, p.line, p.column, self.field, self.message) if p else ("", 0, 0, self.field, self.message)


@dataclass(frozen=True)
class Finding:
    """A rule's verdict before it is positioned: a spec field path, message and hint.

    Rules stay pure by returning findings; the validator turns them into diagnostics with the
    source position of `path` (of its key when `at_key`).
    """

    path: tuple[str | int, ...]
    message: str
    hint: str = ""
    severity: Severity = Severity.ERROR
    at_key: bool = False


def error(message: str, position: SourcePosition | None = None, field: str = "", hint: str = "") -> Diagnostic:
    """Build an error diagnostic."""
    return Diagnostic(Severity.ERROR, message, position, field, hint)


def warning(message: str, position: SourcePosition | None = None, field: str = "", hint: str = "") -> Diagnostic:
    """Build a warning diagnostic."""
    return Diagnostic(Severity.WARNING, message, position, field, hint)


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    """True when any diagnostic is an error."""
    return any(d.severity is Severity.ERROR for d in diagnostics)


def sorted_unique(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Drop exact repeats (an error in the base spec shows up once per environment) and sort."""
    seen: dict[tuple[object, ...], Diagnostic] = {}
    for d in diagnostics:
        seen.setdefault((d.position, d.field, d.message, d.severity), d)
    return sorted(seen.values(), key=Diagnostic.sort_key)


class DiagnosticsError(MlcError):
    """Raised at an edge (CLI, library entry point) to carry collected diagnostics outward."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted_unique(diagnostics)
        super().__init__("\n".join(d.render() for d in self.diagnostics))
