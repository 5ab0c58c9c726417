"""Run a markdown document's shell session and compare what it prints with what the document shows.

The document is read as a reader would follow it, top to bottom, in one bash session (so `cd`,
`&` and `kill %1` work as they do in a terminal), with stderr merged into stdout:

- a ```console block: `$ command` lines, each followed by the output the document shows for it;
- a code block right after `<!-- file: PATH -->`: written to PATH before the next command runs;
- a code block right after `<!-- uncomment: PATH -->`: each of its lines is in PATH commented out
  (`# ` after the indentation); the reader uncomments them, so the session does.

A line `...` in a shown output stands for any number of lines. Values that differ from run to run
(run ids, a commit's short sha, rows per second, elapsed and remaining time, latencies, the
training loss's last digits across CPUs) are compared by shape: `VOLATILE` names each one.
`MLC_UPDATE_GOLDEN=1` rewrites the document's outputs with this run's, as the golden files are.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MARKER = "@@mlc-doc-command@@"
ELLIPSIS = "..."

# (what varies, its pattern, what both sides become): applied to the shown and the real output.
VOLATILE: list[tuple[str, re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    ("an MLflow run id", re.compile(r"\b[0-9a-f]{32}\b"), "<run-id>"),
    ("the commit in a run name", re.compile(r"(-train-[a-z0-9-]+?-)[0-9a-f]{7,12}\b"), r"\1<sha>"),
    ("rows per second", re.compile(r"[\d,.]+[kM]? rows/s"), "<n> rows/s"),
    # A training Job's name carries the digest of what it runs (image, config): any change to mlc's
    # images or training pods changes it, and the page would say nothing new.
    ("a training Job's digest", re.compile(r"(job-[a-z0-9-]+-train-)[0-9a-f]{8}(\.yaml)"), r"\1<digest>\2"),
    ("elapsed and remaining time", re.compile(r"\d+:\d\d (elapsed|left)"), r"<t> \1"),
    ("the training loss", re.compile(r"(train_loss) [-+.\de]+"), r"\1 <loss>"),
    (
        "a latency (a line naming latency_p95_ms)",
        re.compile(r"^.*latency_p95_ms.*$", re.MULTILINE),
        # Every number on it (a latency can print as `10`, with no decimals); the bound too, alike on both sides.
        lambda line: re.sub(r"\b\d+(?:\.\d+)?\b", "<ms>", line.group(0)),
    ),
    ("seconds a command took", re.compile(r"\bin \d+(\.\d+)?s\b"), "in <s>s"),
    ("a float's digits past the sixth decimal (a served probability)", re.compile(r"(\d\.\d{6})\d+"), r"\1"),
]


@dataclass
class Command:
    """A `$ command` of a console block and the output the document shows for it."""

    text: str
    shown: list[str]
    block: int  # index of its console block in the document


@dataclass
class Step:
    """One thing the reader does: write a file, uncomment lines, or run a command."""

    kind: str  # "file" | "uncomment" | "command"
    path: str = ""
    body: str = ""
    command: Command | None = None


_BLOCK = re.compile(r"(?:<!-- (file|uncomment): (\S+) -->\n)?```(\w*)\n(.*?)^```\n", re.DOTALL | re.MULTILINE)


def read_steps(markdown: str) -> list[Step]:
    """The document's steps, in order."""
    steps: list[Step] = []
    blocks = 0
    for match in _BLOCK.finditer(markdown):
        directive, path, language, body = match.groups()
        if directive:
            steps.append(Step(directive, path=path, body=body))
        elif language == "console":
            for command in _commands(body, blocks):
                steps.append(Step("command", command=command))
            blocks += 1
    return steps


def _commands(body: str, block: int) -> list[Command]:
    commands: list[Command] = []
    for line in body.splitlines():
        if line.startswith("$ ") and not _echoed_by_mlc_run(commands, line):
            commands.append(Command(line[2:], [], block))
        elif commands:
            commands[-1].shown.append(line)
    return commands


def _echoed_by_mlc_run(commands: list[Command], line: str) -> bool:
    """`mlc run JOB` first prints the command it becomes (`$ mlc-runtime JOB ...`): output, not a command."""
    return bool(commands) and commands[-1].text.startswith("mlc run ") and line.startswith("$ mlc-runtime ")


