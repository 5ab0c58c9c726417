"""`python -m mlc.runtime`: the `mlc-runtime` command, for an interpreter whose environment has no
console script of its own (the PR check's base branch trains in a second virtual environment)."""

from mlc.runtime.cli import main

main()
