"""The `mlc` command line, at the edge: thin commands over the stages, and the views that print."""

from mlc.compiler.cli.commands import main

__all__ = ["main"]
