"""A generated Dockerfile read as Docker reads it: instructions, stages, the builder's pip commands."""

from __future__ import annotations

import shlex


def instructions(dockerfile: str) -> list[str]:
    """Instructions with continuation lines joined and comments dropped."""
    logical, pending = [], ""
    for line in dockerfile.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(" ".join((pending + line).split()))
        pending = ""
    return logical


def stages(dockerfile: str) -> list[list[str]]:
    """The instructions of each stage, in order (each starts with its FROM)."""
    found: list[list[str]] = []
    for instruction in instructions(dockerfile):
        if instruction.startswith("FROM "):
            found.append([])
        found[-1].append(instruction)
    return found


def builder_pip_commands(dockerfile: str) -> list[list[str]]:
    """The `pip install ...` commands of the builder stage, as argument lists, in order."""
    commands = []
    for instruction in stages(dockerfile)[-2]:
        if not instruction.startswith("RUN "):
            continue
        words = [w for w in shlex.split(instruction[4:]) if not w.startswith("--mount=")]
        for command in " ".join(shlex.quote(w) for w in words).split(" '&&' "):
            argv = shlex.split(command)
            if argv[:2] == ["pip", "install"]:
                commands.append(argv)
    return commands
