"""Views: how results are shown to people. Commands and stages never print; views do."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mlc.compiler.diagnostics import Diagnostic, Severity


def render_diagnostics(diagnostics: Iterable[Diagnostic]) -> str:
    """Diagnostics, one per line (hints indented), then a count like `2 errors, 1 warning`."""
    items = list(diagnostics)
    if not items:
        return ""
    errors = sum(d.severity is Severity.ERROR for d in items)
    warnings = len(items) - errors
    counts = [f"{n} {word}{'' if n == 1 else 's'}" for n, word in ((errors, "error"), (warnings, "warning")) if n]
    return "\n".join(d.render() for d in items) + "\n" + ", ".join(counts) + "\n"


def render_validation(display: str, environments: Sequence[str]) -> str:
    """The success line of `mlc validate`: which environments resolved."""
    count = len(environments)
    return f"{display}: valid ({count} environment{'s' if count != 1 else ''}: {', '.join(environments)})\n"
