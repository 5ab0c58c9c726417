"""Rendering of text artifacts from the jinja2 templates in `mlc.templates`."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2


@cache
def _environment() -> jinja2.Environment:
    # StrictUndefined: a missing value is a bug to surface, never an empty string in an artifact.
    return jinja2.Environment(
        loader=jinja2.PackageLoader("mlc.templates", "."),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render_template(template: str, **context: Any) -> str:
    """Render `template` with `context`; raises on any undefined variable."""
    return _environment().get_template(template).render(**context)