def session_script(steps: list[Step], substitute: Callable[[str], str] = str) -> str:
    """The bash script that does the steps, printing MARKER before each command's output."""
    lines = ["exec 2>&1"]
    for step in steps:
        if step.kind == "file":
            lines.append(f"cat > '{step.path}' <<'MLC_DOC_FILE' || exit 1\n{step.body}MLC_DOC_FILE")
        elif step.kind == "uncomment":
            lines.append(
                f"python3 - <<'MLC_DOC_FILE' || exit 1\n{_uncomment_program(step.path, step.body)}\nMLC_DOC_FILE"
            )
        else:
            assert step.command is not None
            lines.append(f"echo '{MARKER}'")
            lines.append(substitute(step.command.text))
    return "\n".join(lines) + "\n"


def _uncomment_program(path: str, body: str) -> str:
    wanted = body.splitlines()
    return (
        "import re, sys\n"
        f"path, wanted = {path!r}, {wanted!r}\n"
        "text = open(path).read()\n"
        "for line in wanted:\n"
        "    indent = len(re.match(r' *', line).group(0))\n"
        "    # '# ' at the line's indentation, or further left (a commented block keeps its nesting)\n"
        "    forms = [line[:at] + '# ' + line[at:] + '\\n' for at in range(indent, -1, -1)]\n"
        "    found = [form for form in forms if form in text]\n"
        "    if not found:\n"
        "        sys.exit(f'{path} has no line {line!r} commented out to uncomment')\n"
        "    text = text.replace(found[0], line + '\\n', 1)\n"
        "open(path, 'w').write(text)\n"
    )


def run_session(steps: list[Step], cwd: Path, env: dict[str, str], timeout: float, substitute=str) -> list[list[str]]:
    """Run the steps in one bash session in cwd; each command's output lines, in order."""
    script = session_script(steps, substitute)
    done = subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    parts = done.stdout.split(MARKER + "\n")
    preamble, outputs = parts[0], parts[1:]
    assert not preamble.strip(), f"the session printed before its first command:\n{preamble}"
    assert len(outputs) == sum(s.kind == "command" for s in steps), f"the session stopped early:\n{done.stdout[-3000:]}"
    return [output.splitlines() for output in outputs]


def normalized(lines: list[str]) -> str:
    """The lines with every VOLATILE value replaced by its shape."""
    text = "\n".join(line.rstrip() for line in lines)
    for _, pattern, replacement in VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def matches(shown: list[str], real: list[str]) -> bool:
    """Whether the real output is what the document shows, `...` lines standing for any lines."""
    pieces = normalized(shown).split("\n") if shown else []
    pattern = "".join(r"(?:[^\n]*\n)*?" if piece == ELLIPSIS else re.escape(piece) + r"\n" for piece in pieces)
    return re.fullmatch(pattern, normalized(real) + "\n" if real else "") is not None


def rewrite_outputs(markdown: str, steps: list[Step], outputs: list[list[str]]) -> str:
    """The document with each command's shown output replaced by its real one (where the document
    elided lines with `...`, it keeps eliding as many lines around the same head and tail)."""
    commands = [s.command for s in steps if s.command is not None]
    by_block: dict[int, list[tuple[Command, list[str]]]] = {}
    for command, output in zip(commands, outputs, strict=True):
        by_block.setdefault(command.block, []).append((command, output))
    index = 0

    def block_text(match: re.Match[str]) -> str:
        nonlocal index
        directive, _, language, _ = match.groups()
        if directive or language != "console":
            return match.group(0)
        lines = []
        for command, output in by_block[index]:
            lines.append(f"$ {command.text}")
            lines.extend(_kept_ellipsis(command.shown, output))
        index += 1
        return "```console\n" + "\n".join(lines) + "\n```\n"

    return _BLOCK.sub(block_text, markdown)


def _kept_ellipsis(shown: list[str], real: list[str]) -> list[str]:
    """Real output; where the document elided lines with `...` between a shown head and tail,
    the same number of head and tail lines around it."""
    if ELLIPSIS not in shown:
        return [line.rstrip() for line in real]
    at = shown.index(ELLIPSIS)
    head, tail = at, len(shown) - at - 1
    if head + tail >= len(real):
        return [line.rstrip() for line in real]
    return [line.rstrip() for line in real[:head]] + [ELLIPSIS] + [line.rstrip() for line in real[len(real) - tail :]]
